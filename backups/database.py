"""The Postgres side of a backup: a consistent pg_dump with the facts of its snapshot, and pg_restore."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from backend.db import Connection, connect
from backups import repository

# Tables whose rows stay out of backups: the record of backup runs describes the backups themselves (they are
# listed from the bucket), and a restored copy would show the run that took it as still running.
EXCLUDED_DATA = ("backup_runs",)


class DatabaseToolError(Exception):
    """pg_dump or pg_restore failed or is missing."""


@dataclass(frozen=True)
class SnapshotFacts:
    """What the dump's snapshot held: schema level, row counts per table and the audit head."""

    schema_level: int
    row_counts: dict[str, int]
    audit_head: dict[str, Any]


def pg_tool(name: str, bin_dir: str = "") -> str:
    """Path of pg_dump/pg_restore: from PRS_BACKUP_PG_BIN_DIR when set, else from PATH."""
    found = shutil.which(name, path=bin_dir) if bin_dir else shutil.which(name)
    if found is None:
        where = bin_dir or "PATH"
        raise DatabaseToolError(
            f"{name} not found in {where}; install the PostgreSQL client or set PRS_BACKUP_PG_BIN_DIR"
        )
    return found


async def _run(argv: list[str], what: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(os.environ)
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        message = err.decode("utf-8", "replace").strip()[-2000:]
        raise DatabaseToolError(f"{what} failed (exit {process.returncode}): {message}")


async def snapshot_facts(conn: Connection) -> SnapshotFacts:
    """Counts and audit head as seen by the connection's current transaction."""
    counts = {
        table: 0 if table in EXCLUDED_DATA else await repository.row_count(conn, table)
        for table in await repository.public_tables(conn)
    }
    return SnapshotFacts(
        schema_level=await repository.schema_level(conn),
        row_counts=counts,
        audit_head=await repository.audit_head(conn),
    )


async def dump_database(dsn: str, target: Path, *, bin_dir: str = "") -> SnapshotFacts:
    """pg_dump (custom format) of the one database, from the same snapshot the returned facts were read in.

    The snapshot is exported by a REPEATABLE READ transaction held open for the length of the dump, so an
    incident and its audit rows are in the dump together or not at all, and the counts match it exactly.
    """
    conn = await connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await repository.export_snapshot(conn)
            facts = await snapshot_facts(conn)
            await _run(
                [
                    pg_tool("pg_dump", bin_dir),
                    "--format=custom",
                    "--compress=6",
                    f"--snapshot={snapshot}",
                    *[f"--exclude-table-data={table}" for table in EXCLUDED_DATA],
                    f"--file={target}",
                    f"--dbname={dsn}",
                ],
                "pg_dump",
            )
    finally:
        await conn.close()
    return facts


async def restore_database(dsn: str, source: Path, *, bin_dir: str = "", jobs: int = 1) -> None:
    """pg_restore a custom-format dump into an empty database, all or nothing."""
    argv = [pg_tool("pg_restore", bin_dir), "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={dsn}"]
    # One transaction makes a failed restore leave nothing behind; parallel jobs cannot share one.
    argv += ["--single-transaction"] if jobs <= 1 else [f"--jobs={jobs}"]
    await _run([*argv, str(source)], "pg_restore")


async def database_facts(dsn: str) -> SnapshotFacts:
    """Schema level, row counts and audit head of a database as it is now (excluded tables count 0)."""
    conn = await connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await snapshot_facts(conn)
    finally:
        await conn.close()


async def database_is_empty(dsn: str) -> bool:
    """True when the database has no table in the public schema (or does not exist)."""
    try:
        conn = await connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        return True
    try:
        return not await repository.public_tables(conn)
    finally:
        await conn.close()
