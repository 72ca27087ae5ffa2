"""The SLA clock listener: starts, stops, pauses and recalculates clocks inside the transaction of each change.

Rules (docs/sla.md explains them with examples):
- incident.created: the matching active policy is applied; a first-response and a resolution clock start at the
  incident's creation time with a snapshot of the policy (later edits of the policy do not move running clocks).
- Status changes extend the status timeline; a clock does not run in its policy's pause statuses, and the
  resolution clock stops in resolved/closed (a reopen resumes it; the time in between does not count).
- First response: the first comment by a technician or above, or the first assignment by a person, as
  PRS_SLA_FIRST_RESPONSE_ON says; resolving before any response counts as the response.
- A change of priority, customer tier or area looks the policy up again; a different policy (or the same one
  edited since its snapshot was taken) rebuilds both clocks from the creation time, as if it had applied all along.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from backend.audit import service as audit
from backend.db import Connection
from backend.events import DomainEvent
from backend.sla import repository as policies_db
from backend.sla import timer_repository as clocks_db
from backend.sla.calendars import BusinessCalendar
from backend.sla.timeline import FINISHED_STATUSES, ClockReading, ClockRules, StatusSpan, next_check_at, read_clock

log = logging.getLogger(__name__)

MATCH_FIELDS = frozenset({"priority", "customer_tier", "area"})
STAFF_ROLES = frozenset({"technician", "supervisor", "admin"})
STATUS_EVENTS = frozenset({"incident.status_changed", "incident.resolved", "incident.closed", "incident.reopened"})


def spans_from_rows(rows: list[asyncpg.Record]) -> list[StatusSpan]:
    """Status spans from their rows."""
    return [StatusSpan(r["status"], r["started_at"], r["ended_at"]) for r in rows]


def rules_for_clock(row: asyncpg.Record, first_response_at: datetime | None) -> ClockRules:
    """What a stored clock measures."""
    return ClockRules(
        kind=row["kind"],
        target=timedelta(minutes=row["target_minutes"]),
        calendar=BusinessCalendar.from_spec(row["calendar"]),
        pause_statuses=frozenset(row["pause_statuses"]),
        warning_thresholds=tuple(row["warning_thresholds"]),
        started_at=row["started_at"],
        stopped_at=first_response_at if row["kind"] == "first_response" else None,
    )


async def load_readings(conn: Connection, incident_id: int, now: datetime) -> list[tuple[asyncpg.Record, ClockReading]]:
    """Every clock of an incident read as of `now` (nothing is written)."""
    rows = await clocks_db.list_clocks(conn, incident_id)
    if not rows:
        return []
    state = await clocks_db.get_incident_state(conn, incident_id)
    spans = spans_from_rows(await clocks_db.list_spans(conn, incident_id))
    first_response_at = state["first_response_at"] if state else None
    return [(row, read_clock(rules_for_clock(row, first_response_at), spans, now)) for row in rows]


async def save_readings(
    conn: Connection, incident_id: int, readings: list[tuple[asyncpg.Record, ClockReading]], now: datetime
) -> None:
    """Store derived clock columns, with the next time a sweep must look (unrecorded levels only)."""
    recorded = {
        (r["clock_kind"], r["kind"], r["threshold_percent"]) for r in await clocks_db.recorded_levels(conn, incident_id)
    }
    for row, reading in readings:
        done = {(kind, percent) for clock, kind, percent in recorded if clock == row["kind"]}
        await clocks_db.save_clock_reading(
            conn,
            incident_id,
            row["kind"],
            values={
                "state": reading.state,
                "stopped_at": reading.stopped_at,
                "due_at": reading.due_at,
                "elapsed_seconds": reading.elapsed.total_seconds(),
                "breached": reading.breached,
                "next_check_at": next_check_at(reading, done),
                "computed_at": now,
            },
        )


async def refresh_clocks(
    conn: Connection, incident_id: int, now: datetime
) -> list[tuple[asyncpg.Record, ClockReading]]:
    """Recompute and store an incident's clocks as of `now`."""
    readings = await load_readings(conn, incident_id, now)
    await save_readings(conn, incident_id, readings, now)
    return readings


def snapshot_differs(policy: asyncpg.Record, clock_rows: list[asyncpg.Record]) -> bool:
    """True when the policy was edited since its snapshot was taken into these clocks."""
    targets = {"first_response": policy["first_response_minutes"], "resolution": policy["resolution_minutes"]}
    if {row["kind"] for row in clock_rows} != set(targets):
        return True
    return any(
        row["target_minutes"] != targets[row["kind"]]
        or row["calendar"] != policy["calendar"]
        or list(row["pause_statuses"]) != list(policy["pause_statuses"])
        or list(row["warning_thresholds"]) != list(policy["warning_thresholds"])
        for row in clock_rows
    )


async def apply_policy(conn: Connection, incident: dict[str, Any], now: datetime) -> asyncpg.Record | None:
    """Find the policy for the incident's attributes and (re)build its clocks from the creation time."""
    policy = await policies_db.matching_policy(
        conn, priority=incident["priority"], customer_tier=incident.get("customer_tier"), area=incident["area"]
    )
    await clocks_db.set_incident_policy(conn, incident["id"], policy=policy, now=now)
    await clocks_db.replace_clocks(conn, incident["id"], policy=policy, started_at=incident["created_at"], now=now)
    return policy


class SlaClockListener:
    """EventBus listener that keeps every incident's SLA clocks in step with its changes."""

    def __init__(self, *, first_response_on: str):
        self.count_comments = first_response_on in ("comment", "comment_or_assignment")
        self.count_assignments = first_response_on in ("assignment", "comment_or_assignment")

    async def handle(self, conn: Connection, event: DomainEvent) -> None:
        """React to incident and suggestion events inside the publishing transaction."""
        if event.resource_type != "incident":
            return
        if event.name == "incident.created":
            await self._on_created(conn, event)
            return
        after = event.after or {}
        if event.name == "suggestion.feedback":
            await self._on_feedback(conn, event)
            return
        if event.name not in STATUS_EVENTS | {"incident.assigned", "incident.commented", "incident.updated"}:
            return
        await self._ensure_state(conn, event)
        changed = False
        if event.name in STATUS_EVENTS:
            await clocks_db.change_status_span(conn, event.resource_id, status=after["status"], at=event.at)
            if after["status"] in FINISHED_STATUSES:
                await clocks_db.record_first_response(conn, event.resource_id, at=event.at, by="resolution")
            changed = True
        elif event.name == "incident.assigned":
            changed = await self._on_assigned(conn, event)
        elif event.name == "incident.commented":
            changed = await self._on_commented(conn, event)
        elif event.name == "incident.updated" and MATCH_FIELDS & set(event.details.get("changed", [])):
            changed = await self._on_attributes_changed(conn, event)
        if changed:
            await refresh_clocks(conn, event.resource_id, event.at)

    async def _ensure_state(self, conn: Connection, event: DomainEvent) -> None:
        before = event.before or event.after or {}
        await clocks_db.ensure_incident_state(
            conn,
            incident_id=event.resource_id,
            status=before.get("status", "open"),
            since=before.get("updated_at") or event.at,
            now=event.at,
        )

    async def _on_created(self, conn: Connection, event: DomainEvent) -> None:
        incident = event.after or {}
        await clocks_db.ensure_incident_state(
            conn, incident_id=event.resource_id, status=incident["status"], since=incident["created_at"], now=event.at
        )
        if incident.get("source") == "import":
            return  # historical incidents loaded into the knowledge base are not measured
        await apply_policy(conn, incident, event.at)
        await refresh_clocks(conn, event.resource_id, event.at)

    async def _on_assigned(self, conn: Connection, event: DomainEvent) -> bool:
        before, after = event.before or {}, event.after or {}
        assignee = after.get("assignee_id")
        if assignee is None or assignee == before.get("assignee_id"):
            return False
        await clocks_db.count_assignee_change(conn, event.resource_id, event.at)
        if not (self.count_assignments and event.ctx.principal.kind == "user"):
            return False
        return await clocks_db.record_first_response(
            conn, event.resource_id, at=event.at, by=f"assignment by {event.ctx.principal.name}"
        )

    async def _on_commented(self, conn: Connection, event: DomainEvent) -> bool:
        details = event.details
        if not (
            self.count_comments and details.get("author_kind") == "user" and details.get("author_role") in STAFF_ROLES
        ):
            return False
        return await clocks_db.record_first_response(
            conn, event.resource_id, at=event.at, by=f"comment by {event.ctx.principal.name}"
        )

    async def _on_attributes_changed(self, conn: Connection, event: DomainEvent) -> bool:
        incident = event.after or {}
        state = await clocks_db.get_incident_state(conn, event.resource_id)
        policy = await policies_db.matching_policy(
            conn, priority=incident["priority"], customer_tier=incident.get("customer_tier"), area=incident["area"]
        )
        old_id = state["policy_id"] if state else None
        new_id = policy["id"] if policy else None
        if old_id == new_id and (
            policy is None or not snapshot_differs(policy, await clocks_db.list_clocks(conn, event.resource_id))
        ):
            return False
        await apply_policy(conn, incident, event.at)
        await audit.record(
            conn,
            event.ctx,
            at=event.at,
            action="sla.policy_applied",
            resource_type="incident",
            resource_id=event.resource_id,
            before={"policy_id": old_id},
            after={"policy_id": new_id, "policy_name": policy["name"] if policy else None},
        )
        log.info("sla policy recalculated", extra={"incident_id": event.resource_id, "policy_id": new_id})
        return True

    async def _on_feedback(self, conn: Connection, event: DomainEvent) -> None:
        new = (event.after or {}).get("feedback")
        old = (event.before or {}).get("feedback")
        if new == "rejected" and old != "rejected":
            await clocks_db.set_consecutive_rejections(conn, event.resource_id, rejected=True, now=event.at)
        elif new == "accepted":
            await clocks_db.set_consecutive_rejections(conn, event.resource_id, rejected=False, now=event.at)
