"""Idempotency keys: a repeated request with the same key gets the first answer; the same key with another body
is refused. The key is claimed inside the transaction that creates the resource, so it is exactly once even when
two replicas receive the same request at the same moment."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from pydantic_core import to_jsonable_python

from backend.clock import Clock
from backend.context import Principal
from backend.db import Connection
from backend.errors import ValidationFailed
from backend.idempotency import repository

HEADER = "Idempotency-Key"
PURGE_BATCH = 5000


class IdempotencyKeyReused(ValidationFailed):
    """The key was already used for a request with another body (422; nothing is stored)."""


class KeyAlreadyClaimed(Exception):
    """Raised inside the creating transaction when a concurrent request committed the key first (rolls it back)."""


@dataclass(frozen=True)
class IdempotentRequest:
    """One request that carries an `Idempotency-Key`: who sent it, to which endpoint, and its body's hash."""

    endpoint: str
    principal: str
    key: str
    request_hash: str


def request_hash(body: Any) -> str:
    """sha256 of the canonical JSON of the validated body: the same request, however it was spelled."""
    canonical = json.dumps(to_jsonable_python(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def principal_ref(principal: Principal) -> str:
    """Keys are private to their sender: 'user:12', 'api_key:3'."""
    return f"{principal.kind}:{principal.id}"


def idempotent_request(*, endpoint: str, principal: Principal, key: str | None, body: Any) -> IdempotentRequest | None:
    """The request's idempotency record, or None when it carries no key."""
    if key is None:
        return None
    return IdempotentRequest(
        endpoint=endpoint, principal=principal_ref(principal), key=key, request_hash=request_hash(body)
    )


class IdempotencyService:
    """Look up, claim and answer idempotency keys; purge expired ones."""

    def __init__(self, *, pool: asyncpg.Pool, clock: Clock, retention_hours: float):
        if retention_hours < 24:
            raise ValueError("idempotency keys must be kept at least 24 hours")
        self.pool = pool
        self.clock = clock
        self.retention = timedelta(hours=retention_hours)

    async def replay(
        self, request: IdempotentRequest, *, conn: Connection | None = None
    ) -> tuple[int, dict[str, Any]] | None:
        """(status, first answer) when the key was already used with this body; None when it is new (or still
        being created by a request that has not committed). 422 when the body differs."""
        if conn is None:
            async with self.pool.acquire() as own:
                return await self.replay(request, conn=own)
        row = await repository.find(
            conn, endpoint=request.endpoint, principal=request.principal, key=request.key, now=self.clock.now()
        )
        if row is None:
            return None
        if row["request_hash"] != request.request_hash:
            raise IdempotencyKeyReused(
                f"{HEADER} '{request.key}' was already used for a different request body; send a new key for a new "
                "request",
                field=HEADER,
            )
        if row["response"] is None:
            return None
        return row["status_code"], row["response"]

    async def claim(self, conn: Connection, request: IdempotentRequest) -> None:
        """Claim the key in the caller's transaction, or raise KeyAlreadyClaimed (roll back, then `replay`)."""
        now = self.clock.now()
        if not await repository.claim(
            conn,
            endpoint=request.endpoint,
            principal=request.principal,
            key=request.key,
            request_hash=request.request_hash,
            now=now,
            expires_at=now + self.retention,
        ):
            raise KeyAlreadyClaimed(request.key)

    async def record_answer(
        self,
        conn: Connection,
        request: IdempotentRequest,
        *,
        resource_id: int,
        status_code: int,
        response: dict[str, Any],
    ) -> None:
        """Store the first answer in the caller's (creating) transaction."""
        await repository.record_answer(
            conn,
            endpoint=request.endpoint,
            principal=request.principal,
            key=request.key,
            resource_id=resource_id,
            status_code=status_code,
            response=to_jsonable_python(response),
        )

    async def purge_expired(self) -> int:
        """Delete expired keys in batches; the number deleted."""
        total = 0
        while True:
            async with self.pool.acquire() as conn:
                deleted = await repository.delete_expired(conn, now=self.clock.now(), batch=PURGE_BATCH)
            total += deleted
            if deleted < PURGE_BATCH:
                return total
