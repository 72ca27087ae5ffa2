"""Login, token rotation, logout and user administration."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from backend.audit import service as audit
from backend.auth import repository
from backend.auth.ldap import USERNAME_MAX, DirectoryLogin, DirectoryPerson, DirectoryUnavailable
from backend.auth.passwords import check_password_policy, hash_password, verify_password
from backend.auth.schemas import TokenPair, UserCreate, UserUpdate
from backend.auth.tokens import (
    decode_access_token, hash_refresh_token, issue_access_token, new_refresh_token, AccessClaims,
)
from backend.clock import Clock
from backend.config import Settings
from backend.context import Principal, RequestContext
from backend.db import transaction
from backend.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed


def _public_user(row: asyncpg.Record) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "username", "role", "is_active", "is_auditor", "display_name", "email")}


def principal_for_user(user: asyncpg.Record) -> Principal:
    """The principal of an account: its role, and the auditor capability when granted."""
    return Principal(kind="user", id=user["id"], name=user["username"], role=user["role"],
                     permissions=frozenset({"audit"}) if user["is_auditor"] else frozenset())


class AuthService:
    """Accounts and tokens; one transaction per public call."""

    def __init__(self, *, settings: Settings, pool: asyncpg.Pool, clock: Clock, jwt_secret: str,
                 directory: DirectoryLogin | None = None):
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self._secret = jwt_secret
        self.directory = directory or DirectoryLogin(settings)

    async def login(self, ctx: RequestContext, *, username: str, password: str) -> TokenPair:
        """Sign in: local accounts by their password, others through the directory; failures are audited."""
        if not username or len(username) > USERNAME_MAX or any(ord(c) < 32 or ord(c) == 127 for c in username):
            await audit.record_alone(self.pool, ctx, at=self.clock.now(), action="auth.login_failed",
                                     resource_type="user", resource_id=None,
                                     after={"username": repr(username[:64]), "reason": "malformed_username"})
            raise Unauthorized("incorrect username or password")
        if self.directory.enabled:
            async with self.pool.acquire() as conn:
                known = await repository.get_user_by_username(conn, username)
            if known is None or known["source"] == "ldap":
                return await self._directory_login(ctx, username=username, password=password)
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            user = await repository.get_user_by_username(conn, username)
            if user is not None and user["source"] != "local":
                user = None  # directory accounts have no local password, whatever the column holds
            ok = verify_password(user["password_hash"] if user else None, password)
            if not ok or user is None or not user["is_active"]:
                await audit.record(
                    conn, ctx, at=now, action="auth.login_failed", resource_type="user",
                    resource_id=user["id"] if user else None, after={"username": username[:64]},
                )
            else:
                await repository.touch_last_login(conn, user["id"], now)
                principal = principal_for_user(user)
                await audit.record(
                    conn,
                    RequestContext(principal, ctx.client_ip, ctx.request_id),
                    at=now, action="auth.login", resource_type="user", resource_id=user["id"],
                )
                return await self._issue_pair(conn, user, family_id=uuid.uuid4())
        raise Unauthorized("incorrect username or password")

    async def refresh(self, ctx: RequestContext, *, refresh_token: str) -> TokenPair:
        """Rotate a refresh token; presenting a used one revokes its whole family."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await repository.lock_refresh_token(conn, hash_refresh_token(refresh_token))
                if row is None or row["revoked_at"] is not None or row["expires_at"] <= now:
                    raise Unauthorized("refresh token is invalid, expired or revoked")
                if row["used_at"] is None:
                    user = await repository.get_user(conn, row["user_id"])
                    if user is None or not user["is_active"]:
                        raise Unauthorized("account is disabled")
                    await repository.mark_refresh_token_used(conn, row["id"], now)
                    return await self._issue_pair(conn, user, family_id=row["family_id"])
                # Reuse of a rotated token: somebody holds a copy. End the session everywhere.
                await repository.revoke_refresh_family(conn, row["family_id"], now)
                await audit.record(
                    conn, ctx, at=now, action="auth.refresh_reuse_detected", resource_type="user",
                    resource_id=row["user_id"],
                )
        raise Unauthorized("refresh token was already used; the session has been revoked")

    async def logout(self, ctx: RequestContext, *, refresh_token: str) -> None:
        """Revoke the session the refresh token belongs to."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            row = await repository.lock_refresh_token(conn, hash_refresh_token(refresh_token))
            if row is None:
                return
            await repository.revoke_refresh_family(conn, row["family_id"], now)
            await audit.record(conn, ctx, at=now, action="auth.logout", resource_type="user", resource_id=row["user_id"])

    def verify_access_token(self, token: str) -> AccessClaims:
        """Decode and check an access token against the clock."""
        return decode_access_token(self._secret, token, now=self.clock.now())

    async def load_active_principal(self, claims: AccessClaims) -> Principal:
        """The principal for a token, refusing disabled or deleted accounts and ended sessions; role read fresh."""
        async with self.pool.acquire() as conn:
            user = await repository.get_user(conn, claims.user_id)
            revoked = user is not None and await repository.session_is_revoked(conn, claims.session_id)
        if user is None or not user["is_active"]:
            raise Unauthorized("account is disabled or no longer exists")
        if revoked:
            raise Unauthorized("this session has ended (signed out or revoked); sign in again")
        return principal_for_user(user)

    async def _directory_login(self, ctx: RequestContext, *, username: str, password: str) -> TokenPair:
        """Check the password with the directory, then create or refresh the local account it maps to."""
        failure = {"username": username[:64], "method": "ldap"}
        try:
            person = await self.directory.authenticate(username, password)
        except DirectoryUnavailable:
            await audit.record_alone(self.pool, ctx, at=self.clock.now(), action="auth.login_failed",
                                     resource_type="user", resource_id=None,
                                     after=failure | {"reason": "directory_unreachable"})
            raise
        if person is None:
            await audit.record_alone(self.pool, ctx, at=self.clock.now(), action="auth.login_failed",
                                     resource_type="user", resource_id=None,
                                     after=failure | {"reason": "invalid_credentials"})
            raise Unauthorized("incorrect username or password")
        access = self.directory.access_for(person)
        if access.role is None:
            await audit.record_alone(self.pool, ctx, at=self.clock.now(), action="auth.login_failed",
                                     resource_type="user", resource_id=None,
                                     after=failure | {"reason": "no_mapped_group", "groups": list(person.groups)})
            raise Forbidden("your directory account is not in any group that grants a PR-System role")
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            user = await self._sync_directory_account(conn, ctx, person, access.role, access.is_auditor, now)
            if user is not None and user["is_active"]:
                await repository.touch_last_login(conn, user["id"], now)
                await audit.record(conn, RequestContext(principal_for_user(user), ctx.client_ip, ctx.request_id),
                                   at=now, action="auth.login", resource_type="user", resource_id=user["id"],
                                   after={"method": "ldap"})
                return await self._issue_pair(conn, user, family_id=uuid.uuid4())
            await audit.record(conn, ctx, at=now, action="auth.login_failed", resource_type="user",
                               resource_id=user["id"] if user else None,
                               after=failure | {"reason": "account_disabled" if user else "local_account_exists"})
        raise Unauthorized("incorrect username or password")

    async def _sync_directory_account(self, conn: asyncpg.Connection, ctx: RequestContext, person: DirectoryPerson,
                                      role: str, is_auditor: bool, now: datetime) -> asyncpg.Record | None:
        """Create the account on first login, else bring role, flag and profile in line with the directory."""
        directory_ctx = RequestContext(Principal(kind="system", id=None, name="ldap", role="admin"),
                                       ctx.client_ip, ctx.request_id)
        user = await repository.get_user_by_username(conn, person.username)
        if user is None:
            user = await repository.insert_user(
                conn, username=person.username, display_name=person.display_name[:200], email=person.email,
                password_hash=None, role=role, source="ldap", now=now, is_auditor=is_auditor,
                directory_dn=person.dn)
            await audit.record(conn, directory_ctx, at=now, action="user.created", resource_type="user",
                               resource_id=user["id"], after=_public_user(user) | {"source": "ldap"})
            return user
        if user["source"] != "ldap":
            return None  # a local account of the same name was created meanwhile: never merge the two
        after = await repository.set_directory_profile(
            conn, user["id"], role=role, is_auditor=is_auditor, display_name=person.display_name[:200],
            email=person.email, directory_dn=person.dn, now=now)
        if _public_user(after) != _public_user(user):
            changed_access = (user["role"], user["is_auditor"]) != (role, is_auditor)
            await audit.record(conn, directory_ctx, at=now, resource_type="user", resource_id=user["id"],
                               action="user.role_changed" if changed_access else "user.updated",
                               before=_public_user(user), after=_public_user(after))
        return after

    async def create_user(self, ctx: RequestContext, body: UserCreate, *, source: str = "local") -> dict[str, Any]:
        """Create a local account after checking the password policy."""
        check_password_policy(body.password)
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            if await repository.get_user_by_username(conn, body.username):
                raise Conflict(f"username '{body.username}' is taken", field="username")
            row = await repository.insert_user(
                conn, username=body.username, display_name=body.display_name or body.username,
                email=body.email, password_hash=hash_password(body.password), role=body.role,
                source=source, now=now, is_auditor=body.is_auditor,
            )
            await audit.record(conn, ctx, at=now, action="user.created", resource_type="user",
                               resource_id=row["id"], after=_public_user(row))
            return dict(row)

    async def update_user(self, ctx: RequestContext, user_id: int, body: UserUpdate) -> dict[str, Any]:
        """Change role, state, profile or password; the last active admin cannot be demoted."""
        if body.password is not None:
            check_password_policy(body.password)
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = await repository.get_user(conn, user_id)
            if before is None:
                raise NotFound(f"user {user_id} not found")
            if body.password is not None and before["source"] != "local":
                raise ValidationFailed("directory accounts have no local password; change it in the directory",
                                       field="password")
            demoting = before["role"] == "admin" and (
                (body.role is not None and body.role != "admin") or body.is_active is False
            )
            if demoting and await repository.count_admins(conn) <= 1:
                raise Conflict("the last active admin cannot be demoted or disabled", field="role")
            after = await repository.update_user(
                conn, user_id, role=body.role, is_active=body.is_active, display_name=body.display_name,
                email=body.email, password_hash=hash_password(body.password) if body.password else None, now=now,
                is_auditor=body.is_auditor,
            )
            access_changed = (after["role"], after["is_auditor"]) != (before["role"], before["is_auditor"])
            action = "user.role_changed" if access_changed else "user.updated"
            await audit.record(conn, ctx, at=now, action=action, resource_type="user", resource_id=user_id,
                               before=_public_user(before), after=_public_user(after))
            return dict(after)

    async def list_users(self) -> list[dict[str, Any]]:
        """All accounts."""
        async with self.pool.acquire() as conn:
            return [dict(r) for r in await repository.list_users(conn)]

    async def get_user(self, user_id: int) -> dict[str, Any]:
        """One account or NotFound."""
        async with self.pool.acquire() as conn:
            row = await repository.get_user(conn, user_id)
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return dict(row)

    async def _issue_pair(self, conn: asyncpg.Connection, user: asyncpg.Record, *, family_id: uuid.UUID) -> TokenPair:
        now = self.clock.now()
        refresh = new_refresh_token()
        await repository.insert_refresh_token(
            conn, token_id=uuid.uuid4(), user_id=user["id"], family_id=family_id,
            token_hash=hash_refresh_token(refresh), issued_at=now,
            expires_at=now + timedelta(days=self.settings.refresh_token_days),
        )
        access = issue_access_token(
            self._secret, user_id=user["id"], username=user["username"], role=user["role"],
            now=now, minutes=self.settings.access_token_minutes, session_id=family_id,
        )
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=self.settings.access_token_minutes * 60)


def validate_role(role: str) -> None:
    """Raise unless the role is one of the four."""
    if role not in ("reporter", "technician", "supervisor", "admin"):
        raise ValidationFailed(f"unknown role '{role}'", field="role")
