"""Versioned event payloads built from domain events: no secrets, and no names, e-mails or free-text comments of
people; schemas in docs/events/."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timezone
from typing import Any, Mapping

from backend.events import DomainEvent
from backend.notify.catalog import version_of

DESCRIPTION_EXCERPT = 500
RESOLUTION_EXCERPT = 2000
SUGGESTION_EXCERPT = 4000
DETAIL_TEXT_MAX = 300
DETAIL_KEYS_MAX = 20

# Domain events that become notification events; several incident changes are one public "incident.updated".
DOMAIN_TO_EVENT: dict[str, str] = {
    "incident.created": "incident.created",
    "incident.updated": "incident.updated",
    "incident.assigned": "incident.updated",
    "incident.status_changed": "incident.updated",
    "incident.closed": "incident.updated",
    "incident.escalated": "incident.escalated",
    "incident.resolved": "incident.resolved",
    "incident.reopened": "incident.reopened",
    "suggestion.ready": "suggestion.ready",
    "sla.warning": "sla.warning",
    "sla.breached": "sla.breached",
}

# Fields whose previous value an "incident.updated" event may carry (never people, never long text).
PREVIOUS_VALUE_FIELDS = ("title", "area", "priority", "status", "category", "external_ref", "tags")
_DETAIL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
# Detail keys that could carry a person, free text about people, or a secret are dropped, whatever the producer
# put there; names of rules and policies are not personal.
_PERSONAL_OR_SECRET = re.compile(
    r"name|mail|user|phone|comment|message|password|secret|token|actor|assignee|"
    r"reassigned|reporter|(^|_)by(_|$)|(^|_)key$|api_?key|(^|_)ip($|_)"
)
_NOT_PERSONAL_NAMES = {"rule_name", "policy_name"}


def iso(moment: datetime | None) -> str | None:
    """UTC ISO-8601 with a Z, or None."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def new_event_id() -> str:
    """A unique event id; it is the webhook-id header, so consumers can recognise a repeated delivery."""
    return "evt_" + uuid.uuid4().hex


def _excerpt(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def incident_snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    """The incident as consumers see it: no reporter or assignee identity, a short description."""
    return {
        "id": row["id"],
        "title": row["title"],
        "description_excerpt": _excerpt(row.get("description"), DESCRIPTION_EXCERPT),
        "area": row["area"],
        "priority": row["priority"],
        "status": row["status"],
        "category": row.get("category"),
        "external_ref": row.get("external_ref"),
        "tags": list(row.get("tags") or []),
        "assigned": row.get("assignee_id") is not None,
        "reopened_count": row.get("reopened_count", 0),
        "created_at": iso(row.get("created_at")),
        "updated_at": iso(row.get("updated_at")),
        "resolved_at": iso(row.get("resolved_at")),
        "closed_at": iso(row.get("closed_at")),
    }


def _detail_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return _excerpt(value, DETAIL_TEXT_MAX)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise TypeError


def public_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar facts of an SLA or escalation event, without anything that could name a person or hold a secret."""
    kept: dict[str, Any] = {}
    for key, value in details.items():
        if len(kept) >= DETAIL_KEYS_MAX or not _DETAIL_KEY.match(key):
            continue
        if _PERSONAL_OR_SECRET.search(key) and key not in _NOT_PERSONAL_NAMES:
            continue
        try:
            kept[key] = _detail_value(value)
        except TypeError:
            continue
    return kept


def changed_fields(event: DomainEvent) -> list[str]:
    """Which incident fields an update-like domain event changed."""
    if event.name == "incident.assigned":
        return ["assignee"]
    if event.name in ("incident.status_changed", "incident.closed"):
        return ["status"]
    return [str(name) for name in event.details.get("changed", [])]


def event_data(event_type: str, event: DomainEvent, incident: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `data` object of a notification event, or None when there is nothing to tell."""
    data: dict[str, Any] = {"incident": incident_snapshot(incident)}
    if event_type == "incident.updated":
        changed = changed_fields(event)
        if not changed:
            return None
        data["changed"] = changed
        before = event.before or {}
        data["previous"] = {
            f: (list(before[f]) if f == "tags" else before[f])
            for f in changed
            if f in PREVIOUS_VALUE_FIELDS and f in before
        }
    elif event_type == "incident.resolved":
        data["resolution"] = _excerpt(incident.get("resolution"), RESOLUTION_EXCERPT)
    elif event_type == "incident.reopened":
        data["previous_status"] = (event.before or {}).get("status")
    elif event_type == "incident.escalated":
        data["escalation"] = public_details(event.details)
    elif event_type in ("sla.warning", "sla.breached"):
        data["sla"] = public_details(event.details)
    elif event_type == "suggestion.ready":
        suggestion = event.after or {}
        data["suggestion"] = {
            "language": suggestion.get("language"),
            "text": _excerpt(suggestion.get("text"), SUGGESTION_EXCERPT),
            "citations": list(suggestion.get("citations") or []),
            "model": suggestion.get("model"),
        }
    return data


def envelope(*, event_id: str, event_type: str, occurred_at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The full event as sent: id, type, schema version, when it happened, and its data."""
    return {
        "id": event_id,
        "type": event_type,
        "version": version_of(event_type),
        "timestamp": iso(occurred_at),
        "data": data,
    }
