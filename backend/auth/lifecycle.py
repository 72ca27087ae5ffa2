"""Accounts after day one: per-account lockout, password expiry and forced change, password history.

State lives in the users row (and password_history), so every replica sees the same counts and locks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from backend.audit import service as audit
from backend.auth import repository
from backend.auth.passwords import check_password_policy, hash_password, verify_password
from backend.config import Settings
from backend.context import RequestContext
from backend.db import Connection
from backend.errors import ValidationFailed
from backend.events import DomainEvent, EventBus

ChangeReason = Literal["must_change", "expired"]


def is_locked(user: asyncpg.Record, now: datetime) -> bool:
    """True while the account's lock lasts."""
    return user["locked_until"] is not None and user["locked_until"] > now


def lock_duration(settings: Settings, earlier_lockouts: int) -> timedelta:
    """The first lock lasts lockout_minutes; each further one twice as long, up to lockout_max_minutes."""
    minutes = settings.lockout_minutes * (2 ** min(earlier_lockouts, 20))
    return timedelta(minutes=min(minutes, settings.lockout_max_minutes))


def password_expires_at(settings: Settings, user: asyncpg.Record) -> datetime | None:
    """When a local account's password expires (None: never)."""
    if settings.password_max_age_days <= 0 or user["source"] != "local" or user["password_changed_at"] is None:
        return None
    return user["password_changed_at"] + timedelta(days=settings.password_max_age_days)


def password_change_reason(settings: Settings, user: asyncpg.Record, now: datetime) -> ChangeReason | None:
    """Why the account must change its password before anything else ("must_change", "expired"), or None."""
    if user["source"] != "local":
        return None
    if user["must_change_password"]:
        return "must_change"
    expires = password_expires_at(settings, user)
    return "expired" if expires is not None and expires <= now else None


class AccountLifecycle:
    """Counting failed logins, locking and unlocking, and setting passwords with their history."""

    def __init__(self, settings: Settings, events: EventBus):
        self.settings = settings
        self.events = events

    async def count_failure(self, conn: Connection, ctx: RequestContext, user: asyncpg.Record, now: datetime) -> bool:
        """Count one failed login of an account (any address, any replica); lock it at the threshold.
        Directory accounts are counted and audited, but locked by the directory unless configured otherwise.
        Returns True when this failure locked the account."""
        settings = self.settings
        window_start = now - timedelta(minutes=settings.lockout_window_minutes)
        counted = await repository.count_failed_login(conn, user["id"], now=now, window_start=window_start)
        if settings.lockout_threshold <= 0 or counted["failed_login_count"] < settings.lockout_threshold:
            return False
        details = {"failed_logins": counted["failed_login_count"], "window_minutes": settings.lockout_window_minutes}
        if user["source"] != "local" and not settings.lockout_directory_accounts:
            await repository.reset_failed_logins(conn, user["id"])
            await audit.record(
                conn,
                ctx,
                at=now,
                action="user.lock_deferred_to_directory",
                resource_type="user",
                resource_id=user["id"],
                after=details,
            )
            return False
        until = now + lock_duration(settings, counted["lockouts"])
        await repository.lock_account(conn, user["id"], until=until)
        after = details | {"locked_until": until.isoformat(), "lockouts": counted["lockouts"] + 1}
        await audit.record(
            conn, ctx, at=now, action="user.locked", resource_type="user", resource_id=user["id"], after=after
        )
        await self.events.publish(
            conn,
            DomainEvent(
                name="user.locked",
                resource_type="user",
                resource_id=user["id"],
                at=now,
                ctx=ctx,
                after=after | {"username": user["username"]},
            ),
        )
        return True

    async def clear_failures(self, conn: Connection, user_id: int) -> None:
        """A successful login: the count and the growth of lock periods start over."""
        await repository.clear_lockout(conn, user_id)

    async def unlock(self, conn: Connection, ctx: RequestContext, user: asyncpg.Record, now: datetime) -> None:
        """An admin ends a lock (and the failures counted so far)."""
        await repository.clear_lockout(conn, user["id"])
        await audit.record(
            conn,
            ctx,
            at=now,
            action="user.unlocked",
            resource_type="user",
            resource_id=user["id"],
            before={
                "locked_until": user["locked_until"].isoformat() if user["locked_until"] else None,
                "failed_logins": user["failed_login_count"],
            },
        )
        await self.events.publish(
            conn, DomainEvent(name="user.unlocked", resource_type="user", resource_id=user["id"], at=now, ctx=ctx)
        )

    async def check_not_reused(self, conn: Connection, user_id: int, password: str) -> None:
        """422 naming the rule when the password is one of the account's last N."""
        keep = self.settings.password_history
        if keep <= 0:
            return
        for old_hash in await repository.recent_password_hashes(conn, user_id, limit=keep):
            if verify_password(old_hash, password):
                raise ValidationFailed(
                    f"the new password must differ from the last {keep} passwords of this account",
                    field="new_password",
                    extra={"rule": "password_history"},
                )

    async def store_password(
        self, conn: Connection, user_id: int, password: str, *, now: datetime, must_change: bool
    ) -> asyncpg.Record:
        """Set a password (policy already checked), remember it in the history and trim the history."""
        password_hash = hash_password(password)
        row = await repository.set_password(
            conn, user_id, password_hash=password_hash, now=now, must_change=must_change
        )
        await repository.add_password_history(
            conn, user_id, password_hash, now=now, keep=max(self.settings.password_history, 1)
        )
        return row

    @staticmethod
    def check_policy(password: str, field: str) -> None:
        """The password policy (length and character classes), naming `field` when it fails."""
        check_password_policy(password, field=field)


def lifecycle_view(settings: Settings, user: asyncpg.Record, now: datetime) -> dict[str, Any]:
    """The lifecycle fields shown with an account."""
    return {
        "locked": is_locked(user, now),
        "password_expires_at": password_expires_at(settings, user),
        "password_change_required": password_change_reason(settings, user, now) is not None,
    }
