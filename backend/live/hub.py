"""Incident changes to every open live stream, across replicas.

Publishing: a domain-event listener runs `pg_notify` inside the transaction of the change, so PostgreSQL delivers the
notice when (and only when) the change commits, to every replica. Fan-out: each process keeps one LISTEN connection,
opened when the first stream subscribes and re-opened after a database outage, and copies every notice into the
queue of each of its subscribers. A subscriber that falls behind gets `resync` instead of the events it missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import asyncpg

from backend.db import Connection, connect
from backend.events import DomainEvent

log = logging.getLogger(__name__)

CHANNEL = "prs_incident_live"
QUEUE_SIZE = 200
RECONNECT_S = 2.0


def live_notice(event: DomainEvent) -> dict[str, Any] | None:
    """What a live stream learns of an incident event: its name, the incident, its status, area and reporter."""
    if event.resource_type != "incident":
        return None
    state = event.after or event.before or {}
    return {
        "event": event.name,
        "incident_id": event.resource_id,
        "at": event.at.isoformat(),
        "status": state.get("status"),
        "priority": state.get("priority"),
        "area": state.get("area"),
        "reporter_id": state.get("reporter_id"),
    }


class LivePublisher:
    """Domain-event listener: NOTIFY the live channel in the publishing transaction (delivered at commit)."""

    async def handle(self, conn: Connection, event: DomainEvent) -> None:
        notice = live_notice(event)
        if notice is not None:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps(notice, default=str))


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE))
    overflowed: bool = False


class LiveHub:
    """One LISTEN connection per process, shared by every live stream of the process."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._subscribers: set[Subscriber] = set()
        self._listener: Connection | None = None
        self._task: asyncio.Task | None = None
        self._connected = asyncio.Event()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscriber]:
        """A subscriber receiving every notice from now on; the LISTEN connection is ready when this yields."""
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._keep_listening())
        try:
            await asyncio.wait_for(self._connected.wait(), timeout=10)
        except asyncio.TimeoutError:
            log.warning("live updates: LISTEN connection not ready; the stream starts without it")
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    def _deliver(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        try:
            notice = json.loads(str(payload))
        except ValueError:
            return
        for subscriber in list(self._subscribers):
            try:
                subscriber.queue.put_nowait(notice)
            except asyncio.QueueFull:
                subscriber.overflowed = True

    async def _keep_listening(self) -> None:
        """Hold the LISTEN connection while anybody subscribes; reconnect after it drops."""
        while self._subscribers:
            try:
                self._listener = await connect(self.database_url)
                await self._listener.add_listener(CHANNEL, self._deliver)
                self._connected.set()
                while self._subscribers and not self._listener.is_closed():
                    await asyncio.sleep(0.5)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("live updates: cannot LISTEN; retrying", exc_info=True)
            finally:
                self._connected.clear()
                if self._listener is not None and not self._listener.is_closed():
                    await self._listener.close()
                self._listener = None
                # Streams opened meanwhile may have missed notices: tell them to reload.
                for subscriber in list(self._subscribers):
                    subscriber.overflowed = True
            if self._subscribers:
                await asyncio.sleep(RECONNECT_S)

    async def aclose(self) -> None:
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
