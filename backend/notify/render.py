"""Human-readable text of an event, shared by the Slack and e-mail channels."""

from __future__ import annotations

from typing import Any

TITLES = {
    "incident.created": "Incident #{id} reported",
    "incident.updated": "Incident #{id} updated",
    "incident.escalated": "Incident #{id} escalated",
    "incident.resolved": "Incident #{id} resolved",
    "incident.reopened": "Incident #{id} reopened",
    "suggestion.ready": "Suggestion ready for incident #{id}",
    "sla.warning": "SLA warning on incident #{id}",
    "sla.breached": "SLA breached on incident #{id}",
}


def headline(payload: dict[str, Any]) -> str:
    """One line naming what happened, e.g. 'Incident #12 reported: Conveyor line 3 stops'."""
    kind, data = payload["type"], payload.get("data", {})
    incident = data.get("incident")
    if kind in TITLES and isinstance(incident, dict):
        line = TITLES[kind].format(id=incident.get("id"))
        title = incident.get("title")
        return f"{line}: {title}" if title else line
    if kind == "notification.endpoint_disabled":
        endpoint = data.get("endpoint", {})
        return f"Notification endpoint #{endpoint.get('id')} ({endpoint.get('kind')}) was disabled"
    if kind == "test.ping":
        return "Test message from PR-System"
    return kind


def detail_lines(payload: dict[str, Any]) -> list[str]:
    """Short 'label: value' lines with the facts a reader needs first."""
    data = payload.get("data", {})
    lines: list[str] = []
    incident = data.get("incident")
    if isinstance(incident, dict):
        for label, key in (
            ("Area", "area"),
            ("Priority", "priority"),
            ("Status", "status"),
            ("External ref", "external_ref"),
        ):
            if incident.get(key):
                lines.append(f"{label}: {incident[key]}")
    if data.get("changed"):
        lines.append("Changed: " + ", ".join(data["changed"]))
    for section in ("escalation", "sla"):
        if isinstance(data.get(section), dict):
            lines.extend(f"{key}: {value}" for key, value in data[section].items())
    if data.get("resolution"):
        lines.append("Solution: " + data["resolution"])
    suggestion = data.get("suggestion")
    if isinstance(suggestion, dict) and suggestion.get("text"):
        lines.append("Suggestion: " + suggestion["text"])
    if payload["type"] == "notification.endpoint_disabled":
        lines.append("Reason: " + str(data.get("reason", "")))
    if payload["type"] == "test.ping" and data.get("message"):
        lines.append(str(data["message"]))
    lines.append(f"Event: {payload['type']} v{payload['version']} · id {payload['id']} · {payload['timestamp']}")
    return lines
