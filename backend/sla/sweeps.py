"""The SLA sweep: records crossed warnings and breaches and applies escalation rules, once, across all workers.

The periodic task `sla.sweep` runs it once per tick (PeriodicScheduler); even when ticks overlap, each warning,
breach and escalation is a row behind a UNIQUE constraint inserted with ON CONFLICT DO NOTHING, and the incident row
is locked while it is handled, so nothing is recorded or announced twice. Resolved and closed incidents are skipped
under that lock, so no escalation can follow a resolution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from backend.clock import Clock
from backend.context import system_context
from backend.db import Connection, transaction
from backend.errors import AppError
from backend.events import DomainEvent, EventBus
from backend.incidents.service import IncidentService
from backend.sla import repository
from backend.sla import timer_repository as clocks_db
from backend.sla.escalation import Escalator, IncidentFacts, due_rules, order_for_rule
from backend.sla.timeline import FINISHED_STATUSES, ClockReading, Level
from backend.sla.timers import load_readings, save_readings
from backend.sql import expect_row

log = logging.getLogger(__name__)
SWEEP_CONTEXT = system_context("sla-sweep")


class SweepIncomplete(AppError):
    """Some incidents could not be swept; they are retried on the next tick."""

    status_code = 500


@dataclass
class SweepReport:
    """What one sweep did."""

    incidents_checked: int = 0
    levels_recorded: int = 0
    escalations: int = 0
    failed_incidents: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain figures for logs and the CLI."""
        return {
            "incidents_checked": self.incidents_checked,
            "levels_recorded": self.levels_recorded,
            "escalations": self.escalations,
            "failed_incidents": self.failed_incidents,
        }


@dataclass(kw_only=True, eq=False)
class SlaSweeper:
    """Finds incidents with something due and handles each in its own transaction."""

    pool: asyncpg.Pool
    clock: Clock
    escalator: Escalator
    events: EventBus
    incidents: IncidentService
    batch_size: int

    async def sweep(self) -> SweepReport:
        """One pass as of the clock's now; raises SweepIncomplete (after finishing the rest) if any incident failed."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            rules = [dict(r) for r in await repository.list_rules(conn, active_only=True)]
            candidates = set(await clocks_db.incidents_with_due_checks(conn, now=now, limit=self.batch_size))
            if rules:
                candidates |= await self._incidents_with_due_rules(conn, rules, now)
        report = SweepReport()
        for incident_id in sorted(candidates):
            try:
                recorded, escalated = await self._sweep_incident(incident_id, rules, now)
            except Exception:  # noqa: BLE001 - logged, reported on the tick, retried next sweep
                log.exception("sla sweep failed for an incident", extra={"incident_id": incident_id})
                report.failed_incidents.append(incident_id)
                continue
            report.incidents_checked += 1
            report.levels_recorded += recorded
            report.escalations += escalated
        if report.levels_recorded or report.escalations:
            log.info("sla sweep", extra=report.as_dict())
        if report.failed_incidents:
            raise SweepIncomplete(f"sla sweep failed for incidents {report.failed_incidents}")
        return report

    async def _incidents_with_due_rules(self, conn: Connection, rules: list[dict[str, Any]], now: datetime) -> set[int]:
        """Open incidents for which some rule matches and has not fired (read-only; rechecked under lock)."""
        found: set[int] = set()
        after_id = 0
        while True:
            page = await clocks_db.open_incident_facts(conn, after_id=after_id, limit=self.batch_size)
            for row in page:
                if due_rules(rules, IncidentFacts.from_record(row), now):
                    found.add(row["id"])
            if len(page) < self.batch_size:
                return found
            after_id = page[-1]["id"]

    async def _sweep_incident(self, incident_id: int, rules: list[dict[str, Any]], now: datetime) -> tuple[int, int]:
        async with transaction(self.pool) as conn:
            incident = await clocks_db.lock_incident(conn, incident_id)
            if incident is None or incident["status"] in FINISHED_STATUSES:
                return 0, 0
            readings = await load_readings(conn, incident_id, now)
            recorded = 0
            for clock_row, reading in readings:
                if reading.state == "stopped":
                    continue
                for level in reading.levels:
                    if level.crossed and await self._record_level(conn, incident_id, clock_row, reading, level, now):
                        recorded += 1
            await save_readings(conn, incident_id, readings, now)
            escalated = 0
            if rules:
                facts = IncidentFacts.from_record(expect_row(await clocks_db.incident_facts(conn, incident_id)))
                for rule in due_rules(rules, facts, now):
                    if await self.escalator.escalate(conn, SWEEP_CONTEXT, incident_id, order_for_rule(rule), now):
                        escalated += 1
            return recorded, escalated

    async def _record_level(
        self,
        conn: Connection,
        incident_id: int,
        clock_row: asyncpg.Record,
        reading: ClockReading,
        level: Level,
        now: datetime,
    ) -> bool:
        """Insert a crossed warning or breach once and publish sla.warning / sla.breached; False if already there."""
        overdue = round(reading.overdue.total_seconds() / 60, 2) if level.kind == "breach" else 0.0
        elapsed = round(reading.elapsed.total_seconds() / 60, 2)
        inserted = await clocks_db.insert_level_event(
            conn,
            values={
                "incident_id": incident_id,
                "clock_kind": reading.kind,
                "kind": level.kind,
                "threshold_percent": level.threshold_percent,
                "policy_id": clock_row["policy_id"],
                "occurred_at": level.occurred_at,
                "recorded_at": now,
                "elapsed_minutes": elapsed,
                "minutes_overdue": overdue,
            },
        )
        if inserted is None:
            return False
        incident = await self.incidents.read_in(conn, incident_id)
        state = await clocks_db.get_incident_state(conn, incident_id)
        await self.events.publish(
            conn,
            DomainEvent(
                name="sla.breached" if level.kind == "breach" else "sla.warning",
                resource_type="incident",
                resource_id=incident_id,
                at=now,
                ctx=SWEEP_CONTEXT,
                before=dict(incident),
                after=dict(incident),
                details={
                    "clock": reading.kind,
                    "threshold_percent": level.threshold_percent,
                    "policy_id": clock_row["policy_id"],
                    "policy_name": state["policy_name"] if state else None,
                    "target_minutes": clock_row["target_minutes"],
                    "due_at": reading.due_at,
                    "occurred_at": level.occurred_at,
                    "elapsed_minutes": elapsed,
                    "minutes_overdue": overdue,
                },
            ),
        )
        return True
