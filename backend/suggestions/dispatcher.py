"""Admission of suggestion work to the LLM nodes, by capacity, across every worker.

The suggestions table is the queue. Each node has as many rows in `llm_slots` as it runs generations in
parallel. A worker starts a generation only in one transaction that locks the next suggestion (watched first,
then by priority, then the longest waiting) and leases a free slot of a node that is up; so the work sent to
the cluster never exceeds its slots, whatever the number of workers and replicas, and work waits in Postgres,
never in a node's queue or an open HTTP request. Leases are renewed while a generation runs; a worker that dies
frees its slots when their leases run out. Why not pgqueuer: see docs/suggestions.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg

from agent.llm import LLMCluster
from backend.clock import Clock
from backend.config import Settings
from backend.db import transaction
from backend.suggestions import repository, slots_repository
from backend.suggestions.queue_metrics import QueueMetrics
from backend.suggestions.service import SuggestionService

log = logging.getLogger(__name__)
HOUSEKEEPING_INTERVAL_S = 2.0


@dataclass(frozen=True)
class Admission:
    """A suggestion admitted to one slot of one node."""

    claimed: asyncpg.Record
    node_url: str
    slot: int


def worker_identity() -> str:
    """A name for the slot leases this process holds."""
    return f"{socket.gethostname()}:{os.getpid()}:{id(object()):x}"


@dataclass(kw_only=True, eq=False)
class SuggestionDispatcher:
    """Admits waiting suggestions to free LLM slots and runs them; one per worker process."""

    settings: Settings
    pool: asyncpg.Pool
    clock: Clock
    llm: LLMCluster
    suggestions: SuggestionService
    metrics: QueueMetrics | None = None
    holder: str = field(default_factory=worker_identity)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _running: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _last_housekeeping: float = field(default=0.0, init=False)

    async def sync_slots(self) -> dict[str, int]:
        """Make `llm_slots` match the configured (or advertised) parallel slots of every node."""
        capacity = {url: await self._slots_of(url) for url in self.llm.node_urls}
        async with transaction(self.pool) as conn:
            for url, slots in capacity.items():
                await slots_repository.sync_node_slots(conn, node_url=url, slots=slots)
            await slots_repository.forget_other_nodes(conn, node_urls=list(capacity))
        return capacity

    async def _slots_of(self, url: str) -> int:
        if url in self.settings.llm_node_slots:
            return max(1, self.settings.llm_node_slots[url])
        if self.settings.llm_slots_per_node > 0:
            return self.settings.llm_slots_per_node
        return await self.llm.advertised_parallel(url) or 1

    async def run(self, stop: asyncio.Event) -> None:
        """Admit and run generations until `stop` is set; then hand unfinished ones back to the queue."""
        await self._retry_until_done(self.sync_slots, stop)
        try:
            while not stop.is_set():
                try:
                    await self.housekeeping()
                    while (admission := await self.admit_next()) is not None:
                        self._start(admission)
                except Exception:  # noqa: BLE001 - a database outage or a bug must not end the worker's loop
                    log.warning("suggestion dispatch failed; retrying", exc_info=True)
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wait_for_wake_or(stop), self.settings.suggestion_dispatch_poll_s)
        finally:
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _wait_for_wake_or(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _retry_until_done(self, action: Callable[[], Awaitable[object]], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await action()
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("LLM slot set-up failed; retrying", exc_info=True)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)

    async def admit_next(self) -> Admission | None:
        """Lock the next suggestion and lease a free slot for it in one transaction; None when either is lacking."""
        await self.llm.confirm_recovering()
        nodes = self.llm.up_node_urls()
        if not nodes:
            return None
        now = self.clock.now()
        lease_until = now + timedelta(seconds=self.settings.suggestion_lease_s)
        async with transaction(self.pool) as conn:
            incident_id = await repository.next_pending_for_update(conn, now=now)
            if incident_id is None:
                return None
            slot = await slots_repository.lease_free_slot(
                conn, node_urls=nodes, holder=self.holder, incident_id=incident_id, now=now, lease_until=lease_until
            )
            if slot is None:
                if self.metrics is not None:
                    self.metrics.admissions_waiting.inc()
                return None
            claimed = await repository.mark_generating(
                conn, incident_id, node=slot["node_url"], now=now, lease_until=lease_until
            )
        if claimed is None:  # cannot happen while the row lock is held; never leave a slot leased for nothing
            await self._release(slot["node_url"], slot["slot"])
            return None
        return Admission(claimed, slot["node_url"], slot["slot"])

    def _start(self, admission: Admission) -> None:
        task = asyncio.create_task(self._generate(admission))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free again: look for the next suggestion at once

    async def _generate(self, admission: Admission) -> None:
        incident_id = admission.claimed["incident_id"]
        llm = self.llm.pinned(
            admission.node_url,
            first_token_timeout_s=self.settings.llm_first_token_timeout_s,
            token_timeout_s=self.settings.llm_token_timeout_s,
        )
        renewal = asyncio.create_task(self._renew_leases(admission))
        try:
            outcome = await self.suggestions.run_attempt(admission.claimed, llm)
            if self.metrics is not None:
                self.metrics.outcomes.labels(outcome).inc()
        except asyncio.CancelledError:
            # The worker is stopping: the attempt goes back in line, uncounted, for another worker.
            with contextlib.suppress(Exception):
                async with self.pool.acquire() as conn:
                    await repository.return_to_queue(conn, incident_id, now=self.clock.now())
            raise
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            with contextlib.suppress(Exception):
                await self._release(admission.node_url, admission.slot)

    async def _renew_leases(self, admission: Admission) -> None:
        interval = max(1.0, self.settings.suggestion_lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            lease_until = self.clock.now() + timedelta(seconds=self.settings.suggestion_lease_s)
            try:
                async with self.pool.acquire() as conn:
                    await slots_repository.renew_slot(
                        conn,
                        node_url=admission.node_url,
                        slot=admission.slot,
                        holder=self.holder,
                        lease_until=lease_until,
                    )
                    await repository.renew_lease(conn, admission.claimed["incident_id"], lease_until=lease_until)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("lease renewal failed; retrying", exc_info=True)

    async def _release(self, node_url: str, slot: int) -> None:
        async with self.pool.acquire() as conn:
            await slots_repository.release_slot(conn, node_url=node_url, slot=slot, holder=self.holder)

    async def housekeeping(self) -> None:
        """Now and then: requeue dead workers' attempts, skip the stale backlog, refresh the queue metrics."""
        if time.monotonic() - self._last_housekeeping < HOUSEKEEPING_INTERVAL_S:
            return
        self._last_housekeeping = time.monotonic()
        await self.suggestions.requeue_expired()
        skipped = await self.suggestions.skip_backlog()
        if skipped:
            log.warning("suggestions skipped: backlog", extra={"count": len(skipped)})
        if self.metrics is not None:
            self.metrics.skipped.inc(len(skipped))
            await self.metrics.refresh(self.pool, now=self.clock.now())
