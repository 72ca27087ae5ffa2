"""SQL for per-incident SLA state: status timelines, clocks, recorded warnings and breaches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from backend.db import Connection

_OPEN_STATUSES_SQL = "i.status NOT IN ('resolved', 'closed')"


async def ensure_incident_state(
    conn: Connection, *, incident_id: int, status: str, since: datetime, now: datetime
) -> None:
    """Create the SLA state row and the first status span of an incident if missing."""
    await conn.execute(
        "INSERT INTO sla_incidents (incident_id, updated_at) VALUES ($1, $2) ON CONFLICT (incident_id) DO NOTHING",
        incident_id,
        now,
    )
    await conn.execute(
        """INSERT INTO sla_status_spans (incident_id, seq, status, started_at)
           SELECT $1, 1, $2, $3
            WHERE NOT EXISTS (SELECT 1 FROM sla_status_spans WHERE incident_id = $1)""",
        incident_id,
        status,
        since,
    )


async def get_incident_state(conn: Connection, incident_id: int) -> asyncpg.Record | None:
    """The SLA state row of an incident."""
    return await conn.fetchrow("SELECT * FROM sla_incidents WHERE incident_id = $1", incident_id)


async def set_incident_policy(
    conn: Connection, incident_id: int, *, policy: asyncpg.Record | None, now: datetime
) -> None:
    """Remember which policy (and calendar snapshot) applies to the incident."""
    await conn.execute(
        """UPDATE sla_incidents
              SET policy_id = $2, policy_name = $3, calendar = $4, policy_applied_at = $5, updated_at = $5
            WHERE incident_id = $1""",
        incident_id,
        policy["id"] if policy else None,
        policy["name"] if policy else None,
        policy["calendar"] if policy else None,
        now,
    )


async def record_first_response(conn: Connection, incident_id: int, *, at: datetime, by: str) -> bool:
    """Set the first response once; False when it was already set."""
    result = await conn.execute(
        """UPDATE sla_incidents SET first_response_at = $2, first_response_by = $3, updated_at = $2
            WHERE incident_id = $1 AND first_response_at IS NULL""",
        incident_id,
        at,
        by,
    )
    return result != "UPDATE 0"


async def count_assignee_change(conn: Connection, incident_id: int, now: datetime) -> None:
    """One more hand-over to an assignee."""
    await conn.execute(
        "UPDATE sla_incidents SET assignee_changes = assignee_changes + 1, updated_at = $2 WHERE incident_id = $1",
        incident_id,
        now,
    )


async def set_consecutive_rejections(conn: Connection, incident_id: int, *, rejected: bool, now: datetime) -> None:
    """Count a rejected suggestion, or reset the count on an accepted one."""
    await conn.execute(
        """UPDATE sla_incidents
              SET consecutive_rejections = CASE WHEN $2 THEN consecutive_rejections + 1 ELSE 0 END, updated_at = $3
            WHERE incident_id = $1""",
        incident_id,
        rejected,
        now,
    )


async def raise_escalation_level(
    conn: Connection, incident_id: int, *, level: int, department: str | None, now: datetime
) -> None:
    """Escalation level only goes up; the department is the latest one named."""
    await conn.execute(
        """UPDATE sla_incidents
              SET escalation_level = GREATEST(escalation_level, $2),
                  escalated_department = COALESCE($3, escalated_department), updated_at = $4
            WHERE incident_id = $1""",
        incident_id,
        level,
        department,
        now,
    )


async def list_spans(conn: Connection, incident_id: int) -> list[asyncpg.Record]:
    """The status timeline of an incident, in order."""
    return await conn.fetch(
        "SELECT seq, status, started_at, ended_at FROM sla_status_spans WHERE incident_id = $1 ORDER BY seq",
        incident_id,
    )


async def spans_of(conn: Connection, incident_ids: list[int]) -> list[asyncpg.Record]:
    """Status timelines of several incidents."""
    return await conn.fetch(
        """SELECT incident_id, seq, status, started_at, ended_at FROM sla_status_spans
            WHERE incident_id = ANY ($1::bigint[]) ORDER BY incident_id, seq""",
        incident_ids,
    )


async def change_status_span(conn: Connection, incident_id: int, *, status: str, at: datetime) -> None:
    """Close the open span and open one for the new status."""
    await conn.execute(
        "UPDATE sla_status_spans SET ended_at = $2 WHERE incident_id = $1 AND ended_at IS NULL", incident_id, at
    )
    await conn.execute(
        """INSERT INTO sla_status_spans (incident_id, seq, status, started_at)
           SELECT $1, COALESCE(max(seq), 0) + 1, $2, $3 FROM sla_status_spans WHERE incident_id = $1""",
        incident_id,
        status,
        at,
    )


async def list_clocks(conn: Connection, incident_id: int) -> list[asyncpg.Record]:
    """The clocks of one incident."""
    return await conn.fetch("SELECT * FROM sla_clocks WHERE incident_id = $1 ORDER BY kind", incident_id)


async def replace_clocks(
    conn: Connection, incident_id: int, *, policy: asyncpg.Record | None, started_at: datetime, now: datetime
) -> None:
    """Drop the incident's clocks and, with a policy, start both from its creation with the policy's snapshot."""
    await conn.execute("DELETE FROM sla_clocks WHERE incident_id = $1", incident_id)
    if policy is None:
        return
    for kind, target in (
        ("first_response", policy["first_response_minutes"]),
        ("resolution", policy["resolution_minutes"]),
    ):
        await conn.execute(
            """INSERT INTO sla_clocks (incident_id, kind, policy_id, target_minutes, calendar, pause_statuses,
                                       warning_thresholds, started_at, state, computed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', $9)""",
            incident_id,
            kind,
            policy["id"],
            target,
            policy["calendar"],
            policy["pause_statuses"],
            policy["warning_thresholds"],
            started_at,
            now,
        )


async def save_clock_reading(conn: Connection, incident_id: int, kind: str, *, values: dict[str, Any]) -> None:
    """Store the derived columns of one clock."""
    await conn.execute(
        """UPDATE sla_clocks
              SET state = $3, stopped_at = $4, due_at = $5, elapsed_seconds = $6, breached = $7,
                  next_check_at = $8, computed_at = $9
            WHERE incident_id = $1 AND kind = $2""",
        incident_id,
        kind,
        values["state"],
        values["stopped_at"],
        values["due_at"],
        values["elapsed_seconds"],
        values["breached"],
        values["next_check_at"],
        values["computed_at"],
    )


async def recorded_levels(conn: Connection, incident_id: int) -> list[asyncpg.Record]:
    """Warnings and breaches already recorded for an incident."""
    return await conn.fetch(
        """SELECT id, clock_kind, kind, threshold_percent, policy_id, occurred_at, recorded_at, elapsed_minutes,
                  minutes_overdue
             FROM sla_events WHERE incident_id = $1 ORDER BY occurred_at, id""",
        incident_id,
    )


async def insert_level_event(conn: Connection, *, values: dict[str, Any]) -> asyncpg.Record | None:
    """Record a warning or breach once; None when it was already recorded."""
    return await conn.fetchrow(
        """INSERT INTO sla_events (incident_id, clock_kind, kind, threshold_percent, policy_id, occurred_at,
                                   recorded_at, elapsed_minutes, minutes_overdue)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT ON CONSTRAINT sla_events_once DO NOTHING
           RETURNING id, clock_kind, kind, threshold_percent""",
        values["incident_id"],
        values["clock_kind"],
        values["kind"],
        values["threshold_percent"],
        values["policy_id"],
        values["occurred_at"],
        values["recorded_at"],
        values["elapsed_minutes"],
        values["minutes_overdue"],
    )


async def incidents_with_due_checks(conn: Connection, *, now: datetime, limit: int) -> list[int]:
    """Open incidents with a clock whose next check time has come."""
    rows = await conn.fetch(
        f"""SELECT c.incident_id, min(c.next_check_at) AS first_check
              FROM sla_clocks c JOIN incidents i ON i.id = c.incident_id
             WHERE c.next_check_at <= $1 AND {_OPEN_STATUSES_SQL}
             GROUP BY c.incident_id
             ORDER BY first_check
             LIMIT $2""",
        now,
        limit,
    )
    return [r["incident_id"] for r in rows]


_FACTS_SELECT = """
    SELECT i.id, i.status, i.priority, i.created_at, i.reopened_count, i.assignee_id,
           COALESCE(s.consecutive_rejections, 0) AS consecutive_rejections,
           COALESCE(s.escalation_level, 0) AS escalation_level, s.calendar,
           (SELECT sp.started_at FROM sla_status_spans sp
             WHERE sp.incident_id = i.id AND sp.ended_at IS NULL) AS status_since,
           COALESCE((SELECT array_agg(e.clock_kind || ':' || e.kind || ':' || e.threshold_percent)
                       FROM sla_events e WHERE e.incident_id = i.id), '{}') AS levels,
           COALESCE((SELECT array_agg(x.level || ':' || x.reason_key)
                       FROM sla_escalations x WHERE x.incident_id = i.id), '{}') AS fired
      FROM incidents i LEFT JOIN sla_incidents s ON s.incident_id = i.id
"""


async def open_incident_facts(conn: Connection, *, after_id: int, limit: int) -> list[asyncpg.Record]:
    """What escalation rules look at, for a page of open incidents (keyset on id)."""
    return await conn.fetch(
        _FACTS_SELECT + f" WHERE {_OPEN_STATUSES_SQL} AND i.id > $1 ORDER BY i.id LIMIT $2", after_id, limit
    )


async def incident_facts(conn: Connection, incident_id: int) -> asyncpg.Record | None:
    """What escalation rules look at, for one incident."""
    return await conn.fetchrow(_FACTS_SELECT + " WHERE i.id = $1", incident_id)


async def lock_incident(conn: Connection, incident_id: int) -> asyncpg.Record | None:
    """Row-lock an incident (the same lock every incident change takes) and return its SLA-relevant columns."""
    return await conn.fetchrow(
        """SELECT id, status, priority, area, customer_tier, created_at, reopened_count, assignee_id, source
             FROM incidents WHERE id = $1 FOR UPDATE""",
        incident_id,
    )
