"""SQL for idempotency keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from backend.db import Connection


async def find(conn: Connection, *, endpoint: str, principal: str, key: str, now: datetime) -> asyncpg.Record | None:
    """The live (unexpired) record of a key, or None."""
    return await conn.fetchrow(
        """SELECT request_hash, resource_id, status_code, response
             FROM idempotency_keys
            WHERE endpoint = $1 AND principal = $2 AND key = $3 AND expires_at > $4""",
        endpoint,
        principal,
        key,
        now,
    )


async def claim(
    conn: Connection, *, endpoint: str, principal: str, key: str, request_hash: str, now: datetime, expires_at: datetime
) -> bool:
    """Claim a key inside the creating transaction: True when this transaction owns it.

    A concurrent claim of the same key waits on the unique index until the first transaction ends: it then
    claims the key (the first rolled back) or gets False (the first committed). An expired record is taken over."""
    claimed = await conn.fetchval(
        """INSERT INTO idempotency_keys (endpoint, principal, key, request_hash, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (endpoint, principal, key) DO UPDATE
              SET request_hash = EXCLUDED.request_hash, resource_id = NULL, status_code = NULL, response = NULL,
                  created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
            WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
           RETURNING true""",
        endpoint,
        principal,
        key,
        request_hash,
        now,
        expires_at,
    )
    return bool(claimed)


async def record_answer(
    conn: Connection,
    *,
    endpoint: str,
    principal: str,
    key: str,
    resource_id: int,
    status_code: int,
    response: dict[str, Any],
) -> None:
    """Keep the first answer under the claimed key."""
    await conn.execute(
        """UPDATE idempotency_keys SET resource_id = $4, status_code = $5, response = $6
            WHERE endpoint = $1 AND principal = $2 AND key = $3""",
        endpoint,
        principal,
        key,
        resource_id,
        status_code,
        response,
    )


async def delete_expired(conn: Connection, *, now: datetime, batch: int) -> int:
    """Delete up to `batch` expired keys; the number deleted."""
    return await conn.fetchval(
        """WITH gone AS (
               DELETE FROM idempotency_keys
                WHERE ctid IN (SELECT ctid FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)
               RETURNING 1)
           SELECT count(*) FROM gone""",
        now,
        batch,
    )
