"""SQL for API keys and their secrets (stored only as SHA-256 hashes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

import asyncpg

from backend.db import Connection

_KEY_VIEW = """
    SELECT k.id, k.name, k.owner_email, k.permissions, k.rate_limit_per_minute,
           k.allowed_networks::text[] AS allowed_networks, k.allowed_origins, k.allowed_areas, k.expires_at,
           k.created_at,
           k.created_by, k.revoked_at, k.revoked_by, k.last_used_at, k.last_used_ip, k.use_count,
           (SELECT s.display_prefix FROM api_key_secrets s
             WHERE s.api_key_id = k.id AND s.retired_at IS NULL ORDER BY s.id DESC LIMIT 1) AS key_prefix,
           (SELECT max(s.valid_until) FROM api_key_secrets s
             WHERE s.api_key_id = k.id AND s.retired_at IS NOT NULL) AS previous_key_valid_until
      FROM api_keys k
"""


async def insert_api_key(
    conn: Connection,
    *,
    name: str,
    owner_email: str,
    permissions: Sequence[str],
    rate_limit_per_minute: int,
    allowed_networks: list[str],
    allowed_origins: list[str],
    expires_at: datetime | None,
    created_by: str,
    now: datetime,
    allowed_areas: list[str] | None = None,
) -> int | None:
    """Create a key's settings and return its id; None when a live key already has this name."""
    return cast(
        int | None,
        await conn.fetchval(
            """INSERT INTO api_keys (name, owner_email, permissions, rate_limit_per_minute, allowed_networks,
                                 allowed_origins, expires_at, created_by, created_at, allowed_areas)
           VALUES ($1, $2, $3, $4, $5::text[]::cidr[], $6, $7, $8, $9, $10)
           ON CONFLICT (lower(name)) WHERE revoked_at IS NULL DO NOTHING
           RETURNING id""",
            name,
            owner_email,
            permissions,
            rate_limit_per_minute,
            allowed_networks,
            allowed_origins,
            expires_at,
            created_by,
            now,
            allowed_areas or [],
        ),
    )


async def insert_secret(
    conn: Connection, *, api_key_id: int, secret_hash: str, display_prefix: str, now: datetime
) -> None:
    """Store the hash of a key's new secret."""
    await conn.execute(
        """INSERT INTO api_key_secrets (api_key_id, secret_hash, display_prefix, created_at)
           VALUES ($1, $2, $3, $4)""",
        api_key_id,
        secret_hash,
        display_prefix,
        now,
    )


async def retire_current_secrets(conn: Connection, api_key_id: int, *, now: datetime, valid_until: datetime) -> int:
    """Mark the key's current secret as replaced; it keeps working until valid_until."""
    result = await conn.execute(
        """UPDATE api_key_secrets SET retired_at = $2, valid_until = $3
            WHERE api_key_id = $1 AND retired_at IS NULL""",
        api_key_id,
        now,
        valid_until,
    )
    return int(result.split()[-1])


async def get_api_key(conn: Connection, api_key_id: int, *, for_update: bool = False) -> asyncpg.Record | None:
    """One key's settings and state (never a secret); optionally row-locked."""
    if for_update:
        await conn.execute("SELECT 1 FROM api_keys WHERE id = $1 FOR UPDATE", api_key_id)
    return await conn.fetchrow(_KEY_VIEW + " WHERE k.id = $1", api_key_id)


async def list_api_keys(conn: Connection) -> list[asyncpg.Record]:
    """Every key, newest first."""
    return await conn.fetch(_KEY_VIEW + " ORDER BY k.id DESC")


async def revoke_api_key(conn: Connection, api_key_id: int, *, now: datetime, revoked_by: str) -> None:
    """Revoke a key: every secret it has stops working at once."""
    await conn.execute(
        "UPDATE api_keys SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND revoked_at IS NULL",
        api_key_id,
        now,
        revoked_by,
    )


async def find_by_secret_hash(conn: Connection, secret_hash: str) -> asyncpg.Record | None:
    """The key a presented secret belongs to, with that secret's own state."""
    return await conn.fetchrow(
        """SELECT k.id, k.name, k.permissions, k.rate_limit_per_minute,
                  k.allowed_networks::text[] AS allowed_networks, k.allowed_origins, k.allowed_areas, k.expires_at,
                  k.revoked_at,
                  s.secret_hash, s.retired_at, s.valid_until
             FROM api_key_secrets s
             JOIN api_keys k ON k.id = s.api_key_id
            WHERE s.secret_hash = $1""",
        secret_hash,
    )


async def record_use(conn: Connection, api_key_id: int, *, now: datetime, client_ip: str | None) -> None:
    """Count one accepted request and remember when and from where."""
    await conn.execute(
        """UPDATE api_keys SET use_count = use_count + 1, last_used_at = greatest(last_used_at, $2),
                               last_used_ip = $3
            WHERE id = $1""",
        api_key_id,
        now,
        client_ip,
    )


async def unknown_areas(conn: Connection, areas: list[str]) -> list[str]:
    """The codes in `areas` that name no area."""
    rows = await conn.fetch(
        "SELECT a FROM unnest($1::text[]) AS a WHERE NOT EXISTS (SELECT 1 FROM areas WHERE code = a) ORDER BY a", areas
    )
    return [r["a"] for r in rows]
