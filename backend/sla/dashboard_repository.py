"""SQL for the supervisors' dashboard: open incidents now, escalations and ratings of a period, recurring problems."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from backend.db import Connection

CLOSED_STATUSES = ("resolved", "closed")


async def open_incident_counts(conn: Connection) -> list[asyncpg.Record]:
    """Incidents not resolved or closed, counted by status, by priority and by area (GROUPING SETS)."""
    return await conn.fetch(
        """SELECT GROUPING(status) = 0 AS by_status, GROUPING(priority) = 0 AS by_priority,
                  GROUPING(area) = 0 AS by_area, status, priority, area, count(*) AS incidents
             FROM incidents
            WHERE NOT (status = ANY($1::text[]))
            GROUP BY GROUPING SETS ((status), (priority), (area))
            ORDER BY status, priority, area""",
        list(CLOSED_STATUSES),
    )


async def escalation_counts(conn: Connection, *, date_from: datetime, date_to: datetime) -> list[asyncpg.Record]:
    """Escalations recorded in [date_from, date_to), by level and trigger (rule or manual)."""
    return await conn.fetch(
        """SELECT level, trigger, count(*) AS escalations
             FROM sla_escalations
            WHERE created_at >= $1 AND created_at < $2
            GROUP BY level, trigger
            ORDER BY level, trigger""",
        date_from,
        date_to,
    )


async def suggestion_judgements(conn: Connection, *, date_from: datetime, date_to: datetime) -> list[asyncpg.Record]:
    """Suggestions of incidents created in the period (imports left out, as in the quality report): how many
    carry each rating (null: unrated) and each feedback (null: not judged)."""
    return await conn.fetch(
        """SELECT s.rating, s.feedback, count(*) AS suggestions
             FROM suggestions s
             JOIN incidents i ON i.id = s.incident_id
            WHERE i.created_at >= $1 AND i.created_at < $2 AND i.source <> 'import'
            GROUP BY s.rating, s.feedback""",
        date_from,
        date_to,
    )


async def incidents_for_recurrence(
    conn: Connection, *, date_from: datetime, date_to: datetime, limit: int
) -> list[asyncpg.Record]:
    """The newest `limit` incidents created in the period (imports left out), oldest first."""
    return await conn.fetch(
        """SELECT * FROM (
               SELECT id, title, description, area, priority, status, created_at
                 FROM incidents
                WHERE created_at >= $1 AND created_at < $2 AND source <> 'import'
                ORDER BY created_at DESC, id DESC
                LIMIT $3) newest
            ORDER BY created_at, id""",
        date_from,
        date_to,
        limit,
    )
