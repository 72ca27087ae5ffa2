"""SQL for SLA compliance and service-quality metrics."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from backend.db import Connection

_CLOCK_SELECT = """
    SELECT c.incident_id, c.kind, c.policy_id, p.name AS policy_name, c.target_minutes, c.calendar,
           c.pause_statuses, c.warning_thresholds, c.started_at, c.state, c.elapsed_seconds,
           i.area, i.priority, i.status, si.first_response_at
      FROM sla_clocks c
      JOIN incidents i ON i.id = c.incident_id
      JOIN sla_policies p ON p.id = c.policy_id
      LEFT JOIN sla_incidents si ON si.incident_id = c.incident_id
"""


async def clocks_created_between(conn: Connection, *, date_from: datetime, date_to: datetime) -> list[asyncpg.Record]:
    """Clocks of incidents created in [date_from, date_to)."""
    return await conn.fetch(_CLOCK_SELECT + " WHERE i.created_at >= $1 AND i.created_at < $2", date_from, date_to)


async def clocks_of_open_incidents(conn: Connection) -> list[asyncpg.Record]:
    """Clocks of every incident not resolved or closed (for at-risk-now)."""
    return await conn.fetch(_CLOCK_SELECT + " WHERE i.status NOT IN ('resolved', 'closed') AND c.state <> 'stopped'")


async def quality_figures(conn: Connection, *, date_from: datetime, date_to: datetime) -> list[asyncpg.Record]:
    """Quality counts for incidents created in the period: overall, by area and by priority (GROUPING SETS)."""
    return await conn.fetch(
        """WITH scope AS (
               SELECT i.id, i.area, i.priority, i.created_at, i.resolved_at, i.reopened_count,
                      s.rating, s.feedback,
                      EXISTS (SELECT 1 FROM sla_escalations e WHERE e.incident_id = i.id) AS escalated,
                      COALESCE(si.assignee_changes, 0) AS assignee_changes,
                      extract(epoch FROM i.resolved_at - i.created_at) / 60.0 AS resolution_minutes
                 FROM incidents i
                 LEFT JOIN suggestions s ON s.incident_id = i.id
                 LEFT JOIN sla_incidents si ON si.incident_id = i.id
                WHERE i.created_at >= $1 AND i.created_at < $2 AND i.source <> 'import')
           SELECT GROUPING(area) AS all_areas, GROUPING(priority) AS all_priorities, area, priority,
                  count(*) AS total_incidents,
                  count(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved,
                  count(*) FILTER (WHERE escalated) AS escalated,
                  count(rating) AS rated,
                  avg(rating)::float8 AS avg_satisfaction,
                  count(*) FILTER (WHERE rating >= 4) AS high_satisfaction,
                  avg(resolution_minutes)::float8 AS mean_resolution_minutes,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_minutes) AS median_resolution_minutes,
                  count(*) FILTER (WHERE resolved_at IS NOT NULL AND reopened_count = 0 AND NOT escalated
                                     AND assignee_changes <= 1) AS first_contact_resolved,
                  count(feedback) AS suggestions_judged,
                  count(*) FILTER (WHERE feedback = 'accepted') AS suggestions_accepted
             FROM scope
            GROUP BY GROUPING SETS ((), (area), (priority))
            ORDER BY all_areas DESC, all_priorities DESC, area, priority""",
        date_from,
        date_to,
    )
