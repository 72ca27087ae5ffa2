"""SQL for periodic maintenance: an advisory lock, batched retention deletes, ANALYZE."""

from __future__ import annotations

from datetime import datetime

from backend.db import Connection

# Any fixed 64-bit number works; it only has to be the same in every replica.
MAINTENANCE_LOCK_KEY = 0x505253_4D4E54  # "PRS" "MNT"

# Tables whose old rows are deleted by age, with the timestamp column that ages them (constants, never input).
RETENTION_TABLES = {
    "periodic_ticks": "tick",
}


async def try_lock(conn: Connection) -> bool:
    """Take the maintenance lock for this session, without waiting."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", MAINTENANCE_LOCK_KEY))


async def unlock(conn: Connection) -> None:
    """Release the maintenance lock."""
    await conn.execute("SELECT pg_advisory_unlock($1)", MAINTENANCE_LOCK_KEY)


async def table_exists(conn: Connection, table: str) -> bool:
    """True when a table of that name is visible."""
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table))


async def delete_older_than(conn: Connection, table: str, *, before: datetime, batch: int) -> int:
    """Delete rows of a retention table older than `before`, in batches so no lock is held for long."""
    column = RETENTION_TABLES[table]
    removed = 0
    while True:
        result = await conn.execute(
            f"DELETE FROM {table} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table} WHERE {column} < $1 LIMIT $2))",
            before,
            batch,
        )
        count = int(result.split()[-1])
        removed += count
        if count < batch:
            return removed


async def analyze(conn: Connection, table: str) -> None:
    """Refresh the planner statistics of one table (a name from the caller's constant list)."""
    quoted = await conn.fetchval("SELECT quote_ident($1)", table)
    await conn.execute(f"ANALYZE {quoted}")
