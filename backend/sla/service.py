"""SLA rules for the API: policies and escalation rules (CRUD), an incident's SLA, manual escalation, history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from backend.audit import service as audit
from backend.clock import Clock
from backend.context import Principal, RequestContext
from backend.db import Connection, transaction
from backend.errors import Conflict, ValidationFailed, found
from backend.incidents.service import IncidentService
from backend.sla import repository
from backend.sla import timer_repository as clocks_db
from backend.sla.escalation import EscalationOrder, Escalator
from backend.sla.schemas import EscalationRequest, PolicyCreate, PolicyUpdate, RuleCreate, RuleUpdate
from backend.sla.sweeps import SlaSweeper, SweepReport
from backend.sla.timeline import FINISHED_STATUSES, ClockReading
from backend.sla.timers import load_readings
from backend.sql import expect_row


def _minutes(delta: Any) -> float:
    return round(delta.total_seconds() / 60, 2)


def clock_view(row: asyncpg.Record, reading: ClockReading) -> dict[str, Any]:
    """The API shape of one clock."""
    upcoming = [
        lv.occurred_at
        for lv in reading.levels
        if lv.kind == "warning" and not lv.crossed and lv.occurred_at is not None
    ]
    return {
        "kind": row["kind"],
        "policy_id": row["policy_id"],
        "target_minutes": row["target_minutes"],
        "state": reading.state,
        "started_at": row["started_at"],
        "due_at": reading.due_at,
        "stopped_at": reading.stopped_at,
        "elapsed_business_minutes": _minutes(reading.elapsed),
        "remaining_business_minutes": _minutes(reading.remaining),
        "overdue_business_minutes": _minutes(reading.overdue),
        "breached": reading.breached,
        "met": (not reading.breached) if reading.state == "stopped" else None,
        "next_warning_at": min(upcoming, default=None) if reading.state == "running" else None,
    }


def escalation_view(row: asyncpg.Record) -> dict[str, Any]:
    """The API shape of one escalation."""
    data = dict(row)
    data["actor"] = {"kind": data.pop("actor_kind"), "id": data.pop("actor_id"), "name": data.pop("actor_name")}
    data.pop("reason_key", None)
    return data


def _policy_values(body: PolicyCreate | PolicyUpdate, *, partial: bool) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=partial)
    if "calendar" in values:
        values["calendar"] = body.calendar.as_spec() if body.calendar is not None else None
    return values


@dataclass(kw_only=True, eq=False)
class SlaService:
    """Everything the SLA endpoints do; one transaction per call."""

    pool: asyncpg.Pool
    clock: Clock
    escalator: Escalator
    sweeper: SlaSweeper
    incidents: IncidentService

    async def sweep(self) -> SweepReport:
        """Run one SLA sweep now (the periodic task calls this)."""
        return await self.sweeper.sweep()

    # Policies

    async def list_policies(self) -> list[dict[str, Any]]:
        """All policies in matching order."""
        async with self.pool.acquire() as conn:
            return [dict(r) for r in await repository.list_policies(conn)]

    async def get_policy(self, policy_id: int) -> dict[str, Any]:
        """One policy or NotFound."""
        async with self.pool.acquire() as conn:
            row = found(await repository.get_policy(conn, policy_id), f"SLA policy {policy_id}")
        return dict(row)

    async def create_policy(self, ctx: RequestContext, body: PolicyCreate) -> dict[str, Any]:
        """Create a policy; it applies to incidents created (or re-prioritised) from now on."""
        values = _policy_values(body, partial=False)
        self._check_targets(values)
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            await self._check_policy(conn, values, policy_id=None)
            row = await repository.insert_policy(conn, values=values, now=now)
            await audit.record(
                conn,
                ctx,
                at=now,
                action="sla.policy_created",
                resource_type="sla_policy",
                resource_id=row["id"],
                after=dict(row),
            )
        return dict(row)

    async def update_policy(self, ctx: RequestContext, policy_id: int, body: PolicyUpdate) -> dict[str, Any]:
        """Change a policy; running clocks keep their snapshot until the incident's policy is recalculated."""
        changes = _policy_values(body, partial=True)
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = found(await repository.get_policy(conn, policy_id, for_update=True), f"SLA policy {policy_id}")
            merged = dict(before) | changes
            self._check_targets(merged)
            await self._check_policy(conn, changes, policy_id=policy_id)
            row = expect_row(await repository.update_policy(conn, policy_id, changes=changes, now=now))
            await audit.record(
                conn,
                ctx,
                at=now,
                action="sla.policy_updated",
                resource_type="sla_policy",
                resource_id=policy_id,
                before=dict(before),
                after=dict(row),
            )
        return dict(row)

    async def delete_policy(self, ctx: RequestContext, policy_id: int) -> None:
        """Delete a policy no incident used; otherwise 409 (deactivate it instead)."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = found(await repository.get_policy(conn, policy_id, for_update=True), f"SLA policy {policy_id}")
            if await repository.policy_in_use(conn, policy_id):
                raise Conflict("the policy has measured incidents; set is_active to false instead", field="id")
            await repository.delete_policy(conn, policy_id)
            await audit.record(
                conn,
                ctx,
                at=now,
                action="sla.policy_deleted",
                resource_type="sla_policy",
                resource_id=policy_id,
                before=dict(before),
            )

    @staticmethod
    def _check_targets(values: dict[str, Any]) -> None:
        if values["first_response_minutes"] > values["resolution_minutes"]:
            raise ValidationFailed(
                "first_response_minutes must not exceed resolution_minutes", field="first_response_minutes"
            )

    async def _check_policy(self, conn: Connection, values: dict[str, Any], *, policy_id: int | None) -> None:
        if "name" in values and await repository.policy_name_taken(conn, values["name"], except_id=policy_id):
            raise Conflict(f"an SLA policy named '{values['name']}' exists", field="name")
        for area in values.get("areas") or []:
            if not await self.incidents.area_exists_in(conn, area):
                raise ValidationFailed(f"unknown area '{area}'", field="areas")

    # Escalation rules

    async def list_rules(self) -> list[dict[str, Any]]:
        """All escalation rules, lowest level first."""
        async with self.pool.acquire() as conn:
            return [dict(r) for r in await repository.list_rules(conn)]

    async def get_rule(self, rule_id: int) -> dict[str, Any]:
        """One rule or NotFound."""
        async with self.pool.acquire() as conn:
            row = found(await repository.get_rule(conn, rule_id), f"escalation rule {rule_id}")
        return dict(row)

    async def create_rule(self, ctx: RequestContext, body: RuleCreate) -> dict[str, Any]:
        """Create an escalation rule; the next sweep applies it to open incidents."""
        values = body.model_dump()
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            await self._check_rule(conn, values, rule_id=None)
            row = await repository.insert_rule(conn, values=values, now=now)
            await audit.record(
                conn,
                ctx,
                at=now,
                action="sla.rule_created",
                resource_type="escalation_rule",
                resource_id=row["id"],
                after=dict(row),
            )
        return dict(row)

    async def update_rule(self, ctx: RequestContext, rule_id: int, body: RuleUpdate) -> dict[str, Any]:
        """Change an escalation rule."""
        changes = body.model_dump(exclude_unset=True)
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = found(await repository.get_rule(conn, rule_id, for_update=True), f"escalation rule {rule_id}")
            await self._check_rule(conn, changes, rule_id=rule_id)
            row = expect_row(await repository.update_rule(conn, rule_id, changes=changes, now=now))
            await audit.record(
                conn,
                ctx,
                at=now,
                action="sla.rule_updated",
                resource_type="escalation_rule",
                resource_id=rule_id,
                before=dict(before),
                after=dict(row),
            )
        return dict(row)

    async def delete_rule(self, ctx: RequestContext, rule_id: int) -> None:
        """Delete a rule; escalations it caused stay in the history with its name."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = found(await repository.get_rule(conn, rule_id, for_update=True), f"escalation rule {rule_id}")
            await repository.delete_rule(conn, rule_id)
            await audit.record(
                conn,
                ctx,
                at=now,
                action="sla.rule_deleted",
                resource_type="escalation_rule",
                resource_id=rule_id,
                before=dict(before),
            )

    async def _check_rule(self, conn: Connection, values: dict[str, Any], *, rule_id: int | None) -> None:
        if "name" in values and await repository.rule_name_taken(conn, values["name"], except_id=rule_id):
            raise Conflict(f"an escalation rule named '{values['name']}' exists", field="name")
        if (
            values.get("reassign_to") is not None
            and await self.incidents.assignable_user_in(conn, values["reassign_to"]) is None
        ):
            raise ValidationFailed(
                f"user {values['reassign_to']} does not exist or cannot own incidents", field="reassign_to"
            )

    # Incidents

    async def incident_sla(self, incident_id: int, *, viewer: Principal | None = None) -> dict[str, Any]:
        """An incident's policy, clocks (due, remaining, overdue, paused), recorded levels and escalation level."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            await self.incidents.read_in(conn, incident_id, viewer=viewer)
            state = await clocks_db.get_incident_state(conn, incident_id)
            readings = await load_readings(conn, incident_id, now)
            events = await clocks_db.recorded_levels(conn, incident_id)
        policy = None
        if state is not None and state["policy_id"] is not None:
            policy = {"id": state["policy_id"], "name": state["policy_name"], "applied_at": state["policy_applied_at"]}
        return {
            "incident_id": incident_id,
            "policy": policy,
            "calendar": state["calendar"] if state else None,
            "first_response_at": state["first_response_at"] if state else None,
            "escalation_level": state["escalation_level"] if state else 0,
            "escalated_department": state["escalated_department"] if state else None,
            "clocks": [clock_view(row, reading) for row, reading in readings],
            "events": [
                {
                    "clock": e["clock_kind"],
                    "kind": e["kind"],
                    "threshold_percent": e["threshold_percent"],
                    "occurred_at": e["occurred_at"],
                    "recorded_at": e["recorded_at"],
                    "elapsed_minutes": float(e["elapsed_minutes"]),
                    "minutes_overdue": float(e["minutes_overdue"]),
                }
                for e in events
            ],
            "as_of": now,
        }

    async def escalate(self, ctx: RequestContext, incident_id: int, body: EscalationRequest) -> dict[str, Any]:
        """Escalate by hand, with a reason; not below the current level, not once resolved or closed."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            incident = found(await clocks_db.lock_incident(conn, incident_id), f"incident {incident_id}")
            if incident["status"] in FINISHED_STATUSES:
                raise Conflict(f"the incident is {incident['status']}; reopen it before escalating", field="status")
            state = await clocks_db.get_incident_state(conn, incident_id)
            current = state["escalation_level"] if state else 0
            if body.level < current:
                raise Conflict(
                    f"the incident is already at level {current}; escalate to {current} or higher", field="level"
                )
            order = EscalationOrder(
                level=body.level,
                reason=body.reason,
                reason_key=f"manual:{uuid.uuid4()}",
                trigger="manual",
                target_department=body.target_department,
                reassign_to=body.assignee_id,
                strict_reassign=True,
            )
            # A fresh reason key: never recorded before, so the escalation happens.
            row = expect_row(await self.escalator.escalate(conn, ctx, incident_id, order, now))
        return escalation_view(row)

    async def escalations(self, incident_id: int) -> list[dict[str, Any]]:
        """The escalation history of an incident, oldest first."""
        async with self.pool.acquire() as conn:
            await self.incidents.read_in(conn, incident_id)
            return [escalation_view(r) for r in await repository.list_escalations(conn, incident_id)]


class EscalationMessageReader:
    """What the notification domain reads of an escalation: the messages it wrote for its audiences."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def __call__(self, escalation_id: int) -> dict[str, Any] | None:
        """`{"department": {...}, "reporter": {...}}` of one escalation, or None."""
        async with self.pool.acquire() as conn:
            return await repository.get_escalation_messages(conn, escalation_id)
