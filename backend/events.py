"""Domain events published inside the transaction of the change that causes them.

Subsystems (SLA clocks, the notification outbox, ...) subscribe once at startup; a listener that fails
aborts the transaction, so a change and everything that must follow from it commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from backend.context import RequestContext
from backend.db import Connection

INCIDENT_EVENTS = (
    "incident.created",
    "incident.updated",
    "incident.assigned",
    "incident.commented",
    "incident.status_changed",
    "incident.resolved",
    "incident.closed",
    "incident.reopened",
)
SUGGESTION_EVENTS = ("suggestion.ready", "suggestion.feedback", "suggestion.rated")


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened to a resource, with its state before and after."""

    name: str
    resource_type: str
    resource_id: int
    at: datetime
    ctx: RequestContext
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


class EventListener(Protocol):
    async def handle(self, conn: Connection, event: DomainEvent) -> None:
        """React to an event inside the publishing transaction."""


class EventBus:
    """Calls every subscribed listener, in subscription order, on the publisher's connection."""

    def __init__(self) -> None:
        self._listeners: list[EventListener] = []

    def subscribe(self, listener: EventListener) -> None:
        """Add a listener (at startup)."""
        self._listeners.append(listener)

    async def publish(self, conn: Connection, event: DomainEvent) -> None:
        """Deliver the event to all listeners; an exception rolls the whole change back."""
        for listener in self._listeners:
            await listener.handle(conn, event)
