"""SQL for notification endpoints, the outbox, deliveries and the delivery log (bound parameters only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import asyncpg

from backend.db import Connection
from backend.notify.catalog import REPORTER_TARGET
from backend.sql import Query, expect_row, update_by_id

WAKE_CHANNEL = "prs_notify_deliveries"

_ENDPOINT_COLUMNS = """
    e.id, e.kind, e.target, e.description, e.enabled, e.event_types, e.areas, e.priorities,
    e.secret_encrypted IS NOT NULL AS has_secret, e.secret_rotated_at, e.previous_secret_expires_at,
    e.consecutive_failures, e.disabled_reason, e.disabled_at, e.created_at, e.updated_at,
    (SELECT count(*) FROM notify_deliveries p WHERE p.endpoint_id = e.id AND p.status = 'pending')
        AS pending_deliveries
"""

UPDATABLE_ENDPOINT_COLUMNS = ("target", "description", "event_types", "areas", "priorities")


# --- endpoints ---------------------------------------------------------------------------------------------------


async def insert_endpoint(
    conn: Connection,
    *,
    kind: str,
    target: str,
    description: str,
    enabled: bool,
    event_types: list[str],
    areas: list[str],
    priorities: list[str],
    secret_encrypted: bytes | None,
    now: datetime,
) -> int:
    """Create an endpoint and return its id."""
    return cast(
        int,
        await conn.fetchval(
            """INSERT INTO notify_endpoints (kind, target, description, enabled, event_types, areas, priorities,
                                         secret_encrypted, secret_rotated_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9) RETURNING id""",
            kind,
            target,
            description,
            enabled,
            event_types,
            areas,
            priorities,
            secret_encrypted,
            now,
        ),
    )


async def get_endpoint(conn: Connection, endpoint_id: int, *, for_update: bool = False) -> asyncpg.Record | None:
    """One endpoint's public columns; optionally row-locked first."""
    if for_update:
        await conn.execute("SELECT 1 FROM notify_endpoints WHERE id = $1 FOR UPDATE", endpoint_id)
    return await conn.fetchrow(f"SELECT {_ENDPOINT_COLUMNS} FROM notify_endpoints e WHERE e.id = $1", endpoint_id)


async def list_endpoints(conn: Connection) -> list[asyncpg.Record]:
    """Every endpoint, oldest first."""
    return await conn.fetch(f"SELECT {_ENDPOINT_COLUMNS} FROM notify_endpoints e ORDER BY e.id")


async def update_endpoint(conn: Connection, endpoint_id: int, *, changes: dict[str, Any], now: datetime) -> None:
    """Set whitelisted columns; column names never come from input."""
    statement = update_by_id(
        "notify_endpoints", columns=UPDATABLE_ENDPOINT_COLUMNS, changes=changes, row_id=endpoint_id, now=now
    )
    if statement is not None:
        await conn.execute(statement[0], *statement[1])


async def delete_endpoint(conn: Connection, endpoint_id: int) -> bool:
    """Remove an endpoint with its deliveries and their log; False when it did not exist."""
    return await conn.fetchval("DELETE FROM notify_endpoints WHERE id = $1 RETURNING true", endpoint_id) is not None


async def set_endpoint_enabled(
    conn: Connection, endpoint_id: int, *, enabled: bool, reason: str | None, now: datetime
) -> None:
    """Enable (clearing the failure streak) or disable with a reason."""
    await conn.execute(
        """UPDATE notify_endpoints
              SET enabled = $2::boolean, updated_at = $4::timestamptz,
                  disabled_reason = CASE WHEN $2::boolean THEN NULL ELSE $3::text END,
                  disabled_at = CASE WHEN $2::boolean THEN NULL ELSE $4::timestamptz END,
                  consecutive_failures = CASE WHEN $2::boolean THEN 0 ELSE consecutive_failures END
            WHERE id = $1""",
        endpoint_id,
        enabled,
        reason,
        now,
    )


async def get_endpoint_secrets(conn: Connection, endpoint_id: int) -> asyncpg.Record | None:
    """The encrypted secrets of an endpoint."""
    return await conn.fetchrow(
        """SELECT secret_encrypted, previous_secret_encrypted, previous_secret_expires_at
             FROM notify_endpoints WHERE id = $1""",
        endpoint_id,
    )


async def rotate_secret(
    conn: Connection,
    endpoint_id: int,
    *,
    new_encrypted: bytes,
    previous_encrypted: bytes | None,
    previous_expires_at: datetime | None,
    now: datetime,
) -> None:
    """Install a new secret and keep the old one until `previous_expires_at`."""
    await conn.execute(
        """UPDATE notify_endpoints
              SET secret_encrypted = $2, previous_secret_encrypted = $3, previous_secret_expires_at = $4,
                  secret_rotated_at = $5, updated_at = $5
            WHERE id = $1""",
        endpoint_id,
        new_encrypted,
        previous_encrypted,
        previous_expires_at,
        now,
    )


async def existing_areas(conn: Connection, codes: list[str]) -> set[str]:
    """Which of these area codes exist."""
    rows = await conn.fetch("SELECT code FROM areas WHERE code = ANY($1::text[])", codes)
    return {row["code"] for row in rows}


async def get_incident_for_event(conn: Connection, incident_id: int) -> asyncpg.Record | None:
    """The incident columns an event payload may carry."""
    return await conn.fetchrow(
        """SELECT id, title, description, area, priority, status, category, external_ref, tags, assignee_id,
                  resolution, reopened_count, created_at, updated_at, resolved_at, closed_at
             FROM incidents WHERE id = $1""",
        incident_id,
    )


async def incident_reporter_email(conn: Connection, incident_id: int) -> str | None:
    """The e-mail address of an incident's reporter, when their account has one."""
    return cast(
        str | None,
        await conn.fetchval(
            """SELECT nullif(btrim(u.email), '') FROM incidents i JOIN users u ON u.id = i.reporter_id
            WHERE i.id = $1""",
            incident_id,
        ),
    )


# --- outbox ------------------------------------------------------------------------------------------------------


async def insert_event(
    conn: Connection,
    *,
    event_id: str,
    event_type: str,
    version: int,
    occurred_at: datetime,
    now: datetime,
    incident_id: int | None,
    area: str | None,
    priority: str | None,
    payload: dict[str, Any],
) -> None:
    """Write one outbox row."""
    await conn.execute(
        """INSERT INTO notify_events (id, type, version, occurred_at, created_at, incident_id, area, priority, payload)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        event_id,
        event_type,
        version,
        occurred_at,
        now,
        incident_id,
        area,
        priority,
        payload,
    )


async def insert_deliveries_for_matching(
    conn: Connection, *, event_id: str, event_type: str, area: str | None, priority: str | None, now: datetime
) -> list[int]:
    """One pending delivery per enabled endpoint whose filter matches; area/priority filters ignore events without them."""
    rows = await conn.fetch(
        """INSERT INTO notify_deliveries (event_id, endpoint_id, next_attempt_at, created_at, updated_at)
           SELECT $1, e.id, $5, $5, $5
             FROM notify_endpoints e
            WHERE e.enabled
              AND $2 = ANY(e.event_types)
              AND ($3::text IS NULL OR cardinality(e.areas) = 0 OR $3 = ANY(e.areas))
              AND ($4::text IS NULL OR cardinality(e.priorities) = 0 OR $4 = ANY(e.priorities))
              -- An endpoint writing to the reporter only gets events whose reporter has an address.
              AND NOT (e.kind = 'email' AND e.target = $6 AND NOT EXISTS (
                       SELECT 1 FROM notify_events ev JOIN incidents i ON i.id = ev.incident_id
                                JOIN users u ON u.id = i.reporter_id
                        WHERE ev.id = $1 AND nullif(btrim(u.email), '') IS NOT NULL))
            ORDER BY e.id
           RETURNING id""",
        event_id,
        event_type,
        area,
        priority,
        now,
        REPORTER_TARGET,
    )
    return [row["id"] for row in rows]


async def insert_delivery(conn: Connection, *, event_id: str, endpoint_id: int, now: datetime, manual: bool) -> int:
    """One pending delivery of an event to one endpoint, at the back of that endpoint's queue."""
    return cast(
        int,
        await conn.fetchval(
            """INSERT INTO notify_deliveries (event_id, endpoint_id, manual, next_attempt_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $4, $4) RETURNING id""",
            event_id,
            endpoint_id,
            manual,
            now,
        ),
    )


async def matching_endpoint_ids(
    conn: Connection, *, event_type: str, area: str | None, priority: str | None
) -> list[int]:
    """Enabled endpoints whose filter matches an event."""
    rows = await conn.fetch(
        """SELECT id FROM notify_endpoints e
            WHERE e.enabled AND $1 = ANY(e.event_types)
              AND ($2::text IS NULL OR cardinality(e.areas) = 0 OR $2 = ANY(e.areas))
              AND ($3::text IS NULL OR cardinality(e.priorities) = 0 OR $3 = ANY(e.priorities))
            ORDER BY id""",
        event_type,
        area,
        priority,
    )
    return [row["id"] for row in rows]


async def wake_workers(conn: Connection) -> None:
    """Tell listening workers there is work; Postgres sends it only if the transaction commits."""
    await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)


async def get_event(conn: Connection, event_id: str) -> asyncpg.Record | None:
    """One outbox event."""
    return await conn.fetchrow(
        """SELECT id, seq, type, version, occurred_at, created_at, incident_id, area, priority, payload
             FROM notify_events WHERE id = $1""",
        event_id,
    )


# Filters of the event, delivery and attempt lists: the condition of each, `{}` its bound value.
EVENT_FILTERS = {
    "type": "type = ANY({}::text[])",
    "incident_id": "incident_id = {}",
    "since": "created_at >= {}",
    "until": "created_at < {}",
}
DELIVERY_FILTERS = {
    "endpoint_id": "d.endpoint_id = {}",
    "event_id": "d.event_id = {}",
    "event_type": "ev.type = ANY({}::text[])",
    "status": "d.status = ANY({}::text[])",
    "since": "d.created_at >= {}",
    "until": "d.created_at < {}",
}
ATTEMPT_FILTERS = {
    "endpoint_id": "endpoint_id = {}",
    "event_id": "event_id = {}",
    "event_type": "event_type = ANY({}::text[])",
    "outcome": "outcome = ANY({}::text[])",
    "since": "started_at >= {}",
    "until": "started_at < {}",
}


async def list_events(
    conn: Connection, *, filters: dict[str, Any], before_seq: int | None, limit: int
) -> list[asyncpg.Record]:
    """Events, newest first, keyset-paginated on seq."""
    query = Query()
    bind, where = query.bind, query.where
    query.where_present(filters, EVENT_FILTERS)
    if before_seq is not None:
        where(f"seq < {bind(before_seq)}")
    sql = "SELECT id, seq, type, version, occurred_at, created_at, incident_id, area, priority, payload FROM notify_events"
    sql += query.where_sql()
    return await conn.fetch(sql + f" ORDER BY seq DESC LIMIT {bind(limit)}", *query.args)


# --- the delivery queue ------------------------------------------------------------------------------------------

_CLAIM = """
WITH candidates AS (
    SELECT d.id
      FROM notify_deliveries d
      JOIN notify_endpoints e ON e.id = d.endpoint_id
     WHERE d.status = 'pending'
       AND e.enabled
       AND d.next_attempt_at <= $1
       AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= $1)
       -- only the head of each endpoint's queue: a later event waits while an earlier one is pending
       AND NOT EXISTS (SELECT 1 FROM notify_deliveries earlier
                        WHERE earlier.endpoint_id = d.endpoint_id AND earlier.status = 'pending'
                          AND earlier.id < d.id)
     ORDER BY d.next_attempt_at, d.id
     LIMIT $4
       FOR UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE notify_deliveries d
       SET attempts = d.attempts + 1, lease_expires_at = $3, claimed_by = $2, updated_at = $1
      FROM candidates c
     WHERE d.id = c.id
 RETURNING d.id, d.event_id, d.endpoint_id, d.attempts
), abandoned AS (
    UPDATE notify_attempts a
       SET outcome = 'abandoned', finished_at = $1,
           error = 'the worker stopped before the attempt finished; its lease expired and the delivery was retried'
      FROM claimed
     WHERE a.delivery_id = claimed.id AND a.outcome = 'in_flight'
), started AS (
    INSERT INTO notify_attempts (delivery_id, event_id, event_type, endpoint_id, attempt_no, worker, started_at,
                                 outcome)
    SELECT claimed.id, claimed.event_id, ev.type, claimed.endpoint_id, claimed.attempts, $2, $1, 'in_flight'
      FROM claimed JOIN notify_events ev ON ev.id = claimed.event_id
 RETURNING id, delivery_id
)
SELECT claimed.id AS delivery_id, claimed.attempts AS attempt_no, started.id AS attempt_id,
       ev.id AS event_id, ev.type AS event_type, ev.created_at AS event_created_at, ev.payload,
       e.id AS endpoint_id, e.kind, e.target, e.secret_encrypted, e.previous_secret_encrypted,
       e.previous_secret_expires_at
  FROM claimed
  JOIN started ON started.delivery_id = claimed.id
  JOIN notify_events ev ON ev.id = claimed.event_id
  JOIN notify_endpoints e ON e.id = claimed.endpoint_id
 ORDER BY claimed.id
"""


async def claim_deliveries(
    conn: Connection, *, worker: str, now: datetime, lease_until: datetime, limit: int
) -> list[asyncpg.Record]:
    """Lease up to `limit` due queue heads (one per endpoint) and open an attempt row for each (one statement,
    atomic on its own)."""
    return await conn.fetch(_CLAIM, now, worker, lease_until, limit)


_FINISH = """
WITH attempt AS (
    UPDATE notify_attempts
       SET outcome = $5::text, status_code = $6::integer, response_excerpt = $7::text, error = $8::text,
           duration_ms = $9::integer, finished_at = $11::timestamptz
     WHERE id = $4
), delivery AS (
    UPDATE notify_deliveries
       SET status = $10::text, next_attempt_at = COALESCE($12::timestamptz, next_attempt_at),
           lease_expires_at = NULL, claimed_by = NULL, last_status_code = $6::integer, last_error = $8::text,
           updated_at = $11::timestamptz,
           finished_at = CASE WHEN $10::text = 'pending' THEN NULL ELSE $11::timestamptz END
     WHERE id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'pending'
 RETURNING endpoint_id
), streak AS (
    UPDATE notify_endpoints e
       SET consecutive_failures = CASE WHEN $13::boolean THEN 0 ELSE e.consecutive_failures + 1 END
      FROM delivery
     WHERE e.id = delivery.endpoint_id AND (NOT $13::boolean OR e.consecutive_failures <> 0)
 RETURNING e.consecutive_failures, e.enabled
)
SELECT EXISTS (SELECT 1 FROM delivery) AS still_ours,
       (SELECT consecutive_failures FROM streak) AS consecutive_failures,
       (SELECT enabled FROM streak) AS enabled
"""


async def finish_delivery(
    conn: Connection,
    *,
    delivery_id: int,
    worker: str,
    attempt_no: int,
    attempt_id: int,
    outcome: str,
    status: str,
    next_attempt_at: datetime | None,
    status_code: int | None,
    excerpt: str | None,
    error: str | None,
    duration_ms: int,
    succeeded: bool,
    now: datetime,
) -> asyncpg.Record:
    """In one statement: close the attempt row, move the delivery on if this worker still holds its lease, and
    reset or extend the endpoint's failure streak. Returns still_ours, consecutive_failures and enabled."""
    return expect_row(
        await conn.fetchrow(
            _FINISH,
            delivery_id,
            worker,
            attempt_no,
            attempt_id,
            outcome,
            status_code,
            excerpt,
            error,
            duration_ms,
            status,
            now,
            next_attempt_at,
            succeeded,
        )
    )


async def list_deliveries(
    conn: Connection, *, filters: dict[str, Any], before_id: int | None, limit: int
) -> list[asyncpg.Record]:
    """Deliveries with their event type, newest first."""
    query = Query()
    bind, where = query.bind, query.where
    query.where_present(filters, DELIVERY_FILTERS)
    if before_id is not None:
        where(f"d.id < {bind(before_id)}")
    sql = """SELECT d.id, d.event_id, ev.type AS event_type, d.endpoint_id, d.status, d.manual, d.attempts,
                    d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at, d.finished_at
               FROM notify_deliveries d JOIN notify_events ev ON ev.id = d.event_id"""
    sql += query.where_sql()
    return await conn.fetch(sql + f" ORDER BY d.id DESC LIMIT {bind(limit)}", *query.args)


async def list_attempts(
    conn: Connection, *, filters: dict[str, Any], before_id: int | None, limit: int
) -> list[asyncpg.Record]:
    """The delivery log, newest first."""
    query = Query()
    bind, where = query.bind, query.where
    query.where_present(filters, ATTEMPT_FILTERS)
    if before_id is not None:
        where(f"id < {bind(before_id)}")
    sql = """SELECT id, delivery_id, event_id, event_type, endpoint_id, attempt_no, worker, started_at, finished_at,
                    outcome, status_code, response_excerpt, error, duration_ms
               FROM notify_attempts"""
    sql += query.where_sql()
    return await conn.fetch(sql + f" ORDER BY id DESC LIMIT {bind(limit)}", *query.args)


async def delete_log_before(conn: Connection, *, before: datetime) -> dict[str, int]:
    """Retention: old attempts, finished deliveries, and events no pending delivery still needs."""
    attempts = await conn.execute(
        "DELETE FROM notify_attempts WHERE started_at < $1 AND outcome <> 'in_flight'", before
    )
    deliveries = await conn.execute(
        "DELETE FROM notify_deliveries WHERE status <> 'pending' AND finished_at < $1", before
    )
    events = await conn.execute(
        """DELETE FROM notify_events ev
            WHERE ev.created_at < $1
              AND NOT EXISTS (SELECT 1 FROM notify_deliveries d WHERE d.event_id = ev.id)""",
        before,
    )
    return {
        name: int(result.split()[-1])
        for name, result in (("attempts", attempts), ("deliveries", deliveries), ("events", events))
    }
