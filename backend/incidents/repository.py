"""SQL for incidents and their comments."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import asyncpg

from backend.db import Connection
from backend.sql import Query, expect_row, update_by_id

_SELECT_INCIDENT = """
    SELECT i.id, i.title, i.description, i.area, i.priority, i.status, i.category,
           i.reporter_id, i.reporter_name, i.customer_tier, i.external_ref, i.tags,
           i.assignee_id, a.username AS assignee_name, i.resolution, i.reopened_count, i.source,
           i.created_at, i.updated_at, i.resolved_at, i.closed_at
      FROM incidents i
      LEFT JOIN users a ON a.id = i.assignee_id
"""

UPDATABLE_COLUMNS = ("title", "description", "area", "priority", "category", "customer_tier", "external_ref", "tags")


async def area_exists(conn: Connection, code: str) -> bool:
    """True when the area code is known."""
    return bool(await conn.fetchval("SELECT 1 FROM areas WHERE code = $1", code))


async def list_areas(conn: Connection) -> list[asyncpg.Record]:
    """All areas by code."""
    return await conn.fetch("SELECT code, name FROM areas ORDER BY code")


async def insert_area(conn: Connection, *, code: str, name: str) -> asyncpg.Record | None:
    """Create an area; None when the code exists."""
    return await conn.fetchrow(
        "INSERT INTO areas (code, name) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING RETURNING code, name",
        code,
        name,
    )


async def insert_incident(conn: Connection, *, values: dict[str, Any], now: datetime) -> int:
    """Insert a new open incident and return its id."""
    return cast(
        int,
        await conn.fetchval(
            """INSERT INTO incidents (title, description, area, priority, category, reporter_id, reporter_name,
                                  customer_tier, external_ref, tags, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
           RETURNING id""",
            values["title"],
            values["description"],
            values["area"],
            values["priority"],
            values.get("category"),
            values.get("reporter_id"),
            values.get("reporter_name", ""),
            values.get("customer_tier"),
            values.get("external_ref"),
            values.get("tags", []),
            now,
        ),
    )


async def get_incident(conn: Connection, incident_id: int, *, for_update: bool = False) -> asyncpg.Record | None:
    """One incident with its assignee's name; optionally row-locked."""
    if for_update:
        # Lock the incident row only (the LEFT JOIN side cannot be locked FOR UPDATE).
        await conn.execute("SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE", incident_id)
    return await conn.fetchrow(_SELECT_INCIDENT + " WHERE i.id = $1", incident_id)


async def update_incident_fields(conn: Connection, incident_id: int, *, changes: dict[str, Any], now: datetime) -> None:
    """Set the given whitelisted columns; column names never come from user input."""
    statement = update_by_id("incidents", columns=UPDATABLE_COLUMNS, changes=changes, row_id=incident_id, now=now)
    if statement is not None:
        await conn.execute(statement[0], *statement[1])


async def set_assignee(conn: Connection, incident_id: int, assignee_id: int | None, now: datetime) -> None:
    """Assign or unassign."""
    await conn.execute(
        "UPDATE incidents SET assignee_id = $2, updated_at = $3 WHERE id = $1", incident_id, assignee_id, now
    )


async def set_status(
    conn: Connection,
    incident_id: int,
    *,
    status: str,
    now: datetime,
    resolution: str | None = None,
    reopened: bool = False,
) -> None:
    """Move to a status, stamping resolved/closed times and counting reopenings."""
    await conn.execute(
        """UPDATE incidents
              SET status = $2,
                  updated_at = $3,
                  resolution = CASE WHEN $2 = 'resolved' THEN $4 ELSE resolution END,
                  resolved_at = CASE WHEN $2 = 'resolved' THEN $3
                                     WHEN $2 = 'closed' THEN resolved_at ELSE NULL END,
                  closed_at = CASE WHEN $2 = 'closed' THEN $3 ELSE NULL END,
                  reopened_count = reopened_count + CASE WHEN $5 THEN 1 ELSE 0 END
            WHERE id = $1""",
        incident_id,
        status,
        now,
        resolution,
        reopened,
    )


# Filters of the incident list: the condition of each, `{}` its bound value.
INCIDENT_FILTERS = {
    "status": "i.status = ANY({}::text[])",
    "priority": "i.priority = ANY({}::text[])",
    "area": "i.area = {}",
    "assignee_id": "i.assignee_id = {}",
    "reporter_id": "i.reporter_id = {}",
    "text": "i.search_vector @@ websearch_to_tsquery('simple', {})",
    "created_from": "i.created_at >= {}",
    "created_to": "i.created_at < {}",
}


async def list_incidents(
    conn: Connection, *, filters: dict[str, Any], after: tuple[datetime, int] | None, limit: int
) -> list[asyncpg.Record]:
    """A page of incidents, newest first, keyset-paginated on (created_at, id)."""
    query = Query()
    bind, where = query.bind, query.where
    query.where_present(filters, INCIDENT_FILTERS)
    if filters.get("areas") is not None:  # an empty list is a caller who may see no area: nothing matches
        where(f"i.area = ANY({bind(filters['areas'])}::text[])")
    if after is not None:
        where(f"(i.created_at, i.id) < ({bind(after[0])}, {bind(after[1])})")
    sql = _SELECT_INCIDENT + query.where_sql() + f" ORDER BY i.created_at DESC, i.id DESC LIMIT {bind(limit)}"
    return await conn.fetch(sql, *query.args)


async def insert_comment(
    conn: Connection, *, incident_id: int, author_id: int | None, author_name: str, body: str, now: datetime
) -> asyncpg.Record:
    """Add a comment and return it."""
    return expect_row(
        await conn.fetchrow(
            """INSERT INTO incident_comments (incident_id, author_id, author_name, body, created_at)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING id, incident_id, author_id, author_name, body, created_at""",
            incident_id,
            author_id,
            author_name,
            body,
            now,
        )
    )


async def list_comments(conn: Connection, incident_id: int) -> list[asyncpg.Record]:
    """Comments of one incident, oldest first."""
    return await conn.fetch(
        """SELECT id, incident_id, author_id, author_name, body, created_at
             FROM incident_comments WHERE incident_id = $1 ORDER BY id""",
        incident_id,
    )


async def get_assignable_user(conn: Connection, user_id: int) -> asyncpg.Record | None:
    """An active user who may own incidents (technician or above)."""
    return await conn.fetchrow(
        """SELECT id, username FROM users
            WHERE id = $1 AND is_active AND role IN ('technician', 'supervisor', 'admin')""",
        user_id,
    )
