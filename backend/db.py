"""asyncpg pool, the transaction helper and the forward-only migration runner."""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from importlib import resources
from typing import AsyncIterator, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

# Any fixed 64-bit number works; it only has to be the same in every replica.
MIGRATION_LOCK_KEY = 0x505253_4D4947  # "PRS" "MIG"

# What queries run on: a connection of its own (connect()) or one lent by the pool (a proxy that forwards to it).
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, connect_timeout_s: float = 60.0
) -> asyncpg.Pool:
    """Open the connection pool with JSON codecs installed; each connection attempt waits at most
    `connect_timeout_s` (per host of a multi-host DSN)."""
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, timeout=connect_timeout_s
    )


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection with the same codecs as the pool's."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    """Acquire a connection and run the block in one transaction."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            yield conn


def _database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/") or "postgres"


def _maintenance_dsn(dsn: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/postgres"))


async def ensure_database(dsn: str) -> bool:
    """Create the database named in the DSN if it does not exist; True when created."""
    name = _database_name(dsn)
    conn = await asyncpg.connect(_maintenance_dsn(dsn))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        # Identifiers cannot be bound; quote_ident makes the configured name safe.
        quoted = await conn.fetchval("SELECT quote_ident($1)", name)
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False
        log.info("database created", extra={"database": name})
        return True
    finally:
        await conn.close()


def with_database(dsn: str, name: str) -> str:
    """The same server and credentials, another database."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def drop_database(dsn: str) -> None:
    """Drop the database named in the DSN (if it exists), disconnecting its sessions: benchmarks and tests."""
    conn = await asyncpg.connect(_maintenance_dsn(dsn))
    try:
        quoted = await conn.fetchval("SELECT quote_ident($1)", _database_name(dsn))
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await conn.close()


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every bundled migration, in order."""
    found = []
    for entry in resources.files("backend.migrations").iterdir():
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            found.append((int(entry.name[:4]), entry.name, entry.read_text(encoding="utf-8")))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError("two migrations share a version number")
    return sorted(found)


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations under an advisory lock; return the names applied."""
    conn = await connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in migration_files():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
                applied.append(name)
                log.info("migration applied", extra={"migration": name})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()
    return applied
