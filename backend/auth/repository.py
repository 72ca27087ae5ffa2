"""SQL for users and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

import asyncpg

from backend.db import Connection
from backend.sql import expect_row

_USER_COLUMNS = (
    "id, username, display_name, email, role, source, is_active, created_at, updated_at, "
    "last_login_at, failed_login_count, locked_until, lockouts, password_changed_at, must_change_password"
)


async def get_user_by_username(conn: Connection, username: str) -> asyncpg.Record | None:
    """A user by case-insensitive username, with the password hash."""
    return await conn.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)", username
    )


async def get_user(conn: Connection, user_id: int) -> asyncpg.Record | None:
    """A user by id, without the password hash."""
    return await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)


async def lock_user_with_hash(conn: Connection, user_id: int) -> asyncpg.Record | None:
    """A user by id with the password hash, row-locked for a password change."""
    return await conn.fetchrow(f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE id = $1 FOR UPDATE", user_id)


async def session_is_revoked(conn: Connection, family_id: uuid.UUID) -> bool:
    """True once a login session was ended (logout, or a refresh token used twice)."""
    return cast(
        bool,
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NOT NULL)", family_id
        ),
    )


async def insert_user(
    conn: Connection,
    *,
    username: str,
    display_name: str,
    email: str | None,
    password_hash: str | None,
    role: str,
    source: str,
    now: datetime,
    directory_dn: str | None = None,
    must_change_password: bool = False,
) -> asyncpg.Record:
    """Create a user and return it (a password counts as set now)."""
    return expect_row(
        await conn.fetchrow(
            f"""INSERT INTO users (username, display_name, email, password_hash, role, source, created_at, updated_at,
                               directory_dn, password_changed_at, must_change_password)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, CASE WHEN $4::text IS NULL THEN NULL ELSE $7::timestamptz END,
                    $9)
            RETURNING {_USER_COLUMNS}""",
            username,
            display_name,
            email,
            password_hash,
            role,
            source,
            now,
            directory_dn,
            must_change_password,
        )
    )


async def set_directory_profile(
    conn: Connection,
    user_id: int,
    *,
    role: str,
    display_name: str,
    email: str | None,
    directory_dn: str,
    now: datetime,
) -> asyncpg.Record:
    """Overwrite what the directory decides about an account (it is the source of truth for those fields)."""
    return expect_row(
        await conn.fetchrow(
            f"""UPDATE users SET role = $2, display_name = $3, email = $4, directory_dn = $5, updated_at = $6
             WHERE id = $1
         RETURNING {_USER_COLUMNS}""",
            user_id,
            role,
            display_name,
            email,
            directory_dn,
            now,
        )
    )


async def update_user(
    conn: Connection,
    user_id: int,
    *,
    role: str | None,
    is_active: bool | None,
    display_name: str | None,
    email: str | None,
    now: datetime,
    must_change_password: bool | None = None,
    clear_email: bool = False,
) -> asyncpg.Record | None:
    """Change the given fields of a user (None leaves a field as it is; `clear_email` removes the address)."""
    return await conn.fetchrow(
        f"""UPDATE users SET role = coalesce($2, role),
                             is_active = coalesce($3, is_active),
                             display_name = coalesce($4, display_name),
                             email = CASE WHEN $8 THEN NULL ELSE coalesce($5, email) END,
                             updated_at = $6,
                             must_change_password = coalesce($7, must_change_password)
             WHERE id = $1
         RETURNING {_USER_COLUMNS}""",
        user_id,
        role,
        is_active,
        display_name,
        email,
        now,
        must_change_password,
        clear_email,
    )


async def set_password(
    conn: Connection, user_id: int, *, password_hash: str, now: datetime, must_change: bool
) -> asyncpg.Record:
    """Store a new password hash; it counts as set now."""
    return expect_row(
        await conn.fetchrow(
            f"""UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3,
                             must_change_password = $4
             WHERE id = $1
         RETURNING {_USER_COLUMNS}""",
            user_id,
            password_hash,
            now,
            must_change,
        )
    )


async def add_password_history(conn: Connection, user_id: int, password_hash: str, *, now: datetime, keep: int) -> None:
    """Remember a password hash and forget all but the newest `keep`."""
    await conn.execute(
        "INSERT INTO password_history (user_id, password_hash, created_at) VALUES ($1, $2, $3)",
        user_id,
        password_hash,
        now,
    )
    await conn.execute(
        """DELETE FROM password_history WHERE user_id = $1 AND id NOT IN (
               SELECT id FROM password_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2)""",
        user_id,
        keep,
    )


async def recent_password_hashes(conn: Connection, user_id: int, *, limit: int) -> list[str]:
    """The newest `limit` password hashes of an account (the current one first)."""
    rows = await conn.fetch(
        "SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2", user_id, limit
    )
    return [r["password_hash"] for r in rows]


async def count_failed_login(
    conn: Connection, user_id: int, *, now: datetime, window_start: datetime
) -> asyncpg.Record:
    """Add one failed login, starting a new window when the last one began before `window_start`."""
    return expect_row(
        await conn.fetchrow(
            """UPDATE users SET
               failed_login_count = CASE WHEN failed_login_window_start IS NULL OR failed_login_window_start < $3
                                         THEN 1 ELSE failed_login_count + 1 END,
               failed_login_window_start = CASE WHEN failed_login_window_start IS NULL
                                                     OR failed_login_window_start < $3
                                                THEN $2 ELSE failed_login_window_start END
            WHERE id = $1
        RETURNING failed_login_count, lockouts""",
            user_id,
            now,
            window_start,
        )
    )


async def reset_failed_logins(conn: Connection, user_id: int) -> None:
    """Start counting failed logins afresh (the growth of lock periods is kept)."""
    await conn.execute(
        "UPDATE users SET failed_login_count = 0, failed_login_window_start = NULL WHERE id = $1", user_id
    )


async def lock_account(conn: Connection, user_id: int, *, until: datetime) -> None:
    """Lock an account until `until`; the next lock will last longer."""
    await conn.execute(
        """UPDATE users SET locked_until = $2, lockouts = lockouts + 1, failed_login_count = 0,
                            failed_login_window_start = NULL
            WHERE id = $1""",
        user_id,
        until,
    )


async def clear_lockout(conn: Connection, user_id: int) -> None:
    """No lock, no failures counted, lock periods back to the shortest."""
    await conn.execute(
        """UPDATE users SET locked_until = NULL, lockouts = 0, failed_login_count = 0, failed_login_window_start = NULL
            WHERE id = $1 AND (locked_until IS NOT NULL OR lockouts <> 0 OR failed_login_count <> 0)""",
        user_id,
    )


async def revoke_other_sessions(conn: Connection, user_id: int, *, keep_family: uuid.UUID | None, now: datetime) -> int:
    """End every login session of an account but `keep_family`; return how many sessions ended."""
    result = await conn.fetchval(
        """WITH ended AS (
               UPDATE refresh_tokens SET revoked_at = $3
                WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR family_id <> $2)
            RETURNING family_id)
           SELECT count(DISTINCT family_id) FROM ended""",
        user_id,
        keep_family,
        now,
    )
    return int(result or 0)


async def list_users(conn: Connection) -> list[asyncpg.Record]:
    """All users by id."""
    return await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY id")


async def count_admins(conn: Connection) -> int:
    """Active admins."""
    return cast(int, await conn.fetchval("SELECT count(*) FROM users WHERE role = 'admin' AND is_active"))


async def touch_last_login(conn: Connection, user_id: int, now: datetime) -> None:
    """Record a successful login."""
    await conn.execute("UPDATE users SET last_login_at = $2 WHERE id = $1", user_id, now)


async def insert_refresh_token(
    conn: Connection,
    *,
    token_id: uuid.UUID,
    user_id: int,
    family_id: uuid.UUID,
    token_hash: str,
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    """Store a refresh token's hash."""
    await conn.execute(
        """INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, issued_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        token_id,
        user_id,
        family_id,
        token_hash,
        issued_at,
        expires_at,
    )


async def lock_refresh_token(conn: Connection, token_hash: str) -> asyncpg.Record | None:
    """The refresh token with this hash, locked for the rotation."""
    return await conn.fetchrow(
        """SELECT id, user_id, family_id, expires_at, used_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE""",
        token_hash,
    )


async def mark_refresh_token_used(conn: Connection, token_id: uuid.UUID, now: datetime) -> None:
    """A rotated token may never be used again."""
    await conn.execute("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1", token_id, now)


async def revoke_refresh_family(conn: Connection, family_id: uuid.UUID, now: datetime) -> None:
    """Revoke every token of one login session."""
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL", family_id, now
    )
