"""`prs bench access`: what the access controls cost. Audit rows committed per second by concurrent writers
(each chained under the commit-time lock), chain verification speed, and the database side of checking an
API key. Runs in a throwaway database (created, migrated and dropped) on the configured server."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import asyncpg

from backend.apikeys.schemas import ApiKeyCreate
from backend.apikeys.service import ApiKeyService
from backend.audit import service as audit
from backend.clock import SystemClock
from backend.config import Settings
from backend.context import RequestContext, system_context
from backend.db import create_pool, drop_database, ensure_database, migrate, with_database


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _audit_writes(pool: asyncpg.Pool, *, writers: int, rows_per_writer: int) -> dict[str, Any]:
    latencies: list[float] = []

    async def writer(n: int) -> None:
        ctx = system_context(f"bench-{n}")
        for i in range(rows_per_writer):
            started = time.perf_counter()
            async with pool.acquire() as conn:
                async with conn.transaction():
                    await audit.record(
                        conn,
                        ctx,
                        at=SystemClock().now(),
                        action="bench.write",
                        resource_type="bench",
                        resource_id=i,
                        after={"writer": n, "i": i},
                    )
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(writers)))
    elapsed = time.perf_counter() - started
    return {
        "audit_rows": len(latencies),
        "audit_writers": writers,
        "audit_rows_per_s": round(len(latencies) / elapsed, 1),
        "audit_commit_p50_ms": round(_percentile(latencies, 0.5) * 1000, 2),
        "audit_commit_p95_ms": round(_percentile(latencies, 0.95) * 1000, 2),
    }


async def _verify(pool: asyncpg.Pool) -> dict[str, Any]:
    started = time.perf_counter()
    report = await audit.verify_chain(pool)
    elapsed = time.perf_counter() - started
    return {
        "verify_ok": report["ok"],
        "verify_rows": report["rows_checked"],
        "verify_rows_per_s": round(report["rows_checked"] / elapsed, 1),
    }


async def _key_checks(settings: Settings, pool: asyncpg.Pool, *, checks: int) -> dict[str, Any]:
    keys = ApiKeyService(settings=settings, pool=pool, clock=SystemClock())
    created = await keys.create(
        system_context("bench"),
        ApiKeyCreate(
            name="bench", owner_email="bench@example.com", permissions=["read"], allowed_networks=["127.0.0.0/8"]
        ),
    )
    ctx = RequestContext(principal=system_context("anonymous").principal, client_ip="127.0.0.1")
    latencies = []
    for _ in range(checks):
        started = time.perf_counter()
        identity = await keys.authenticate(ctx, created["key"], origin=None)
        await keys.record_use(identity, "127.0.0.1")
        latencies.append(time.perf_counter() - started)
    return {
        "api_key_checks": checks,
        "api_key_check_p50_ms": round(statistics.median(latencies) * 1000, 3),
        "api_key_check_p95_ms": round(_percentile(latencies, 0.95) * 1000, 3),
    }


async def run_access_bench(settings: Settings, *, writers: int, rows_per_writer: int, checks: int) -> dict[str, Any]:
    """Run the three measurements in a scratch database and return the figures."""
    url = with_database(settings.database_url, f"prs_bench_access_{uuid.uuid4().hex[:8]}")
    await ensure_database(url)
    try:
        await migrate(url)
        pool = await create_pool(url, min_size=1, max_size=max(2, writers + 1))
        try:
            figures = await _audit_writes(pool, writers=writers, rows_per_writer=rows_per_writer)
            figures |= await _verify(pool)
            figures |= await _key_checks(settings, pool, checks=checks)
        finally:
            await pool.close()
    finally:
        await drop_database(url)
    return figures
