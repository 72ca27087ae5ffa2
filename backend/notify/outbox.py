"""The transactional outbox: domain events become notification events and deliveries in the publisher's
transaction, so a change and its notifications commit together or not at all."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.clock import Clock
from backend.db import Connection
from backend.events import DomainEvent
from backend.notify import repository
from backend.notify.catalog import version_of
from backend.notify.payloads import DOMAIN_TO_EVENT, envelope, event_data, new_event_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WrittenEvent:
    """An outbox row and the deliveries created for it."""

    event_id: str
    event_type: str
    delivery_ids: list[int]


async def write_event(
    conn: Connection,
    *,
    event_type: str,
    occurred_at: datetime,
    now: datetime,
    data: dict[str, Any],
    incident_id: int | None = None,
    area: str | None = None,
    priority: str | None = None,
    only_endpoint_id: int | None = None,
) -> WrittenEvent:
    """Store one event and its deliveries (to every matching endpoint, or to one) inside the caller's transaction."""
    event_id = new_event_id()
    payload = envelope(event_id=event_id, event_type=event_type, occurred_at=occurred_at, data=data)
    await repository.insert_event(
        conn,
        event_id=event_id,
        event_type=event_type,
        version=version_of(event_type),
        occurred_at=occurred_at,
        now=now,
        incident_id=incident_id,
        area=area,
        priority=priority,
        payload=payload,
    )
    if only_endpoint_id is not None:
        delivery_ids = [
            await repository.insert_delivery(
                conn, event_id=event_id, endpoint_id=only_endpoint_id, now=now, manual=False
            )
        ]
    else:
        delivery_ids = await repository.insert_deliveries_for_matching(
            conn, event_id=event_id, event_type=event_type, area=area, priority=priority, now=now
        )
    if delivery_ids:
        await repository.wake_workers(conn)
    return WrittenEvent(event_id, event_type, delivery_ids)


def incident_id_of(event: DomainEvent) -> int | None:
    """The incident a domain event is about: an explicit incident_id, else the resource of an incident event."""
    for source in (event.after or {}, event.details):
        if source.get("incident_id") is not None:
            return int(source["incident_id"])
    return event.resource_id if event.resource_type == "incident" else None


class OutboxListener:
    """Subscribed to the EventBus: maps incident, suggestion and SLA events to notification events."""

    def __init__(self, *, clock: Clock):
        self.clock = clock

    async def _incident_row(self, conn: Connection, event: DomainEvent, incident_id: int) -> dict[str, Any] | None:
        if event.resource_type == "incident" and event.after and "title" in event.after and "area" in event.after:
            return event.after
        row = await repository.get_incident_for_event(conn, incident_id)
        return dict(row) if row is not None else None

    async def handle(self, conn: Connection, event: DomainEvent) -> None:
        """Write the outbox row (and deliveries) for events consumers can subscribe to; ignore the rest."""
        event_type = DOMAIN_TO_EVENT.get(event.name)
        if event_type is None:
            return
        incident_id = incident_id_of(event)
        if incident_id is None:
            log.warning("notification event names no incident; skipped", extra={"event": event.name})
            return
        incident = await self._incident_row(conn, event, incident_id)
        if incident is None:
            log.warning(
                "notification event about a missing incident; skipped",
                extra={"event": event.name, "incident_id": incident_id},
            )
            return
        data = event_data(event_type, event, incident)
        if data is None:
            return
        await write_event(
            conn,
            event_type=event_type,
            occurred_at=event.at,
            now=self.clock.now(),
            data=data,
            incident_id=incident_id,
            area=incident["area"],
            priority=incident["priority"],
        )
