"""SQL for JWT signing keys (secrets stored only as ciphertexts)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from backend.db import Connection

_COLUMNS = "kid, algorithm, secret_ciphertext, created_at, created_by, retired_at, verify_until, destroyed_at"


async def live_keys(conn: Connection, *, purpose: str, kek_id: str) -> list[asyncpg.Record]:
    """The keys whose secrets still exist: the current one and those still verifying."""
    return await conn.fetch(
        f"""SELECT {_COLUMNS} FROM signing_keys
             WHERE purpose = $1 AND kek_id = $2 AND destroyed_at IS NULL
             ORDER BY created_at DESC""",
        purpose,
        kek_id,
    )


async def list_keys(conn: Connection, *, purpose: str, kek_id: str) -> list[asyncpg.Record]:
    """Every key of one master secret, newest first."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM signing_keys WHERE purpose = $1 AND kek_id = $2 ORDER BY created_at DESC, kid",
        purpose,
        kek_id,
    )


async def insert_key(
    conn: Connection, *, kid: str, purpose: str, kek_id: str, ciphertext: bytes, now: datetime, created_by: str
) -> bool:
    """Store a new current key; False when another process made one first (one current key per purpose)."""
    result = await conn.execute(
        """INSERT INTO signing_keys (kid, purpose, kek_id, secret_ciphertext, created_at, created_by)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT DO NOTHING""",
        kid,
        purpose,
        kek_id,
        ciphertext,
        now,
        created_by,
    )
    return result.endswith(" 1")


async def lock_rotation(conn: Connection, *, kek_id: str) -> None:
    """Serialise rotations of one master secret's keys until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('prs-signing-keys/' || $1, 0))", kek_id)


async def lock_current(conn: Connection, *, purpose: str, kek_id: str) -> asyncpg.Record | None:
    """The current signing key, row-locked."""
    return await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM signing_keys
             WHERE purpose = $1 AND kek_id = $2 AND retired_at IS NULL FOR UPDATE""",
        purpose,
        kek_id,
    )


async def retire(conn: Connection, kid: str, *, now: datetime, verify_until: datetime) -> None:
    """Stop signing with a key; it verifies until verify_until."""
    await conn.execute(
        "UPDATE signing_keys SET retired_at = $2, verify_until = $3 WHERE kid = $1", kid, now, verify_until
    )


async def destroy_expired(conn: Connection, *, now: datetime) -> int:
    """Erase the secrets of retired keys past their verification period."""
    result = await conn.execute(
        """UPDATE signing_keys SET secret_ciphertext = NULL, destroyed_at = $1
            WHERE retired_at IS NOT NULL AND verify_until <= $1 AND destroyed_at IS NULL""",
        now,
    )
    return int(result.split()[-1])
