"""API keys of external systems: issue, list, revoke, rotate, and check one on every request.

A key is `prs_live_` followed by 256 random bits (URL-safe base64). Only its SHA-256 is stored: with that much
entropy a plain hash cannot be reversed or brute-forced, and it needs no server secret that every replica
would have to share. A presented key is looked up by its hash and the hashes are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from backend.apikeys import repository
from backend.apikeys.schemas import ApiKeyCreate, normalise_origin
from backend.audit import service as audit
from backend.clock import Clock
from backend.config import Settings
from backend.context import Principal, RequestContext, Role
from backend.db import Connection, transaction
from backend.errors import AppError, Conflict, Forbidden, Unauthorized, ValidationFailed, found
from backend.sql import expect_row

KEY_PREFIX = "prs_live_"
KEY_MAX_LENGTH = 128
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 6
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ROLE_BY_PERMISSION: tuple[tuple[str, Role], ...] = (
    ("admin", "admin"),
    ("escalate", "supervisor"),
    ("write", "technician"),
    ("read", "reporter"),
)


def hash_key(raw_key: str) -> str:
    """SHA-256 (hex) of a key: the only form in which keys are stored."""
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh key with the recognisable prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def grants(permissions: frozenset[str], needed: str) -> bool:
    """admin grants everything, escalate also grants write; otherwise the permission itself is needed."""
    return "admin" in permissions or needed in permissions or (needed == "write" and "escalate" in permissions)


def permission_for_method(method: str) -> str:
    """The permission a request of this HTTP method needs: read for safe methods, write for the others."""
    return "read" if method.upper() in SAFE_METHODS else "write"


def role_for_permissions(permissions: frozenset[str]) -> Role:
    """The role an API key acts with on the internal API: the highest its permissions imply."""
    for permission, role in _ROLE_BY_PERMISSION:
        if permission in permissions:
            return role
    return "reporter"


@dataclass(frozen=True)
class ApiKeyIdentity:
    """A key that passed every check of this request."""

    id: int
    name: str
    permissions: frozenset[str]
    rate_limit_per_minute: int
    areas: frozenset[str] | None = None  # None: every area

    def principal(self) -> Principal:
        """The principal handlers see for this key."""
        return Principal(
            kind="api_key",
            id=self.id,
            name=self.name,
            role=role_for_permissions(self.permissions),
            permissions=self.permissions,
            areas=self.areas,
        )


def _rejection(error: type[AppError], reason: str, detail: str) -> AppError:
    exc = error(detail, extra={"reason": reason})
    if isinstance(exc, Unauthorized):
        exc.headers = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}
    return exc


class ApiKeyService:
    """Key administration and the per-request check; one transaction per public call."""

    def __init__(self, *, settings: Settings, pool: asyncpg.Pool, clock: Clock):
        self.settings = settings
        self.pool = pool
        self.clock = clock

    def _view(self, row: asyncpg.Record) -> dict[str, Any]:
        now = self.clock.now()
        data = dict(row)
        if data["revoked_at"] is not None:
            data["status"] = "revoked"
        elif data["expires_at"] is not None and data["expires_at"] <= now:
            data["status"] = "expired"
        else:
            data["status"] = "active"
        grace = data["previous_key_valid_until"]
        data["previous_key_valid_until"] = (
            grace if grace is not None and grace > now and data["status"] == "active" else None
        )
        return data

    async def create(self, ctx: RequestContext, body: ApiKeyCreate) -> dict[str, Any]:
        """Issue a key; the reply is the only place the key itself ever appears."""
        now = self.clock.now()
        if body.expires_at is not None and body.expires_at <= now:
            raise ValidationFailed("expires_at must be in the future", field="expires_at")
        raw = new_key()
        async with transaction(self.pool) as conn:
            unknown = await repository.unknown_areas(conn, body.allowed_areas)
            if unknown:
                raise ValidationFailed(f"unknown area(s): {', '.join(unknown)}", field="allowed_areas")
            key_id = await repository.insert_api_key(
                conn,
                name=body.name,
                owner_email=body.owner_email,
                permissions=body.permissions,
                rate_limit_per_minute=body.rate_limit_per_minute,
                allowed_networks=body.allowed_networks,
                allowed_origins=body.allowed_origins,
                expires_at=body.expires_at,
                created_by=ctx.principal.name,
                now=now,
                allowed_areas=body.allowed_areas,
            )
            if key_id is None:
                raise Conflict(
                    f"a live API key named '{body.name}' exists; revoke it or pick another name", field="name"
                )
            await repository.insert_secret(
                conn, api_key_id=key_id, secret_hash=hash_key(raw), display_prefix=raw[:DISPLAY_PREFIX_LENGTH], now=now
            )
            row = expect_row(await repository.get_api_key(conn, key_id))
            await audit.record(
                conn,
                ctx,
                at=now,
                action="api_key.created",
                resource_type="api_key",
                resource_id=key_id,
                after=_audit_state(row),
            )
        return self._view(row) | {"key": raw}

    async def list(self) -> list[dict[str, Any]]:
        """Every key with its state, newest first; never a secret."""
        async with self.pool.acquire() as conn:
            return [self._view(r) for r in await repository.list_api_keys(conn)]

    async def get(self, api_key_id: int) -> dict[str, Any]:
        """One key or NotFound."""
        async with self.pool.acquire() as conn:
            row = found(await repository.get_api_key(conn, api_key_id), f"API key {api_key_id}")
        return self._view(row)

    async def revoke(self, ctx: RequestContext, api_key_id: int) -> dict[str, Any]:
        """Revoke a key at once (its rotated predecessor too); 409 when it is already revoked."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = await self._locked_live(conn, api_key_id)
            await repository.revoke_api_key(conn, api_key_id, now=now, revoked_by=ctx.principal.name)
            after = expect_row(await repository.get_api_key(conn, api_key_id))
            await audit.record(
                conn,
                ctx,
                at=now,
                action="api_key.revoked",
                resource_type="api_key",
                resource_id=api_key_id,
                before=_audit_state(before),
                after=_audit_state(after),
            )
        return self._view(after)

    async def rotate(self, ctx: RequestContext, api_key_id: int, grace_minutes: int | None) -> dict[str, Any]:
        """Issue a new secret; the old one keeps working for the grace period, then stops."""
        grace = timedelta(
            minutes=self.settings.api_key_rotation_grace_minutes if grace_minutes is None else grace_minutes
        )
        now = self.clock.now()
        raw = new_key()
        async with transaction(self.pool) as conn:
            await self._locked_live(conn, api_key_id)
            await repository.retire_current_secrets(conn, api_key_id, now=now, valid_until=now + grace)
            await repository.insert_secret(
                conn,
                api_key_id=api_key_id,
                secret_hash=hash_key(raw),
                display_prefix=raw[:DISPLAY_PREFIX_LENGTH],
                now=now,
            )
            row = expect_row(await repository.get_api_key(conn, api_key_id))
            await audit.record(
                conn,
                ctx,
                at=now,
                action="api_key.rotated",
                resource_type="api_key",
                resource_id=api_key_id,
                after={"grace_minutes": int(grace.total_seconds() // 60), "key_prefix": row["key_prefix"]},
            )
        return self._view(row) | {"key": raw}

    async def _locked_live(self, conn: Connection, api_key_id: int) -> asyncpg.Record:
        row = found(await repository.get_api_key(conn, api_key_id, for_update=True), f"API key {api_key_id}")
        if row["revoked_at"] is not None:
            raise Conflict(f"API key {api_key_id} is revoked")
        return row

    async def authenticate(self, ctx: RequestContext, raw_key: str, *, origin: str | None) -> ApiKeyIdentity:
        """Check a presented key (known, live, not expired, from an allowed address and origin)."""
        now = self.clock.now()
        row = None
        if raw_key.startswith(KEY_PREFIX) and len(raw_key) <= KEY_MAX_LENGTH:
            computed = hash_key(raw_key)
            async with self.pool.acquire() as conn:
                row = await repository.find_by_secret_hash(conn, computed)
            if row is not None and not hmac.compare_digest(row["secret_hash"], computed):
                row = None
        if row is None:
            await self._deny(ctx, None, None, "api_key_unknown")
            raise _rejection(Unauthorized, "api_key_unknown", "API key is not recognised")
        if row["revoked_at"] is not None:
            await self._deny(ctx, row["id"], row["name"], "api_key_revoked")
            raise _rejection(
                Unauthorized,
                "api_key_revoked",
                f"API key '{row['name']}' was revoked at {row['revoked_at'].isoformat()}",
            )
        if row["expires_at"] is not None and row["expires_at"] <= now:
            await self._deny(ctx, row["id"], row["name"], "api_key_expired")
            raise _rejection(
                Unauthorized, "api_key_expired", f"API key '{row['name']}' expired at {row['expires_at'].isoformat()}"
            )
        if row["retired_at"] is not None and (row["valid_until"] is None or row["valid_until"] <= now):
            await self._deny(ctx, row["id"], row["name"], "api_key_rotated")
            raise _rejection(
                Unauthorized,
                "api_key_rotated",
                f"this key of '{row['name']}' was replaced by a rotation and stopped working at "
                f"{(row['valid_until'] or row['retired_at']).isoformat()}; use the new key",
            )
        try:
            self._check_network(ctx, row)
            self._check_origin(row, origin)
        except AppError as refusal:
            await self._deny(ctx, row["id"], row["name"], refusal.extra["reason"])
            raise
        return ApiKeyIdentity(
            id=row["id"],
            name=row["name"],
            permissions=frozenset(row["permissions"]),
            rate_limit_per_minute=row["rate_limit_per_minute"],
            areas=frozenset(row["allowed_areas"]) if row["allowed_areas"] else None,
        )

    def _check_network(self, ctx: RequestContext, row: asyncpg.Record) -> None:
        networks = [ipaddress.ip_network(n) for n in row["allowed_networks"]]
        if not networks:
            return
        address = None
        try:
            address = ipaddress.ip_address(ctx.client_ip or "")
        except ValueError:
            pass
        if address is None or not any(address.version == n.version and address in n for n in networks):
            raise _rejection(
                Forbidden,
                "api_key_ip_not_allowed",
                f"client address {ctx.client_ip} is not in the networks allowed for API key '{row['name']}'",
            )

    def _check_origin(self, row: asyncpg.Record, origin: str | None) -> None:
        allowed = row["allowed_origins"]
        if not allowed:
            return
        try:
            presented = normalise_origin(origin) if origin else None
        except ValueError:
            presented = None
        if presented not in allowed:
            shown = origin[:100] if origin else "none"
            raise _rejection(
                Forbidden, "api_key_origin_not_allowed", f"origin {shown} is not allowed for API key '{row['name']}'"
            )

    async def require_permission(self, ctx: RequestContext, needed: str) -> None:
        """403 (audited) unless the API key acting in `ctx` has a permission that grants `needed`."""
        key = ctx.principal
        if not grants(key.permissions, needed):
            await self._deny(ctx, key.id, key.name, "api_key_missing_permission", needed=needed)
            raise _rejection(
                Forbidden,
                "api_key_missing_permission",
                f"API key '{key.name}' lacks the '{needed}' permission "
                f"(it has: {', '.join(sorted(key.permissions)) or 'none'})",
            )

    async def record_use(self, identity: ApiKeyIdentity, client_ip: str | None) -> None:
        """Count an accepted request and stamp last use."""
        async with self.pool.acquire() as conn:
            await repository.record_use(conn, identity.id, now=self.clock.now(), client_ip=client_ip)

    async def _deny(
        self, ctx: RequestContext, key_id: int | None, key_name: str | None, reason: str, **details: Any
    ) -> None:
        after = {"reason": reason, "key_name": key_name} | details
        await audit.record_alone(
            self.pool,
            ctx,
            at=self.clock.now(),
            action="api_key.denied",
            resource_type="api_key",
            resource_id=key_id,
            after=after,
        )


def _audit_state(row: asyncpg.Record) -> dict[str, Any]:
    keep = (
        "name",
        "owner_email",
        "permissions",
        "rate_limit_per_minute",
        "allowed_networks",
        "allowed_origins",
        "allowed_areas",
        "expires_at",
        "revoked_at",
        "key_prefix",
    )
    return {k: row[k] for k in keep}
