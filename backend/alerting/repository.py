"""SQL of alert_incidents: the link between an Alertmanager alert (by fingerprint) and its incident."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from backend.db import Connection

OPEN_STATUSES = ["open", "in_progress", "waiting"]


async def lock_fingerprint(conn: Connection, fingerprint: str) -> None:
    """Serialise work on one fingerprint until the caller's transaction ends (duplicate deliveries race)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 14))", "alertmanager:" + fingerprint)


async def open_link(conn: Connection, fingerprint: str) -> asyncpg.Record | None:
    """The newest link of this fingerprint whose incident is still open, if any."""
    return await conn.fetchrow(
        """SELECT a.incident_id, a.ends_at, a.notifications
             FROM alert_incidents a JOIN incidents i ON i.id = a.incident_id
            WHERE a.fingerprint = $1 AND i.status = ANY($2::text[])
            ORDER BY a.incident_id DESC
            LIMIT 1""",
        fingerprint,
        OPEN_STATUSES,
    )


async def insert_link(
    conn: Connection,
    *,
    incident_id: int,
    fingerprint: str,
    alertname: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    starts_at: datetime | None,
    generator_url: str,
    now: datetime,
) -> None:
    """Record that this incident stands for the alert with this fingerprint."""
    await conn.execute(
        """INSERT INTO alert_incidents (incident_id, fingerprint, alertname, labels, annotations, starts_at,
                                        generator_url, received_at, last_seen_at)
           VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $8)""",
        incident_id,
        fingerprint,
        alertname,
        labels,
        annotations,
        starts_at,
        generator_url or None,
        now,
    )


async def mark_seen(conn: Connection, incident_id: int, *, now: datetime) -> None:
    """Count one more notification of a known alert."""
    await conn.execute(
        "UPDATE alert_incidents SET last_seen_at = $2, notifications = notifications + 1 WHERE incident_id = $1",
        incident_id,
        now,
    )


async def set_ends_at(conn: Connection, incident_id: int, *, ends_at: datetime | None, now: datetime) -> None:
    """Record the alert's resolution time (None: it fires again)."""
    await conn.execute(
        """UPDATE alert_incidents SET ends_at = $2, last_seen_at = $3, notifications = notifications + 1
            WHERE incident_id = $1""",
        incident_id,
        ends_at,
        now,
    )


async def get_link(conn: Connection, incident_id: int) -> asyncpg.Record | None:
    """The alert behind an incident, labels and annotations included."""
    return await conn.fetchrow(
        """SELECT incident_id, fingerprint, alertname, labels, annotations, starts_at, ends_at, generator_url,
                  received_at, last_seen_at, notifications
             FROM alert_incidents WHERE incident_id = $1""",
        incident_id,
    )
