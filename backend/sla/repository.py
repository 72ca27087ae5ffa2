"""SQL for SLA policies, escalation rules and escalations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import asyncpg

from backend.db import Connection
from backend.sql import expect_row, update_by_id

POLICY_COLUMNS = (
    "name",
    "description",
    "priorities",
    "customer_tiers",
    "areas",
    "precedence",
    "first_response_minutes",
    "resolution_minutes",
    "calendar",
    "pause_statuses",
    "warning_thresholds",
    "is_active",
)
RULE_COLUMNS = (
    "name",
    "description",
    "combine",
    "conditions",
    "level",
    "target_department",
    "reassign_to",
    "notify",
    "is_active",
)

_SELECT_POLICY = f"SELECT id, {', '.join(POLICY_COLUMNS)}, created_at, updated_at FROM sla_policies"
_SELECT_RULE = f"SELECT id, {', '.join(RULE_COLUMNS)}, created_at, updated_at FROM escalation_rules"


async def _insert(
    conn: Connection, table: str, columns: tuple[str, ...], values: dict[str, Any], now: datetime, select: str
) -> asyncpg.Record:
    # `table` and `columns` are module constants, never input.
    args = [values[c] for c in columns] + [now]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    new_id = await conn.fetchval(
        f"INSERT INTO {table} ({', '.join(columns)}, created_at, updated_at) "
        f"VALUES ({placeholders}, ${len(args)}, ${len(args)}) RETURNING id",
        *args,
    )
    return expect_row(await conn.fetchrow(select + " WHERE id = $1", new_id))


async def _update(
    conn: Connection,
    table: str,
    allowed: tuple[str, ...],
    row_id: int,
    changes: dict[str, Any],
    now: datetime,
    select: str,
) -> asyncpg.Record | None:
    statement = update_by_id(table, columns=allowed, changes=changes, row_id=row_id, now=now)
    if statement is not None:
        await conn.execute(statement[0], *statement[1])
    return await conn.fetchrow(select + " WHERE id = $1", row_id)


async def _get(conn: Connection, select: str, row_id: int, for_update: bool) -> asyncpg.Record | None:
    return await conn.fetchrow(select + " WHERE id = $1" + (" FOR UPDATE" if for_update else ""), row_id)


async def _name_taken(conn: Connection, table: str, name: str, except_id: int | None) -> bool:
    return bool(
        await conn.fetchval(
            f"SELECT 1 FROM {table} WHERE lower(name) = lower($1) AND id IS DISTINCT FROM $2", name, except_id
        )
    )


async def insert_policy(conn: Connection, *, values: dict[str, Any], now: datetime) -> asyncpg.Record:
    """Create a policy and return it."""
    return await _insert(conn, "sla_policies", POLICY_COLUMNS, values, now, _SELECT_POLICY)


async def update_policy(
    conn: Connection, policy_id: int, *, changes: dict[str, Any], now: datetime
) -> asyncpg.Record | None:
    """Change whitelisted policy columns and return the policy."""
    return await _update(conn, "sla_policies", POLICY_COLUMNS, policy_id, changes, now, _SELECT_POLICY)


async def get_policy(conn: Connection, policy_id: int, *, for_update: bool = False) -> asyncpg.Record | None:
    """One policy."""
    return await _get(conn, _SELECT_POLICY, policy_id, for_update)


async def policy_name_taken(conn: Connection, name: str, *, except_id: int | None = None) -> bool:
    """True when another policy has this name (case-insensitive)."""
    return await _name_taken(conn, "sla_policies", name, except_id)


async def list_policies(conn: Connection) -> list[asyncpg.Record]:
    """All policies in matching order."""
    return await conn.fetch(_SELECT_POLICY + " ORDER BY precedence, id")


async def policy_in_use(conn: Connection, policy_id: int) -> bool:
    """True when a clock or an incident refers to the policy."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM sla_clocks WHERE policy_id = $1)
               OR EXISTS (SELECT 1 FROM sla_incidents WHERE policy_id = $1)
               OR EXISTS (SELECT 1 FROM sla_events WHERE policy_id = $1)""",
            policy_id,
        )
    )


async def delete_policy(conn: Connection, policy_id: int) -> bool:
    """Delete an unused policy."""
    return (await conn.execute("DELETE FROM sla_policies WHERE id = $1", policy_id)) != "DELETE 0"


async def matching_policy(
    conn: Connection, *, priority: str, customer_tier: str | None, area: str
) -> asyncpg.Record | None:
    """The active policy for these attributes: lowest precedence, then most conditions, then oldest."""
    return await conn.fetchrow(
        _SELECT_POLICY
        + """
         WHERE is_active
           AND (cardinality(priorities) = 0 OR $1 = ANY (priorities))
           AND (cardinality(customer_tiers) = 0 OR $2 = ANY (customer_tiers))
           AND (cardinality(areas) = 0 OR $3 = ANY (areas))
         ORDER BY precedence,
                  (cardinality(priorities) > 0)::int + (cardinality(customer_tiers) > 0)::int
                    + (cardinality(areas) > 0)::int DESC,
                  id
         LIMIT 1""",
        priority,
        customer_tier,
        area,
    )


async def insert_rule(conn: Connection, *, values: dict[str, Any], now: datetime) -> asyncpg.Record:
    """Create an escalation rule and return it."""
    return await _insert(conn, "escalation_rules", RULE_COLUMNS, values, now, _SELECT_RULE)


async def update_rule(
    conn: Connection, rule_id: int, *, changes: dict[str, Any], now: datetime
) -> asyncpg.Record | None:
    """Change whitelisted rule columns and return the rule."""
    return await _update(conn, "escalation_rules", RULE_COLUMNS, rule_id, changes, now, _SELECT_RULE)


async def get_rule(conn: Connection, rule_id: int, *, for_update: bool = False) -> asyncpg.Record | None:
    """One escalation rule."""
    return await _get(conn, _SELECT_RULE, rule_id, for_update)


async def rule_name_taken(conn: Connection, name: str, *, except_id: int | None = None) -> bool:
    """True when another rule has this name (case-insensitive)."""
    return await _name_taken(conn, "escalation_rules", name, except_id)


async def list_rules(conn: Connection, *, active_only: bool = False) -> list[asyncpg.Record]:
    """Escalation rules, lowest level first."""
    where = " WHERE is_active" if active_only else ""
    return await conn.fetch(_SELECT_RULE + where + " ORDER BY level, id")


async def delete_rule(conn: Connection, rule_id: int) -> bool:
    """Delete a rule; escalations it caused keep its name."""
    return (await conn.execute("DELETE FROM escalation_rules WHERE id = $1", rule_id)) != "DELETE 0"


async def insert_escalation(conn: Connection, *, values: dict[str, Any]) -> asyncpg.Record | None:
    """Record an escalation once per (incident, level, reason key); None when it was already recorded."""
    return await conn.fetchrow(
        """INSERT INTO sla_escalations (incident_id, level, previous_level, trigger, reason_key, reason, rule_id,
                                        rule_name, target_department, reassigned_to, actor_kind, actor_id,
                                        actor_name, language, messages, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
           ON CONFLICT ON CONSTRAINT sla_escalations_once DO NOTHING
           RETURNING *""",
        values["incident_id"],
        values["level"],
        values["previous_level"],
        values["trigger"],
        values["reason_key"],
        values["reason"],
        values.get("rule_id"),
        values.get("rule_name"),
        values.get("target_department"),
        values.get("reassigned_to"),
        values["actor_kind"],
        values.get("actor_id"),
        values["actor_name"],
        values["language"],
        values["messages"],
        values["created_at"],
    )


async def list_escalations(conn: Connection, incident_id: int) -> list[asyncpg.Record]:
    """Escalations of one incident, oldest first."""
    return await conn.fetch("SELECT * FROM sla_escalations WHERE incident_id = $1 ORDER BY created_at, id", incident_id)


async def get_escalation_messages(conn: Connection, escalation_id: int) -> dict[str, Any] | None:
    """The rendered messages of one escalation ({"reporter": {...}, "department": {...}}), or None."""
    return cast(
        dict[str, Any] | None, await conn.fetchval("SELECT messages FROM sla_escalations WHERE id = $1", escalation_id)
    )


async def fired_rule_keys(conn: Connection, incident_id: int) -> set[tuple[int, str]]:
    """(level, reason key) pairs already recorded for an incident."""
    rows = await conn.fetch("SELECT level, reason_key FROM sla_escalations WHERE incident_id = $1", incident_id)
    return {(r["level"], r["reason_key"]) for r in rows}


async def incident_language(conn: Connection, incident_id: int) -> str | None:
    """The language the reporter asked for (that of the incident's suggestion)."""
    return cast(str | None, await conn.fetchval("SELECT language FROM suggestions WHERE incident_id = $1", incident_id))


async def steps_tried(conn: Connection, incident_id: int, *, comment_limit: int = 10) -> dict[str, Any]:
    """What has been tried: the suggestion and its verdict, the latest comments, earlier escalations."""
    suggestion = await conn.fetchrow(
        "SELECT status, text, feedback, rating FROM suggestions WHERE incident_id = $1", incident_id
    )
    comments = await conn.fetch(
        """SELECT author_name, body, created_at FROM (
               SELECT id, author_name, body, created_at FROM incident_comments
                WHERE incident_id = $1 ORDER BY id DESC LIMIT $2) latest
            ORDER BY id""",
        incident_id,
        comment_limit,
    )
    escalations = await conn.fetch(
        "SELECT level, reason, created_at FROM sla_escalations WHERE incident_id = $1 ORDER BY created_at, id",
        incident_id,
    )
    return {
        "suggestion": dict(suggestion) if suggestion else None,
        "comments": [dict(c) for c in comments],
        "escalations": [dict(e) for e in escalations],
    }
