"""Run registered periodic tasks; a (task, tick) pair is claimed by one worker only."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Coroutine

import asyncpg

from backend.clock import Clock
from backend.jobs import scheduler_repository as repository

log = logging.getLogger(__name__)
# A long-running loop of the worker (e.g. notification delivery): runs until the event is set.
WorkerLoop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class PeriodicTask:
    """A task and how often it runs; `run` receives the tick (the start of its interval)."""

    name: str
    interval: timedelta
    run: Callable[[datetime], Awaitable[object]]


def tick_of(now: datetime, interval: timedelta) -> datetime:
    """The start of the interval that contains `now` (aligned to a fixed epoch, so every replica agrees)."""
    periods = (now - EPOCH) // interval
    return EPOCH + periods * interval


class PeriodicScheduler:
    """Claims due ticks and runs their tasks; call `run_due` often (every few seconds)."""

    def __init__(self, *, pool: asyncpg.Pool, clock: Clock, worker_name: str | None = None):
        self.pool = pool
        self.clock = clock
        self.worker_name = worker_name or f"{socket.gethostname()}:{os.getpid()}"
        self.tasks: list[PeriodicTask] = []

    def register(self, task: PeriodicTask) -> None:
        """Add a task (at startup); names must be unique."""
        if any(t.name == task.name for t in self.tasks):
            raise ValueError(f"periodic task {task.name} registered twice")
        self.tasks.append(task)

    async def run_due(self) -> list[str]:
        """Run every task whose current tick nobody has claimed yet; returns the names run here."""
        ran = []
        for task in self.tasks:
            now = self.clock.now()
            tick = tick_of(now, task.interval)
            async with self.pool.acquire() as conn:
                if not await repository.claim_tick(conn, task=task.name, tick=tick, worker=self.worker_name, now=now):
                    continue
            error = None
            try:
                await task.run(tick)
            except Exception as exc:  # noqa: BLE001 - recorded on the tick and logged; the next tick tries again
                error = f"{type(exc).__name__}: {exc}"[:1000]
                log.exception("periodic task failed", extra={"task": task.name, "tick": tick.isoformat()})
            async with self.pool.acquire() as conn:
                await repository.finish_tick(conn, task=task.name, tick=tick, now=self.clock.now(), error=error)
            ran.append(task.name)
        return ran
