"""SQL for the LLM node slots: one row per parallel slot of each node, leased by the worker generating on it."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from backend.db import Connection


async def sync_node_slots(conn: Connection, *, node_url: str, slots: int) -> None:
    """Make `node_url` have exactly `slots` slot rows; surplus rows go only when free (a busy one goes later)."""
    await conn.execute(
        """INSERT INTO llm_slots (node_url, slot) SELECT $1, s FROM generate_series(0, $2 - 1) AS s
           ON CONFLICT DO NOTHING""",
        node_url,
        slots,
    )
    await conn.execute("DELETE FROM llm_slots WHERE node_url = $1 AND slot >= $2 AND holder IS NULL", node_url, slots)


async def forget_other_nodes(conn: Connection, *, node_urls: list[str]) -> None:
    """Remove the free slots of nodes that are no longer configured."""
    await conn.execute("DELETE FROM llm_slots WHERE NOT (node_url = ANY($1::text[])) AND holder IS NULL", node_urls)


async def lease_free_slot(
    conn: Connection, *, node_urls: list[str], holder: str, incident_id: int, now: datetime, lease_until: datetime
) -> asyncpg.Record | None:
    """Take a free slot (or one whose lease ran out) of one of `node_urls`, the least busy node first."""
    return await conn.fetchrow(
        """WITH busy AS (
               SELECT node_url, count(*) FILTER (WHERE holder IS NOT NULL AND leased_until >= $4) AS in_use
                 FROM llm_slots GROUP BY node_url),
           candidate AS (
               SELECT s.node_url, s.slot FROM llm_slots s JOIN busy b USING (node_url)
                WHERE s.node_url = ANY($1::text[]) AND (s.holder IS NULL OR s.leased_until < $4)
                ORDER BY b.in_use, array_position($1::text[], s.node_url), s.slot
                LIMIT 1
                FOR UPDATE OF s SKIP LOCKED)
           UPDATE llm_slots t SET holder = $2, incident_id = $3, leased_until = $5, started_at = $4
             FROM candidate c
            WHERE t.node_url = c.node_url AND t.slot = c.slot
        RETURNING t.node_url, t.slot""",
        node_urls,
        holder,
        incident_id,
        now,
        lease_until,
    )


async def renew_slot(conn: Connection, *, node_url: str, slot: int, holder: str, lease_until: datetime) -> None:
    """Keep a held slot's lease alive."""
    await conn.execute(
        "UPDATE llm_slots SET leased_until = $4 WHERE node_url = $1 AND slot = $2 AND holder = $3",
        node_url,
        slot,
        holder,
        lease_until,
    )


async def release_slot(conn: Connection, *, node_url: str, slot: int, holder: str) -> None:
    """Give a slot back (only the holder can)."""
    await conn.execute(
        """UPDATE llm_slots SET holder = NULL, incident_id = NULL, leased_until = NULL, started_at = NULL
            WHERE node_url = $1 AND slot = $2 AND holder = $3""",
        node_url,
        slot,
        holder,
    )


async def in_flight_by_node(conn: Connection, *, now: datetime) -> list[asyncpg.Record]:
    """Per node: its slots and how many are held by a live lease."""
    return await conn.fetch(
        """SELECT node_url, count(*) AS slots,
                  count(*) FILTER (WHERE holder IS NOT NULL AND leased_until >= $1) AS in_flight
             FROM llm_slots GROUP BY node_url ORDER BY node_url""",
        now,
    )
