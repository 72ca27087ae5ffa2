"""Escalation rules (conditions, combination) and the escalation action itself.

An escalation is recorded once per (incident, level, reason key): automatic ones use `rule:<id>`, so a rule fires at
most once per incident at its level however many workers sweep; manual ones get a unique key each time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from backend.audit import service as audit
from backend.context import RequestContext
from backend.db import Connection
from backend.errors import ValidationFailed
from backend.events import DomainEvent, EventBus
from backend.incidents.service import IncidentService
from backend.sla import repository
from backend.sla import timer_repository as clocks_db
from backend.sla.calendars import BusinessCalendar
from backend.sla.messages import describe_rule, render_escalation_messages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncidentFacts:
    """What escalation conditions look at, for one incident at one moment."""

    incident_id: int
    status: str
    priority: str
    created_at: datetime
    status_since: datetime
    reopened_count: int
    consecutive_rejections: int
    escalation_level: int
    calendar: BusinessCalendar
    levels: frozenset[tuple[str, str, int]]  # (clock kind, warning|breach, threshold percent) recorded
    fired: frozenset[tuple[int, str]]  # (level, reason key) escalations recorded

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> "IncidentFacts":
        """Facts from a row of timer_repository.incident_facts / open_incident_facts."""
        levels = set()
        for text in row["levels"]:
            clock, kind, percent = text.split(":")
            levels.add((clock, kind, int(percent)))
        fired = set()
        for text in row["fired"]:
            level, key = text.split(":", 1)
            fired.add((int(level), key))
        return cls(
            incident_id=row["id"],
            status=row["status"],
            priority=row["priority"],
            created_at=row["created_at"],
            status_since=row["status_since"] or row["created_at"],
            reopened_count=row["reopened_count"],
            consecutive_rejections=row["consecutive_rejections"],
            escalation_level=row["escalation_level"],
            calendar=BusinessCalendar.from_spec(row["calendar"]),
            levels=frozenset(levels),
            fired=frozenset(fired),
        )


def _clock_matches(wanted: str, clock: str) -> bool:
    return wanted == "any" or wanted == clock


def condition_holds(condition: dict[str, Any], facts: IncidentFacts, now: datetime) -> bool:
    """True when one condition is met."""
    kind = condition["type"]
    if kind == "duration_exceeds":
        if condition.get("since", "created") == "status":
            if condition.get("status") and condition["status"] != facts.status:
                return False
            since = facts.status_since
        else:
            since = facts.created_at
        return facts.calendar.business_duration(since, now) > timedelta(minutes=condition["minutes"])
    if kind == "sla_breached":
        return any(k == "breach" and _clock_matches(condition.get("clock", "any"), c) for c, k, _ in facts.levels)
    if kind == "sla_warning":
        threshold = condition.get("threshold") or 0
        return any(
            k == "warning" and p >= threshold and _clock_matches(condition.get("clock", "any"), c)
            for c, k, p in facts.levels
        )
    if kind == "priority_is":
        return facts.priority in condition["priorities"]
    if kind == "suggestion_rejected_times":
        return facts.consecutive_rejections >= condition["times"]
    if kind == "reopened_times":
        return facts.reopened_count >= condition["times"]
    raise ValueError(f"unknown escalation condition type '{kind}'")


def rule_reason_key(rule_id: int) -> str:
    """The reason key of escalations caused by a rule."""
    return f"rule:{rule_id}"


def rule_matches(rule: dict[str, Any], facts: IncidentFacts, now: datetime) -> bool:
    """True when the rule's conditions hold, combined with all/any."""
    results = (condition_holds(c, facts, now) for c in rule["conditions"])
    return any(results) if rule["combine"] == "any" else all(results)


def order_for_rule(rule: dict[str, Any]) -> "EscalationOrder":
    """The escalation a rule asks for."""
    return EscalationOrder(
        level=rule["level"],
        reason=describe_rule(rule, "en"),
        reason_key=rule_reason_key(rule["id"]),
        trigger="rule",
        target_department=rule["target_department"],
        reassign_to=rule["reassign_to"],
        notify=rule["notify"],
        rule=rule,
    )


def due_rules(rules: list[dict[str, Any]], facts: IncidentFacts, now: datetime) -> list[dict[str, Any]]:
    """Active rules that match and have not fired for this incident at their level."""
    return [
        rule
        for rule in rules
        if rule["is_active"]
        and (rule["level"], rule_reason_key(rule["id"])) not in facts.fired
        and rule_matches(rule, facts, now)
    ]


@dataclass(frozen=True)
class EscalationOrder:
    """What to escalate, to where, and why."""

    level: int
    reason: str
    reason_key: str
    trigger: str  # rule | manual
    target_department: str | None = None
    reassign_to: int | None = None
    notify: bool = True
    rule: dict[str, Any] | None = None  # the rule that fired (its reason is rendered in the message language)
    strict_reassign: bool = False  # manual: an unknown assignee is the caller's error


class Escalator:
    """Records escalations, raises the level, reassigns, and publishes `incident.escalated`."""

    def __init__(self, *, events: EventBus, incidents: IncidentService, default_language: str):
        self.events = events
        self.incidents = incidents
        self.default_language = default_language

    async def escalate(
        self, conn: Connection, ctx: RequestContext, incident_id: int, order: EscalationOrder, now: datetime
    ) -> asyncpg.Record | None:
        """Escalate a locked incident once; None when this (level, reason) was already recorded."""
        before = await self.incidents.read_in(conn, incident_id)
        state = await clocks_db.get_incident_state(conn, incident_id)
        previous_level = state["escalation_level"] if state else 0
        assignee = await self._reassignment_target(conn, before, order)
        language = await repository.incident_language(conn, incident_id) or self.default_language
        steps = await repository.steps_tried(conn, incident_id)
        messages = render_escalation_messages(
            language,
            incident=dict(before),
            level=order.level,
            previous_level=previous_level,
            reason=describe_rule(order.rule, language) if order.rule else order.reason,
            department=order.target_department,
            reassigned_to=assignee["username"] if assignee else None,
            steps=steps,
        )
        rule_id = order.rule["id"] if order.rule else None
        rule_name = order.rule["name"] if order.rule else None
        row = await repository.insert_escalation(
            conn,
            values={
                "incident_id": incident_id,
                "level": order.level,
                "previous_level": previous_level,
                "trigger": order.trigger,
                "reason_key": order.reason_key,
                "reason": order.reason,
                "rule_id": rule_id,
                "rule_name": rule_name,
                "target_department": order.target_department,
                "reassigned_to": assignee["id"] if assignee else None,
                "actor_kind": ctx.principal.kind,
                "actor_id": None if ctx.principal.id is None else str(ctx.principal.id),
                "actor_name": ctx.principal.name,
                "language": language,
                "messages": messages,
                "created_at": now,
            },
        )
        if row is None:
            return None
        await clocks_db.raise_escalation_level(
            conn, incident_id, level=order.level, department=order.target_department, now=now
        )
        after = before
        if assignee is not None:
            after = await self.incidents.assign_in(conn, ctx, before, assignee["id"], now, reason="escalation")
        await audit.record(
            conn,
            ctx,
            at=now,
            action="incident.escalated",
            resource_type="incident",
            resource_id=incident_id,
            before={"escalation_level": previous_level},
            after={
                "escalation_level": max(previous_level, order.level),
                "reason": order.reason,
                "trigger": order.trigger,
                "target_department": order.target_department,
                "reassigned_to": row["reassigned_to"],
            },
        )
        if order.notify:
            await self.events.publish(
                conn,
                DomainEvent(
                    name="incident.escalated",
                    resource_type="incident",
                    resource_id=incident_id,
                    at=now,
                    ctx=ctx,
                    before=dict(before),
                    after=dict(after),
                    details={
                        "escalation_id": row["id"],
                        "level": order.level,
                        "previous_level": previous_level,
                        "trigger": order.trigger,
                        "reason": order.reason,
                        "rule_id": rule_id,
                        "rule_name": rule_name,
                        "target_department": order.target_department,
                        "reassigned_to": row["reassigned_to"],
                        "language": language,
                        "messages": messages,
                    },
                ),
            )
        log.info(
            "incident escalated", extra={"incident_id": incident_id, "level": order.level, "trigger": order.trigger}
        )
        return row

    async def _reassignment_target(
        self, conn: Connection, incident: asyncpg.Record, order: EscalationOrder
    ) -> asyncpg.Record | None:
        if order.reassign_to is None or order.reassign_to == incident["assignee_id"]:
            return None
        user = await self.incidents.assignable_user_in(conn, order.reassign_to)
        if user is None:
            if order.strict_reassign:
                raise ValidationFailed(
                    f"user {order.reassign_to} does not exist or cannot own incidents", field="assignee_id"
                )
            log.warning(
                "escalation rule names a user who cannot own incidents; not reassigning",
                extra={"incident_id": incident["id"], "reason_key": order.reason_key, "user_id": order.reassign_to},
            )
        return user
