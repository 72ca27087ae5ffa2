"""Record changes (who, what, before and after, from where), read them back, and verify the hash chain."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

import asyncpg

from backend.audit import repository
from backend.context import RequestContext
from backend.db import Connection
from backend.errors import BadRequest, ValidationFailed

# Never store these, whatever a caller passes in before/after (matched at any depth, case-insensitively).
_SECRET_KEYS = {
    "password",
    "password_hash",
    "token",
    "refresh_token",
    "access_token",
    "secret",
    "api_key",
    "secret_hash",
    "authorization",
    "bind_password",
    "x-api-key",
}
GENESIS_HASH = "0" * 64


def _scrub_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("[redacted]" if str(k).lower() in _SECRET_KEYS else _scrub_value(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v) for v in value]
    return value


def _scrub(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    # Round-trip through JSON so datetimes and other values are stored as text.
    return json.loads(json.dumps(_scrub_value(values), default=str))


async def record(
    conn: Connection,
    ctx: RequestContext,
    *,
    at: datetime,
    action: str,
    resource_type: str,
    resource_id: str | int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> int:
    """Write one audit row inside the caller's transaction; the database chains it when that commits."""
    principal = ctx.principal
    return await repository.insert_audit_row(
        conn,
        occurred_at=at,
        actor_kind=principal.kind,
        actor_id=None if principal.id is None else str(principal.id),
        actor_name=principal.name,
        action=action,
        resource_type=resource_type,
        resource_id=None if resource_id is None else str(resource_id),
        before=_scrub(before),
        after=_scrub(after),
        client_ip=ctx.client_ip,
        request_id=ctx.request_id,
    )


async def record_alone(pool: asyncpg.Pool, ctx: RequestContext, **fields: Any) -> int:
    """Write one audit row in a transaction of its own (for refusals, which roll nothing else back)."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            return await record(conn, ctx, **fields)


async def resource_history(
    conn: Connection, *, resource_type: str, resource_id: str | int, limit: int = 500
) -> list[dict[str, Any]]:
    """The audit trail of one resource, oldest first."""
    rows = await repository.list_resource_history(
        conn, resource_type=resource_type, resource_id=str(resource_id), limit=limit
    )
    return [dict(row) for row in rows]


def encode_cursor(row_id: int) -> str:
    """An opaque cursor pointing below the row with this id."""
    return base64.urlsafe_b64encode(json.dumps({"before": row_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The row id inside a cursor from `encode_cursor`, or 400 naming the field."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["before"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError
        return value
    except (ValueError, TypeError, KeyError, json.JSONDecodeError):
        raise BadRequest("cursor is not valid; use next_cursor from a previous page", field="cursor") from None


async def list_entries(
    pool: asyncpg.Pool,
    *,
    actor: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of audit entries, newest first, with the cursor of the next page."""
    for name, moment in (("occurred_from", occurred_from), ("occurred_to", occurred_to)):
        if moment is not None and moment.tzinfo is None:
            raise ValidationFailed(f"{name} must include a timezone, e.g. 2026-05-01T00:00:00Z", field=name)
    if occurred_from and occurred_to and occurred_from >= occurred_to:
        raise BadRequest("occurred_from must be before occurred_to", field="occurred_from")
    before_id = decode_cursor(cursor) if cursor else None
    async with pool.acquire() as conn:
        rows = await repository.list_audit_rows(
            conn,
            actor=actor,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            occurred_from=occurred_from,
            occurred_to=occurred_to,
            before_id=before_id,
            limit=limit + 1,
        )
    items = [dict(r) for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1]["id"]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def row_hash(canonical: str) -> str:
    """SHA-256 (hex) of a row's canonical text, as the database computed it when chaining."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def verify_chain(pool: asyncpg.Pool) -> dict[str, Any]:
    """Walk the chain in order and report the first broken link, or the head hash when all links hold."""
    expected_seq, expected_prev, checked = 1, GENESIS_HASH, 0
    async with pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            async for row in repository.chain_cursor(conn):
                problem = _link_problem(row, expected_seq, expected_prev)
                if problem is not None:
                    return {
                        "ok": False,
                        "rows_checked": checked,
                        "first_broken": {"id": row["id"], "seq": row["seq"], "reason": problem},
                    }
                expected_seq, expected_prev, checked = expected_seq + 1, row["hash"], checked + 1
    return {"ok": True, "rows_checked": checked, "head_seq": checked, "head_hash": expected_prev}


def _link_problem(row: asyncpg.Record, expected_seq: int, expected_prev: str) -> str | None:
    if row["seq"] is None or row["hash"] is None:
        return "row is not chained (it was written with the chain trigger bypassed)"
    if row["seq"] != expected_seq:
        return f"sequence jumps from {expected_seq - 1} to {row['seq']}: rows were removed"
    if row["prev_hash"] != expected_prev:
        return "prev_hash does not match the hash of the previous row"
    if row_hash(row["canonical"]) != row["hash"]:
        return "content does not match its hash: the row was changed after it was written"
    return None
