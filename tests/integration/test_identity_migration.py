"""Migration 0008 on a database that already has accounts: the auditor flag becomes the role (audited), existing
passwords start their lifecycle, and API keys issued before keep every area."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from backend.audit.service import verify_chain
from backend.db import create_pool, drop_database, ensure_database, migration_files

pytestmark = pytest.mark.asyncio
VERSION = 8


@pytest.fixture
async def database_before_0008(database_url):
    base, _, _ = database_url.rpartition("/")
    url = f"{base}/prs_mig8_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    conn = await asyncpg.connect(url)
    try:
        for version, _, sql in migration_files():
            if version < VERSION:
                async with conn.transaction():
                    await conn.execute(sql)
    finally:
        await conn.close()
    yield url
    await drop_database(url)


async def test_auditor_flags_become_roles_and_every_change_is_audited(database_before_0008):
    conn = await asyncpg.connect(database_before_0008)
    try:
        for name, role, flag, password_hash in (
            ("carla", "reporter", True, "$argon2id$x"),
            ("tomas", "technician", True, "$argon2id$y"),
            ("root", "admin", True, "$argon2id$z"),
            ("pepe", "reporter", False, "$argon2id$w"),
        ):
            await conn.execute(
                "INSERT INTO users (username, role, is_auditor, password_hash) VALUES ($1, $2, $3, $4)",
                name,
                role,
                flag,
                password_hash,
            )
        await conn.execute(
            """INSERT INTO api_keys (name, owner_email, permissions, rate_limit_per_minute, created_at, created_by)
               VALUES ('old key', 'it@example.com', '{read}', 60, now(), 'admin')"""
        )
        sql = next(sql for version, _, sql in migration_files() if version == VERSION)
        async with conn.transaction():
            await conn.execute(sql)
        roles = dict(await conn.fetch("SELECT username, role FROM users"))
        assert roles == {"carla": "auditor", "tomas": "technician", "root": "admin", "pepe": "reporter"}
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = 'users' AND column_name = 'is_auditor'"
            )
            == 0
        )
        audited = await conn.fetch(
            "SELECT resource_id, before, after, actor_name FROM audit_log "
            "WHERE action = 'user.role_changed' ORDER BY resource_id"
        )
        assert len(audited) == 2 and {r["actor_name"] for r in audited} == {"migration 0008"}
        assert await conn.fetchval("SELECT count(*) FROM password_history") == 4
        assert await conn.fetchval("SELECT count(*) FROM users WHERE password_changed_at IS NULL") == 0
        assert await conn.fetchval("SELECT allowed_areas FROM api_keys WHERE name = 'old key'") == []
    finally:
        await conn.close()
    pool = await create_pool(database_before_0008, min_size=1, max_size=2)
    try:
        assert (await verify_chain(pool))["ok"] is True
    finally:
        await pool.close()
