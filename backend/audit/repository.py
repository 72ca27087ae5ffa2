"""SQL for the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import asyncpg
from asyncpg.cursor import CursorFactory

from backend.db import Connection
from backend.sql import Query


async def insert_audit_row(
    conn: Connection,
    *,
    occurred_at: datetime,
    actor_kind: str,
    actor_id: str | None,
    actor_name: str,
    action: str,
    resource_type: str,
    resource_id: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    client_ip: str | None,
    request_id: str | None,
) -> int:
    """Append one audit row and return its id."""
    return cast(
        int,
        await conn.fetchval(
            """INSERT INTO audit_log (occurred_at, actor_kind, actor_id, actor_name, action,
                                  resource_type, resource_id, before, after, client_ip, request_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           RETURNING id""",
            occurred_at,
            actor_kind,
            actor_id,
            actor_name,
            action,
            resource_type,
            resource_id,
            before,
            after,
            client_ip,
            request_id,
        ),
    )


async def list_resource_history(
    conn: Connection, *, resource_type: str, resource_id: str, limit: int
) -> list[asyncpg.Record]:
    """Audit rows of one resource, oldest first."""
    return await conn.fetch(
        """SELECT id, occurred_at, actor_kind, actor_id, actor_name, action, before, after, request_id
             FROM audit_log
            WHERE resource_type = $1 AND resource_id = $2
            ORDER BY id
            LIMIT $3""",
        resource_type,
        resource_id,
        limit,
    )


# Filters of the audit log: the condition of each, `{}` its bound value.
AUDIT_FILTERS = {
    "resource_type": "resource_type = {}",
    "resource_id": "resource_id = {}",
    "occurred_from": "occurred_at >= {}",
    "occurred_to": "occurred_at < {}",
    "before_id": "id < {}",
}


async def list_audit_rows(
    conn: Connection,
    *,
    actor: str | None,
    action: str | None,
    resource_type: str | None,
    resource_id: str | None,
    occurred_from: datetime | None,
    occurred_to: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    """A page of audit rows, newest first, keyset-paginated on id; every filter is a bound parameter."""
    query = Query()
    bind, where = query.bind, query.where
    if actor:
        placeholder = bind(actor)
        where(f"(actor_name = {placeholder} OR actor_id = {placeholder})")
    if action:
        if action.endswith(".*"):
            where(f"starts_with(action, {bind(action[:-1])})")
        else:
            where(f"action = {bind(action)}")
    query.where_present(
        {
            "resource_type": resource_type,
            "resource_id": resource_id,
            "occurred_from": occurred_from,
            "occurred_to": occurred_to,
            "before_id": before_id,
        },
        AUDIT_FILTERS,
    )
    sql = """SELECT id, seq, occurred_at, actor_kind, actor_id, actor_name, action, resource_type, resource_id,
                    before, after, client_ip, request_id, prev_hash, hash
               FROM audit_log"""
    sql += query.where_sql() + f" ORDER BY id DESC LIMIT {bind(limit)}"
    return await conn.fetch(sql, *query.args)


def chain_cursor(conn: Connection, *, prefetch: int = 1000) -> CursorFactory[asyncpg.Record]:
    """Every row in chain order with its canonical text (unchained rows last); use inside a transaction."""
    return conn.cursor(
        """SELECT a.id, a.seq, a.prev_hash, a.hash, audit_log_canonical(a) AS canonical
             FROM audit_log a
            ORDER BY a.seq NULLS LAST, a.id""",
        prefetch=prefetch,
    )
