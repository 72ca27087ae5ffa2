"""SLA compliance and service-quality metrics for a period (definitions in docs/sla.md).

Compliance, per clock (first response, resolution): met = stopped within the target; breached = business time past
the target (stopped or still running); pending = running within the target, left out of the rate.
compliance_rate = met / (met + breached). Minutes overdue are business minutes past the target of breached clocks,
as of now for running ones; p90 interpolates linearly like PostgreSQL's percentile_cont.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

import asyncpg

from backend.clock import Clock
from backend.db import Connection
from backend.db_routing import ReadRouting
from backend.errors import ValidationFailed
from backend.sla import reports_repository
from backend.sla import timer_repository as clocks_db
from backend.sla.timeline import read_clock
from backend.sla.timers import rules_for_clock, spans_from_rows

MAX_PERIOD = timedelta(days=400)
DEFAULT_PERIOD = timedelta(days=30)


@dataclass(frozen=True)
class ClockOutcome:
    """One clock's result as of now."""

    incident_id: int
    kind: str
    policy_id: int
    policy_name: str
    area: str
    priority: str
    stopped: bool
    breached: bool
    overdue_minutes: float
    at_risk: bool


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def check_period(date_from: datetime | None, date_to: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The period asked for, defaulting to the last 30 days; 422 naming the field when it is unusable."""
    date_to = date_to or now
    date_from = date_from or date_to - DEFAULT_PERIOD
    for name, value in (("date_from", date_from), ("date_to", date_to)):
        if value.tzinfo is None:
            raise ValidationFailed(f"{name} needs a time zone (e.g. 2025-06-01T00:00:00Z)", field=name)
    if date_from >= date_to:
        raise ValidationFailed("date_from must be before date_to", field="date_from")
    if date_to - date_from > MAX_PERIOD:
        raise ValidationFailed(f"the period may span at most {MAX_PERIOD.days} days", field="date_from")
    return date_from, date_to


def summarize_clocks(outcomes: list[ClockOutcome], at_risk: Iterable[ClockOutcome]) -> dict[str, Any]:
    """Compliance figures of one group of clocks."""
    summary: dict[str, Any] = {"total_incidents": len({o.incident_id for o in outcomes})}
    met_all = decided_all = 0
    for kind in ("first_response", "resolution"):
        clocks = [o for o in outcomes if o.kind == kind]
        met = sum(1 for o in clocks if o.stopped and not o.breached)
        breached = [o for o in clocks if o.breached]
        overdue = [o.overdue_minutes for o in breached]
        met_all += met
        decided_all += met + len(breached)
        summary[kind] = {
            "clocks": len(clocks),
            "met": met,
            "breached": len(breached),
            "pending": sum(1 for o in clocks if not o.stopped and not o.breached),
            "compliance_rate": _ratio(met, met + len(breached)),
            "avg_minutes_overdue": sum(overdue) / len(overdue) if overdue else None,
            "p90_minutes_overdue": percentile_cont(overdue, 0.9),
        }
    summary["overall_compliance_rate"] = _ratio(met_all, decided_all)
    summary["at_risk_now"] = len({o.incident_id for o in at_risk})
    return summary


def _grouped(
    outcomes: list[ClockOutcome],
    at_risk: list[ClockOutcome],
    key: Callable[[ClockOutcome], Any],
    label: Callable[[Any], dict[str, Any]],
) -> list[dict[str, Any]]:
    groups: dict[Any, list[ClockOutcome]] = defaultdict(list)
    risky: dict[Any, list[ClockOutcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[key(outcome)].append(outcome)
    for outcome in at_risk:
        risky[key(outcome)].append(outcome)
    return [
        label(k) | summarize_clocks(groups.get(k, []), risky.get(k, []))
        for k in sorted(set(groups) | set(risky), key=str)
    ]


def _quality_view(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    return {
        "total_incidents": row["total_incidents"],
        "resolved": row["resolved"],
        "resolution_rate": _ratio(row["resolved"], row["total_incidents"]),
        "escalated": row["escalated"],
        "escalation_rate": _ratio(row["escalated"], row["total_incidents"]),
        "rated": row["rated"],
        "avg_satisfaction": row["avg_satisfaction"],
        "high_satisfaction": row["high_satisfaction"],
        "high_satisfaction_rate": _ratio(row["high_satisfaction"], row["rated"]),
        "mean_resolution_minutes": row["mean_resolution_minutes"],
        "median_resolution_minutes": row["median_resolution_minutes"],
        "first_contact_resolved": row["first_contact_resolved"],
        "first_contact_resolution_rate": _ratio(row["first_contact_resolved"], row["resolved"]),
        "suggestions_judged": row["suggestions_judged"],
        "suggestions_accepted": row["suggestions_accepted"],
        "suggestion_acceptance_rate": _ratio(row["suggestions_accepted"], row["suggestions_judged"]),
    }


class SlaReportService:
    """Compliance per policy, quality figures, each broken down by area and priority."""

    def __init__(self, *, pool: asyncpg.Pool | ReadRouting, clock: Clock):
        self.pool = pool
        self.clock = clock

    async def compliance(self, date_from: datetime | None, date_to: datetime | None) -> dict[str, Any]:
        """SLA compliance of incidents created in the period, per policy, area and priority; at-risk as of now."""
        now = self.clock.now()
        date_from, date_to = check_period(date_from, date_to, now)
        async with self.pool.acquire() as conn:
            period_rows = await reports_repository.clocks_created_between(conn, date_from=date_from, date_to=date_to)
            open_rows = await reports_repository.clocks_of_open_incidents(conn)
            outcomes = await self._outcomes(conn, period_rows, now)
            at_risk = [o for o in await self._outcomes(conn, open_rows, now) if o.at_risk]
        return {
            "period": {"from": date_from, "to": date_to},
            "as_of": now,
            "policies": _grouped(
                outcomes,
                at_risk,
                lambda o: (o.policy_id, o.policy_name),
                lambda k: {"policy_id": k[0], "policy_name": k[1]},
            ),
            "by_area": _grouped(outcomes, at_risk, lambda o: o.area, lambda k: {"area": k}),
            "by_priority": _grouped(outcomes, at_risk, lambda o: o.priority, lambda k: {"priority": k}),
        }

    async def quality(self, date_from: datetime | None, date_to: datetime | None) -> dict[str, Any]:
        """Resolution, escalation, satisfaction, resolution time, first-contact resolution, acceptance."""
        now = self.clock.now()
        date_from, date_to = check_period(date_from, date_to, now)
        async with self.pool.acquire() as conn:
            rows = await reports_repository.quality_figures(conn, date_from=date_from, date_to=date_to)
        overall = next((r for r in rows if r["all_areas"] and r["all_priorities"]), None)
        empty = {
            "total_incidents": 0,
            "resolved": 0,
            "escalated": 0,
            "rated": 0,
            "avg_satisfaction": None,
            "high_satisfaction": 0,
            "mean_resolution_minutes": None,
            "median_resolution_minutes": None,
            "first_contact_resolved": 0,
            "suggestions_judged": 0,
            "suggestions_accepted": 0,
        }
        return {
            "period": {"from": date_from, "to": date_to},
            "as_of": now,
            "overall": _quality_view(overall if overall is not None else empty),
            "by_area": [
                {"area": r["area"]} | _quality_view(r) for r in rows if not r["all_areas"] and r["all_priorities"]
            ],
            "by_priority": [
                {"priority": r["priority"]} | _quality_view(r)
                for r in rows
                if r["all_areas"] and not r["all_priorities"]
            ],
        }

    async def _outcomes(self, conn: Connection, rows: list[asyncpg.Record], now: datetime) -> list[ClockOutcome]:
        running_ids = sorted({r["incident_id"] for r in rows if r["state"] != "stopped"})
        spans: dict[int, list[asyncpg.Record]] = defaultdict(list)
        for span in await clocks_db.spans_of(conn, running_ids) if running_ids else []:
            spans[span["incident_id"]].append(span)
        outcomes = []
        for row in rows:
            target_s = row["target_minutes"] * 60
            at_risk = False
            if row["state"] == "stopped":
                elapsed_s, stopped = row["elapsed_seconds"], True
            else:
                rules = rules_for_clock(row, row["first_response_at"])
                reading = read_clock(rules, spans_from_rows(spans[row["incident_id"]]), now)
                elapsed_s, stopped = reading.elapsed.total_seconds(), reading.state == "stopped"
                lowest = min(row["warning_thresholds"], default=None)
                at_risk = not stopped and lowest is not None and target_s * lowest / 100 <= elapsed_s <= target_s
            outcomes.append(
                ClockOutcome(
                    incident_id=row["incident_id"],
                    kind=row["kind"],
                    policy_id=row["policy_id"],
                    policy_name=row["policy_name"],
                    area=row["area"],
                    priority=row["priority"],
                    stopped=stopped,
                    breached=elapsed_s > target_s,
                    overdue_minutes=max(elapsed_s - target_s, 0) / 60,
                    at_risk=at_risk,
                )
            )
        return outcomes
