"""Login (with per-account lockout), token rotation and verification, logout, directory accounts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg

from backend.audit import service as audit
from backend.auth import repository
from backend.auth.ldap import USERNAME_MAX, DirectoryLogin, DirectoryPerson, DirectoryUnavailable
from backend.auth.lifecycle import AccountLifecycle, is_locked, password_change_reason
from backend.auth.passwords import verify_password
from backend.auth.schemas import TokenPair
from backend.auth.signing_keys import SigningKeyRing
from backend.auth.tokens import (
    AccessClaims,
    decode_access_token,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
    token_key_id,
)
from backend.auth.users import UserAdministration, principal_for_user, public_user
from backend.clock import Clock
from backend.config import Settings
from backend.context import Principal, RequestContext
from backend.db import Connection, transaction
from backend.errors import Forbidden, Unauthorized
from backend.events import EventBus

# The one answer to a refused login, whatever the reason (wrong password, unknown user, locked account).
LOGIN_REFUSED = "incorrect username or password"


class AuthService(UserAdministration):
    """Accounts and tokens; one transaction per public call."""

    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        clock: Clock,
        signing_keys: SigningKeyRing,
        events: EventBus | None = None,
        directory: DirectoryLogin | None = None,
    ):
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.signing_keys = signing_keys
        self.lifecycle = AccountLifecycle(settings, events or EventBus())
        self.directory = directory or DirectoryLogin(settings)

    async def login(self, ctx: RequestContext, *, username: str, password: str) -> TokenPair:
        """Sign in: local accounts by their password, others through the directory; failures are audited and
        counted per account, which locks after PRS_LOCKOUT_THRESHOLD of them."""
        if not username or len(username) > USERNAME_MAX or any(ord(c) < 32 or ord(c) == 127 for c in username):
            await audit.record_alone(
                self.pool,
                ctx,
                at=self.clock.now(),
                action="auth.login_failed",
                resource_type="user",
                resource_id=None,
                after={"username": repr(username[:64]), "reason": "malformed_username"},
            )
            raise Unauthorized(LOGIN_REFUSED)
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
            # The password is checked even for a locked account, so the answer takes as long either way.
            ok = verify_password(user["password_hash"] if user else None, password)
            locked = user is not None and is_locked(user, now)
            if ok and user is not None and user["is_active"] and not locked:
                return await self._signed_in(conn, ctx, user, now)
            reason = (
                "unknown_user"
                if user is None
                else "account_locked"
                if locked
                else "account_disabled"
                if not user["is_active"]
                else "invalid_credentials"
            )
            await audit.record(
                conn,
                ctx,
                at=now,
                action="auth.login_failed",
                resource_type="user",
                resource_id=user["id"] if user else None,
                after={"username": username[:64], "reason": reason},
            )
            if user is not None and reason == "invalid_credentials":
                await self.lifecycle.count_failure(conn, ctx, user, now)
        # Locked or not, right password or not: one answer, so a guesser learns nothing from it.
        raise Unauthorized(LOGIN_REFUSED)

    async def _signed_in(
        self, conn: Connection, ctx: RequestContext, user: asyncpg.Record, now: datetime, *, method: str | None = None
    ) -> TokenPair:
        await self.lifecycle.clear_failures(conn, user["id"])
        await repository.touch_last_login(conn, user["id"], now)
        change = password_change_reason(self.settings, user, now)
        after = ({"method": method} if method else {}) | ({"password_change_required": change} if change else {})
        await audit.record(
            conn,
            RequestContext(principal_for_user(user), ctx.client_ip, ctx.request_id),
            at=now,
            action="auth.login",
            resource_type="user",
            resource_id=user["id"],
            after=after or None,
        )
        return await self._issue_pair(conn, user, family_id=uuid.uuid4())

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
                    conn,
                    ctx,
                    at=now,
                    action="auth.refresh_reuse_detected",
                    resource_type="user",
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
            await audit.record(
                conn, ctx, at=now, action="auth.logout", resource_type="user", resource_id=row["user_id"]
            )

    async def verify_access_token(self, token: str) -> AccessClaims:
        """Decode and check an access token with the key its `kid` names, against the clock."""
        key = await self.signing_keys.verifying_key(token_key_id(token))
        return decode_access_token(key.secret, token, now=self.clock.now())

    async def load_active_principal(self, claims: AccessClaims) -> Principal:
        """The principal for a token, refusing disabled or deleted accounts and ended sessions; role read fresh."""
        async with self.pool.acquire() as conn:
            user = await repository.get_user(conn, claims.user_id)
            revoked = user is not None and await repository.session_is_revoked(conn, claims.session_id)
        if user is None or not user["is_active"]:
            raise Unauthorized("account is disabled or no longer exists")
        if revoked:
            raise Unauthorized("this session has ended (signed out or revoked); sign in again")
        return principal_for_user(
            user,
            session_id=claims.session_id,
            password_change=password_change_reason(self.settings, user, self.clock.now()),
        )

    async def _directory_login(self, ctx: RequestContext, *, username: str, password: str) -> TokenPair:
        """Check the password with the directory, then create or refresh the local account it maps to."""
        failure = {"username": username[:64], "method": "ldap"}
        async with self.pool.acquire() as conn:
            known = await repository.get_user_by_username(conn, username)
        if known is not None and is_locked(known, self.clock.now()):
            # Locked locally (PRS_LOCKOUT_DIRECTORY_ACCOUNTS): the directory is not asked at all.
            await audit.record_alone(
                self.pool,
                ctx,
                at=self.clock.now(),
                action="auth.login_failed",
                resource_type="user",
                resource_id=known["id"],
                after=failure | {"reason": "account_locked"},
            )
            raise Unauthorized(LOGIN_REFUSED)
        try:
            person = await self.directory.authenticate(username, password)
        except DirectoryUnavailable:
            await audit.record_alone(
                self.pool,
                ctx,
                at=self.clock.now(),
                action="auth.login_failed",
                resource_type="user",
                resource_id=None,
                after=failure | {"reason": "directory_unreachable"},
            )
            raise
        if person is None:
            now = self.clock.now()
            async with transaction(self.pool) as conn:
                await audit.record(
                    conn,
                    ctx,
                    at=now,
                    action="auth.login_failed",
                    resource_type="user",
                    resource_id=known["id"] if known else None,
                    after=failure | {"reason": "invalid_credentials"},
                )
                if known is not None:
                    await self.lifecycle.count_failure(conn, ctx, known, now)
            raise Unauthorized(LOGIN_REFUSED)
        access = self.directory.access_for(person)
        if access.role is None:
            await audit.record_alone(
                self.pool,
                ctx,
                at=self.clock.now(),
                action="auth.login_failed",
                resource_type="user",
                resource_id=None,
                after=failure | {"reason": "no_mapped_group", "groups": list(person.groups)},
            )
            raise Forbidden("your directory account is not in any group that grants a PR-System role")
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            user = await self._sync_directory_account(conn, ctx, person, access.role, now)
            if user is not None and user["is_active"]:
                return await self._signed_in(conn, ctx, user, now, method="ldap")
            await audit.record(
                conn,
                ctx,
                at=now,
                action="auth.login_failed",
                resource_type="user",
                resource_id=user["id"] if user else None,
                after=failure | {"reason": "account_disabled" if user else "local_account_exists"},
            )
        raise Unauthorized(LOGIN_REFUSED)

    async def _sync_directory_account(
        self, conn: Connection, ctx: RequestContext, person: DirectoryPerson, role: str, now: datetime
    ) -> asyncpg.Record | None:
        """Create the account on first login, else bring role and profile in line with the directory."""
        directory_ctx = RequestContext(
            Principal(kind="system", id=None, name="ldap", role="admin"), ctx.client_ip, ctx.request_id
        )
        user = await repository.get_user_by_username(conn, person.username)
        if user is None:
            user = await repository.insert_user(
                conn,
                username=person.username,
                display_name=person.display_name[:200],
                email=person.email,
                password_hash=None,
                role=role,
                source="ldap",
                now=now,
                directory_dn=person.dn,
            )
            await audit.record(
                conn,
                directory_ctx,
                at=now,
                action="user.created",
                resource_type="user",
                resource_id=user["id"],
                after=public_user(user) | {"source": "ldap"},
            )
            return user
        if user["source"] != "ldap":
            return None  # a local account of the same name was created meanwhile: never merge the two
        after = await repository.set_directory_profile(
            conn,
            user["id"],
            role=role,
            display_name=person.display_name[:200],
            email=person.email,
            directory_dn=person.dn,
            now=now,
        )
        if public_user(after) != public_user(user):
            await audit.record(
                conn,
                directory_ctx,
                at=now,
                resource_type="user",
                resource_id=user["id"],
                action="user.role_changed" if user["role"] != role else "user.updated",
                before=public_user(user),
                after=public_user(after),
            )
        return after

    async def _issue_pair(self, conn: Connection, user: asyncpg.Record, *, family_id: uuid.UUID) -> TokenPair:
        now = self.clock.now()
        refresh = new_refresh_token()
        await repository.insert_refresh_token(
            conn,
            token_id=uuid.uuid4(),
            user_id=user["id"],
            family_id=family_id,
            token_hash=hash_refresh_token(refresh),
            issued_at=now,
            expires_at=now + timedelta(days=self.settings.refresh_token_days),
        )
        key = await self.signing_keys.current()
        access = issue_access_token(
            key.secret,
            kid=key.kid,
            user_id=user["id"],
            username=user["username"],
            role=user["role"],
            now=now,
            minutes=self.settings.access_token_minutes,
            session_id=family_id,
        )
        change = password_change_reason(self.settings, user, now)
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=self.settings.access_token_minutes * 60,
            password_change_required=change is not None,
            password_change_reason=change,
        )
