"""User administration and self-service: create, change, unlock, list accounts; change one's own password."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from backend.audit import service as audit
from backend.auth import repository
from backend.auth.lifecycle import AccountLifecycle, is_locked, lifecycle_view
from backend.auth.passwords import verify_password
from backend.auth.schemas import PasswordChange, UserCreate, UserUpdate
from backend.clock import Clock
from backend.config import Settings
from backend.context import Principal, RequestContext
from backend.db import transaction
from backend.errors import BadRequest, Conflict, Forbidden, ValidationFailed, found
from backend.sql import expect_row


def public_user(row: asyncpg.Record) -> dict[str, Any]:
    """The fields of an account that audit rows record."""
    return {k: row[k] for k in ("id", "username", "role", "is_active", "display_name", "email")}


def principal_for_user(
    user: asyncpg.Record, *, session_id: uuid.UUID | None = None, password_change: str | None = None
) -> Principal:
    """The principal of an account: its role, its session and whether a password change is pending."""
    return Principal(
        kind="user",
        id=user["id"],
        name=user["username"],
        role=user["role"],
        session_id=session_id,
        password_change=password_change,
    )


class UserAdministration:
    """Account management, shared by AuthService; one transaction per public call."""

    settings: Settings
    pool: asyncpg.Pool
    clock: Clock
    lifecycle: AccountLifecycle

    def user_view(self, row: asyncpg.Record) -> dict[str, Any]:
        """An account as the API shows it, with its lifecycle state."""
        return dict(row) | lifecycle_view(self.settings, row, self.clock.now())

    async def create_user(self, ctx: RequestContext, body: UserCreate, *, source: str = "local") -> dict[str, Any]:
        """Create a local account after checking the password policy."""
        self.lifecycle.check_policy(body.password, "password")
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            if await repository.get_user_by_username(conn, body.username):
                raise Conflict(f"username '{body.username}' is taken", field="username")
            row = await repository.insert_user(
                conn,
                username=body.username,
                display_name=body.display_name or body.username,
                email=body.email,
                password_hash=None,
                role=body.role,
                source=source,
                now=now,
            )
            row = await self.lifecycle.store_password(
                conn, row["id"], body.password, now=now, must_change=body.must_change_password
            )
            await audit.record(
                conn,
                ctx,
                at=now,
                action="user.created",
                resource_type="user",
                resource_id=row["id"],
                after=public_user(row) | {"must_change_password": body.must_change_password},
            )
            return self.user_view(row)

    async def update_user(self, ctx: RequestContext, user_id: int, body: UserUpdate) -> dict[str, Any]:
        """Change role, state, profile or password (which then must be changed at the next login unless told
        otherwise); the last active admin cannot be demoted."""
        if body.password is not None:
            self.lifecycle.check_policy(body.password, "password")
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = found(await repository.get_user(conn, user_id), f"user {user_id}")
            if (body.password is not None or body.must_change_password) and before["source"] != "local":
                raise ValidationFailed(
                    "directory accounts have no local password; change it in the directory",
                    field="password" if body.password is not None else "must_change_password",
                )
            demoting = before["role"] == "admin" and (
                (body.role is not None and body.role != "admin") or body.is_active is False
            )
            if demoting and await repository.count_admins(conn) <= 1:
                raise Conflict("the last active admin cannot be demoted or disabled", field="role")
            after = await repository.update_user(
                conn,
                user_id,
                role=body.role,
                is_active=body.is_active,
                display_name=body.display_name,
                email=body.email,
                now=now,
                must_change_password=body.must_change_password,
                clear_email="email" in body.model_fields_set and body.email is None,
            )
            if body.password is not None:
                must_change = True if body.must_change_password is None else body.must_change_password
                after = await self.lifecycle.store_password(
                    conn, user_id, body.password, now=now, must_change=must_change
                )
            action = "user.role_changed" if after["role"] != before["role"] else "user.updated"
            changes = {"password_reset": True} if body.password is not None else {}
            if after["must_change_password"] != before["must_change_password"]:
                changes["must_change_password"] = after["must_change_password"]
            await audit.record(
                conn,
                ctx,
                at=now,
                action=action,
                resource_type="user",
                resource_id=user_id,
                before=public_user(before),
                after=public_user(after) | changes,
            )
            return self.user_view(after)

    async def unlock_user(self, ctx: RequestContext, user_id: int) -> dict[str, Any]:
        """End a lockout now and forget the failures counted (audited, published)."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            user = found(await repository.get_user(conn, user_id), f"user {user_id}")
            await self.lifecycle.unlock(conn, ctx, user, now)
            return self.user_view(expect_row(await repository.get_user(conn, user_id)))

    async def change_own_password(self, ctx: RequestContext, body: PasswordChange) -> dict[str, Any]:
        """Self-service change: the current password, the policy and the history are checked; every other session
        of the account ends. A wrong current password is 400 and counts as a failed login."""
        principal = ctx.principal
        if principal.kind != "user" or principal.id is None:
            raise Forbidden("only a signed-in person has a password to change")
        now = self.clock.now()
        wrong_current = False
        async with transaction(self.pool) as conn:
            user = found(await repository.lock_user_with_hash(conn, principal.id), f"user {principal.id}")
            if user["source"] != "local":
                raise ValidationFailed(
                    "directory accounts change their password in the directory",
                    field="new_password",
                    extra={"rule": "directory_account"},
                )
            right = verify_password(user["password_hash"], body.current_password)
            if not right or is_locked(user, now):
                # A locked account cannot go on guessing through this endpoint either: the same refusal.
                wrong_current = True
                reason = "account_locked" if is_locked(user, now) else "wrong_current_password"
                await audit.record(
                    conn,
                    ctx,
                    at=now,
                    action="user.password_change_failed",
                    resource_type="user",
                    resource_id=user["id"],
                    after={"reason": reason},
                )
                if reason == "wrong_current_password":
                    await self.lifecycle.count_failure(conn, ctx, user, now)
            else:
                self.lifecycle.check_policy(body.new_password, "new_password")
                await self.lifecycle.check_not_reused(conn, user["id"], body.new_password)
                row = await self.lifecycle.store_password(
                    conn, user["id"], body.new_password, now=now, must_change=False
                )
                ended = await repository.revoke_other_sessions(
                    conn, user["id"], keep_family=principal.session_id, now=now
                )
                await audit.record(
                    conn,
                    ctx,
                    at=now,
                    action="user.password_changed",
                    resource_type="user",
                    resource_id=user["id"],
                    after={"self_service": True, "sessions_ended": ended},
                )
        if wrong_current:  # raised after the commit, so the failure stays counted
            raise BadRequest("the current password is not correct; nothing was changed", field="current_password")
        view = self.user_view(row)
        return {
            "password_changed_at": row["password_changed_at"],
            "password_expires_at": view["password_expires_at"],
            "sessions_ended": ended,
        }

    async def list_users(self) -> list[dict[str, Any]]:
        """All accounts."""
        async with self.pool.acquire() as conn:
            return [self.user_view(r) for r in await repository.list_users(conn)]

    async def get_user(self, user_id: int) -> dict[str, Any]:
        """One account or NotFound."""
        async with self.pool.acquire() as conn:
            row = found(await repository.get_user(conn, user_id), f"user {user_id}")
        return self.user_view(row)
