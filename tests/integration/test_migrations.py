"""Forward-only migrations: idempotent, and safe when replicas start together."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from backend.db import drop_database, ensure_database, migrate, migration_files

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def empty_database_url(database_url):
    base, _, _ = database_url.rpartition("/")
    name = f"prs_mig_{uuid.uuid4().hex[:8]}"
    url = f"{base}/{name}"
    yield url
    await drop_database(url)


async def test_missing_database_is_created_once(empty_database_url):
    assert await ensure_database(empty_database_url) is True
    assert await ensure_database(empty_database_url) is False


async def test_four_replicas_migrating_at_once_apply_each_migration_exactly_once(empty_database_url):
    await ensure_database(empty_database_url)
    results = await asyncio.gather(*(migrate(empty_database_url) for _ in range(4)))
    applied = [name for result in results for name in result]
    assert sorted(applied) == sorted(name for _, name, _ in migration_files())
    conn = await asyncpg.connect(empty_database_url)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    finally:
        await conn.close()
    assert versions == [v for v, _, _ in migration_files()]


async def test_running_migrations_again_applies_nothing(empty_database_url):
    await ensure_database(empty_database_url)
    await migrate(empty_database_url)
    assert await migrate(empty_database_url) == []
