"""The notification events consumers can receive: names, schema versions and what each one means."""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1
PING = "test.ping"
ENDPOINT_DISABLED = "notification.endpoint_disabled"


@dataclass(frozen=True)
class EventType:
    """One event type of the public contract; its JSON schema is docs/events/<name>.v<version>.json."""

    name: str
    version: int
    description: str
    subscribable: bool = True

    @property
    def schema_file(self) -> str:
        """File name of the documented JSON schema."""
        return f"{self.name}.v{self.version}.json"


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("incident.created", SCHEMA_VERSION, "An incident was reported."),
    EventType(
        "incident.updated",
        SCHEMA_VERSION,
        "Descriptive fields, the assignee or the working status (in progress, waiting, closed) changed.",
    ),
    EventType("incident.escalated", SCHEMA_VERSION, "An escalation rule fired for an incident."),
    EventType("incident.resolved", SCHEMA_VERSION, "An incident was resolved; the solution is included."),
    EventType("incident.reopened", SCHEMA_VERSION, "A resolved or closed incident was opened again."),
    EventType("suggestion.ready", SCHEMA_VERSION, "The LLM suggestion of an incident is ready."),
    EventType("sla.warning", SCHEMA_VERSION, "An SLA deadline of an incident is near."),
    EventType("sla.breached", SCHEMA_VERSION, "An SLA deadline of an incident passed."),
    EventType(
        ENDPOINT_DISABLED, SCHEMA_VERSION, "A notification endpoint kept failing and was disabled automatically."
    ),
    EventType(PING, SCHEMA_VERSION, "A test message sent on request to one endpoint.", subscribable=False),
)

BY_NAME: dict[str, EventType] = {event.name: event for event in EVENT_TYPES}
# Events about one incident: the only ones an e-mail endpoint whose target is REPORTER_TARGET may take.
INCIDENT_EVENTS: frozenset[str] = frozenset(
    event.name for event in EVENT_TYPES if event.name.split(".")[0] in ("incident", "suggestion", "sla")
)
# The target of an e-mail endpoint that writes to each incident's reporter (their account's address).
REPORTER_TARGET = "reporter"
SUBSCRIBABLE: tuple[str, ...] = tuple(event.name for event in EVENT_TYPES if event.subscribable)


def version_of(name: str) -> int:
    """The current schema version of an event type."""
    return BY_NAME[name].version
