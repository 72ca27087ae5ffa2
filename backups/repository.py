"""SQL of the backup tooling: snapshot facts (row counts, audit head, schema level) and the backup_runs record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from backend.db import Connection


async def export_snapshot(conn: Connection) -> str:
    """Export the snapshot of the caller's REPEATABLE READ transaction for pg_dump --snapshot."""
    return str(await conn.fetchval("SELECT pg_export_snapshot()"))


async def public_tables(conn: Connection) -> list[str]:
    """Names of the ordinary tables in the public schema, sorted."""
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [row["tablename"] for row in rows]


async def row_count(conn: Connection, table: str) -> int:
    """Exact row count of one public table (the name comes from pg_tables and is quoted by the server)."""
    quoted = await conn.fetchval("SELECT quote_ident($1)", table)
    return int(await conn.fetchval(f"SELECT count(*) FROM public.{quoted}"))


async def audit_head(conn: Connection) -> dict[str, Any]:
    """Sequence number and hash of the newest chained audit row ({seq: 0, hash: None} for an empty chain)."""
    row = await conn.fetchrow("SELECT seq, hash FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
    return {"seq": 0, "hash": None} if row is None else {"seq": int(row["seq"]), "hash": row["hash"]}


async def audit_hash_at(conn: Connection, seq: int) -> str | None:
    """The hash of the audit row with this sequence number, or None when there is none."""
    value = await conn.fetchval("SELECT hash FROM audit_log WHERE seq = $1", seq)
    return None if value is None else str(value)


async def schema_level(conn: Connection) -> int:
    """The highest applied migration, 0 when none is recorded."""
    exists = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def entry_vector_ids(conn: Connection) -> list[str]:
    """Vector ids of every knowledge entry."""
    return [row["vector_id"] for row in await conn.fetch("SELECT vector_id FROM knowledge_entries")]


async def mark_vectors_present(conn: Connection, vector_ids: list[str]) -> int:
    """After a restore: entries whose vector was restored are synced, the others wait for the vector sync."""
    result = await conn.execute(
        "UPDATE knowledge_entries SET vector_synced = (vector_id = ANY($1::text[]))", vector_ids
    )
    return int(result.split()[-1])


async def start_run(
    conn: Connection, *, operation: str, tier: str | None, backup_id: str | None, trigger: str, started_at: datetime
) -> int:
    """Record a run that has begun; returns its id."""
    return int(
        await conn.fetchval(
            """INSERT INTO backup_runs (operation, tier, backup_id, status, trigger, started_at)
           VALUES ($1, $2, $3, 'running', $4, $5) RETURNING id""",
            operation,
            tier,
            backup_id,
            trigger,
            started_at,
        )
    )


async def finish_run(
    conn: Connection,
    run_id: int,
    *,
    status: str,
    finished_at: datetime,
    duration_s: float,
    attempts: int,
    backup_id: str | None,
    size_bytes: int | None,
    error: str | None,
    detail: dict[str, Any] | None,
) -> None:
    """Record how a run ended."""
    await conn.execute(
        """UPDATE backup_runs SET status = $2, finished_at = $3, duration_s = $4, attempts = $5,
                  backup_id = coalesce($6, backup_id), size_bytes = $7, error = $8, detail = $9
            WHERE id = $1""",
        run_id,
        status,
        finished_at,
        duration_s,
        attempts,
        backup_id,
        size_bytes,
        error,
        detail,
    )


async def latest_runs(conn: Connection, *, limit: int) -> list[asyncpg.Record]:
    """The newest runs, newest first."""
    return await conn.fetch(
        """SELECT id, operation, tier, backup_id, status, trigger, attempts, started_at, finished_at, duration_s,
                  size_bytes, error, detail
             FROM backup_runs ORDER BY started_at DESC, id DESC LIMIT $1""",
        limit,
    )


async def last_success_per_tier(conn: Connection) -> list[asyncpg.Record]:
    """The newest successful backup of each tier (time, duration, size)."""
    return await conn.fetch(
        """SELECT DISTINCT ON (tier) tier, finished_at, duration_s, size_bytes
             FROM backup_runs
            WHERE operation = 'create' AND status = 'succeeded'
            ORDER BY tier, finished_at DESC"""
    )


async def last_verify(conn: Connection) -> asyncpg.Record | None:
    """The newest finished verify run."""
    return await conn.fetchrow(
        """SELECT id, backup_id, status, finished_at, duration_s, error, detail
             FROM backup_runs
            WHERE operation = 'verify' AND status <> 'running'
            ORDER BY finished_at DESC, id DESC LIMIT 1"""
    )


async def seed_resolved_incidents(conn: Connection, *, count: int, at: datetime) -> list[int]:
    """Benchmark data: `count` resolved incidents, each with a created and a resolved audit row and a knowledge
    entry (inserted directly; the audit rows are chained when the caller's transaction commits)."""
    ids = [
        row["id"]
        for row in await conn.fetch(
            """INSERT INTO incidents (title, description, area, priority, status, resolution, source, created_at,
                                  updated_at, resolved_at)
           SELECT 'Conveyor motor ' || n || ' overheating, alarm E-' || (4000 + n % 97),
                  'Line ' || (n % 7) || ' stopped after the motor of station ' || n || ' reached 95 C; operators '
                  || 'report a burning smell and alarm E-' || (4000 + n % 97) || ' on the HMI.',
                  'production', 'high', 'resolved', 'Replaced bearing ' || n || ' and cleaned the fan filter.',
                  'import', $2, $2, $2
             FROM generate_series(1, $1) AS n
           RETURNING id""",
            count,
            at,
        )
    ]
    await conn.execute(
        """INSERT INTO audit_log (occurred_at, actor_kind, actor_name, action, resource_type, resource_id, after)
           SELECT $2, 'system', 'bench', action, 'incident', id::text, jsonb_build_object('status', action)
             FROM unnest($1::bigint[]) AS id, (VALUES ('incident.created'), ('incident.resolved')) AS a(action)""",
        ids,
        at,
    )
    await conn.execute(
        """INSERT INTO knowledge_entries (kind, vector_id, area, title, body, resolution, incident_id, doc_length,
                                          vector_synced, source_created_at, staged_at)
           SELECT 'incident', 'inc:' || i.id, i.area, i.title, i.description, i.resolution, i.id, 40, true, $2, $2
             FROM incidents i WHERE i.id = ANY($1::bigint[])""",
        ids,
        at,
    )
    return ids
