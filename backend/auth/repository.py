"""SQL for users and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

_USER_COLUMNS = ("id, username, display_name, email, role, source, is_active, is_auditor, created_at, updated_at, "
                 "last_login_at")


async def get_user_by_username(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    """A user by case-insensitive username, with the password hash."""
    return await conn.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)", username
    )


async def get_user(conn: asyncpg.Connection, user_id: int) -> asyncpg.Record | None:
    """A user by id, without the password hash."""
    return await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)


async def session_is_revoked(conn: asyncpg.Connection, family_id: uuid.UUID) -> bool:
    """True once a login session was ended (logout, or a refresh token used twice)."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NOT NULL)", family_id)


async def insert_user(
    conn: asyncpg.Connection, *, username: str, display_name: str, email: str | None,
    password_hash: str | None, role: str, source: str, now: datetime, is_auditor: bool = False,
    directory_dn: str | None = None,
) -> asyncpg.Record:
    """Create a user and return it."""
    return await conn.fetchrow(
        f"""INSERT INTO users (username, display_name, email, password_hash, role, source, created_at, updated_at,
                               is_auditor, directory_dn)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)
            RETURNING {_USER_COLUMNS}""",
        username, display_name, email, password_hash, role, source, now, is_auditor, directory_dn,
    )


async def set_directory_profile(
    conn: asyncpg.Connection, user_id: int, *, role: str, is_auditor: bool, display_name: str,
    email: str | None, directory_dn: str, now: datetime,
) -> asyncpg.Record:
    """Overwrite what the directory decides about an account (it is the source of truth for those fields)."""
    return await conn.fetchrow(
        f"""UPDATE users SET role = $2, is_auditor = $3, display_name = $4, email = $5, directory_dn = $6,
                             updated_at = $7
             WHERE id = $1
         RETURNING {_USER_COLUMNS}""",
        user_id, role, is_auditor, display_name, email, directory_dn, now,
    )


async def update_user(
    conn: asyncpg.Connection, user_id: int, *, role: str | None, is_active: bool | None,
    display_name: str | None, email: str | None, password_hash: str | None, now: datetime,
    is_auditor: bool | None = None,
) -> asyncpg.Record | None:
    """Change the given fields of a user (None leaves a field as it is)."""
    return await conn.fetchrow(
        f"""UPDATE users SET role = coalesce($2, role),
                             is_active = coalesce($3, is_active),
                             display_name = coalesce($4, display_name),
                             email = coalesce($5, email),
                             password_hash = coalesce($6, password_hash),
                             updated_at = $7,
                             is_auditor = coalesce($8, is_auditor)
             WHERE id = $1
         RETURNING {_USER_COLUMNS}""",
        user_id, role, is_active, display_name, email, password_hash, now, is_auditor,
    )


async def list_users(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """All users by id."""
    return await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY id")


async def count_admins(conn: asyncpg.Connection) -> int:
    """Active admins."""
    return await conn.fetchval("SELECT count(*) FROM users WHERE role = 'admin' AND is_active")


async def touch_last_login(conn: asyncpg.Connection, user_id: int, now: datetime) -> None:
    """Record a successful login."""
    await conn.execute("UPDATE users SET last_login_at = $2 WHERE id = $1", user_id, now)


async def insert_refresh_token(
    conn: asyncpg.Connection, *, token_id: uuid.UUID, user_id: int, family_id: uuid.UUID,
    token_hash: str, issued_at: datetime, expires_at: datetime,
) -> None:
    """Store a refresh token's hash."""
    await conn.execute(
        """INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, issued_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        token_id, user_id, family_id, token_hash, issued_at, expires_at,
    )


async def lock_refresh_token(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """The refresh token with this hash, locked for the rotation."""
    return await conn.fetchrow(
        """SELECT id, user_id, family_id, expires_at, used_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE""",
        token_hash,
    )


async def mark_refresh_token_used(conn: asyncpg.Connection, token_id: uuid.UUID, now: datetime) -> None:
    """A rotated token may never be used again."""
    await conn.execute("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1", token_id, now)


async def revoke_refresh_family(conn: asyncpg.Connection, family_id: uuid.UUID, now: datetime) -> None:
    """Revoke every token of one login session."""
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL", family_id, now
    )
