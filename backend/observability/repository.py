"""SQL behind the gauges computed at scrape time: incidents, SLA clocks, jobs, knowledge, notifications."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from backend.db import Connection
from backend.sql import expect_row

OPEN_STATUSES = ("open", "in_progress", "waiting")


async def open_incidents(conn: Connection) -> list[asyncpg.Record]:
    """Open incidents counted by status, priority and area."""
    return await conn.fetch(
        """
        SELECT status, priority, area, count(*) AS n
          FROM incidents
         WHERE status = ANY($1::text[])
         GROUP BY status, priority, area
        """,
        list(OPEN_STATUSES),
    )


async def sla_clock_states(conn: Connection) -> list[asyncpg.Record]:
    """Clocks of open incidents per kind: breached, and at risk (a warning recorded, not yet breached)."""
    return await conn.fetch(
        """
        SELECT c.kind,
               count(*) FILTER (WHERE c.breached) AS breached,
               count(*) FILTER (WHERE NOT c.breached AND EXISTS (
                   SELECT 1 FROM sla_events e
                    WHERE e.incident_id = c.incident_id AND e.clock_kind = c.kind AND e.kind = 'warning'))
                   AS at_risk
          FROM sla_clocks c
          JOIN incidents i ON i.id = c.incident_id
         WHERE i.status = ANY($1::text[])
         GROUP BY c.kind
        """,
        list(OPEN_STATUSES),
    )


async def resolutions(conn: Connection) -> asyncpg.Record:
    """Incidents reported here (not imported) that are resolved now, and their summed time to resolution."""
    return expect_row(
        await conn.fetchrow(
            """
        SELECT count(*) AS n, coalesce(sum(extract(epoch FROM resolved_at - created_at)), 0) AS seconds
          FROM incidents
         WHERE resolved_at IS NOT NULL AND source = 'api'
        """
        )
    )


async def sla_clocks_stopped(conn: Connection) -> list[asyncpg.Record]:
    """Stopped SLA clocks per kind: met or breached (the basis of compliance)."""
    return await conn.fetch(
        "SELECT kind, breached, count(*) AS n FROM sla_clocks WHERE state = 'stopped' GROUP BY kind, breached"
    )


async def sla_breaches_recorded(conn: Connection) -> int:
    """Every SLA breach ever recorded (a breach is recorded once per clock)."""
    return int(await conn.fetchval("SELECT count(*) FROM sla_events WHERE kind = 'breach'"))


async def escalations_by_rule(conn: Connection) -> list[asyncpg.Record]:
    """Escalations recorded per rule name; manual escalations under 'manual'."""
    return await conn.fetch(
        """
        SELECT CASE WHEN trigger = 'manual' THEN 'manual' ELSE coalesce(rule_name, 'deleted rule') END AS rule,
               count(*) AS n
          FROM sla_escalations
         GROUP BY 1
        """
    )


async def suggestion_feedback(conn: Connection) -> list[asyncpg.Record]:
    """Suggestions by status and by the feedback people gave (accepted, rejected, none)."""
    return await conn.fetch(
        "SELECT status, coalesce(feedback, 'none') AS feedback, count(*) AS n FROM suggestions GROUP BY 1, 2"
    )


async def knowledge_entries(conn: Connection) -> list[asyncpg.Record]:
    """Knowledge-base entries per kind, and how many still wait for the vector index."""
    return await conn.fetch(
        "SELECT kind, count(*) AS n, count(*) FILTER (WHERE NOT vector_synced) AS unsynced "
        "FROM knowledge_entries GROUP BY kind"
    )


async def job_queues(conn: Connection, *, now: datetime) -> list[asyncpg.Record]:
    """Work queues: the suggestions waiting for generation (the suggestions table is their queue), with the
    ones being generated and the age of the oldest that is due (retries waiting for their time excluded)."""
    return await conn.fetch(
        """
        SELECT 'suggestions' AS queue,
               count(*) FILTER (WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $1))
                   AS queued,
               count(*) FILTER (WHERE status = 'generating') AS running,
               coalesce(extract(epoch FROM $1::timestamptz - min(queued_at) FILTER (
                   WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $1))), 0)
                   AS oldest_age_s
          FROM suggestions
         WHERE status IN ('pending', 'generating')
        """,
        now,
    )


async def notification_backlog(conn: Connection, *, now: datetime) -> list[asyncpg.Record]:
    """Deliveries per endpoint type: pending, dead letters kept in the log, and the oldest pending age."""
    return await conn.fetch(
        """
        SELECT e.kind,
               count(*) FILTER (WHERE d.status = 'pending') AS pending,
               count(*) FILTER (WHERE d.status = 'dead') AS dead,
               coalesce(extract(epoch FROM $1::timestamptz - min(d.created_at)
                                FILTER (WHERE d.status = 'pending')), 0) AS oldest_pending_s
          FROM notify_deliveries d
          JOIN notify_endpoints e ON e.id = d.endpoint_id
         WHERE d.status IN ('pending', 'dead')
         GROUP BY e.kind
        """,
        now,
    )
