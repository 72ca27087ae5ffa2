"""`prs bench jobs`: what pgqueuer gives for webhook-style delivery, where each endpoint must see its events in order.

pgqueuer serialises per entrypoint (`concurrency_limit=1`), not per key, and entrypoints are registered when a
worker starts, so endpoints created at run time cannot each get one. Per-endpoint order on pgqueuer therefore means
one serialised entrypoint for every endpoint. This bench measures that, and the unordered alternative (no limit),
on the same jobs: E endpoints, N events, each delivery taking `delivery_ms` (the webhook bench's commit-to-delivery
median on a loopback receiver is about 7 ms). The numbers go next to `prs bench webhooks`, whose delivery loop keeps
per-endpoint order while delivering different endpoints in parallel (docs/jobs.md).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

import asyncpg
from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager
from pgqueuer.types import QueueExecutionMode

from backend.config import Settings
from backend.db import drop_database, ensure_database, migrate, with_database

ENTRYPOINT = "deliver"


async def _run_mode(
    dsn: str, *, events: int, endpoints: int, delivery_s: float, ordered: bool, batch_size: int
) -> dict[str, Any]:
    """Enqueue the events, drain them with one pgqueuer worker, and report rate and order violations."""
    enqueue_conn = await asyncpg.connect(dsn)
    worker_conn = await asyncpg.connect(dsn)
    try:
        await enqueue_conn.execute("TRUNCATE pgqueuer")
        queries = Queries(AsyncpgDriver(enqueue_conn))
        payloads: list[bytes | None] = [f"{n % endpoints}:{n // endpoints}".encode() for n in range(events)]
        await queries.enqueue([ENTRYPOINT] * events, payloads, [0] * events)
        manager = QueueManager(Queries(AsyncpgDriver(worker_conn)))
        started: dict[int, list[int]] = defaultdict(list)
        in_flight: dict[int, int] = defaultdict(int)
        overlapping = 0

        @manager.entrypoint(ENTRYPOINT, concurrency_limit=1 if ordered else 0)
        async def deliver(job: Job) -> None:
            nonlocal overlapping
            endpoint, seq = (int(part) for part in (job.payload or b"0:0").decode().split(":"))
            if in_flight[endpoint]:
                overlapping += 1  # a second delivery to this endpoint while one is still in flight
            in_flight[endpoint] += 1
            started[endpoint].append(seq)
            await asyncio.sleep(delivery_s)
            in_flight[endpoint] -= 1

        began = time.perf_counter()
        await manager.run(dequeue_timeout=timedelta(seconds=1), batch_size=batch_size, mode=QueueExecutionMode.drain)
        elapsed = time.perf_counter() - began
        out_of_order = sum(1 for seqs in started.values() for a, b in zip(seqs, seqs[1:]) if b < a)
        return {
            "events": sum(len(s) for s in started.values()),
            "seconds": round(elapsed, 2),
            "per_s": round(events / elapsed, 1),
            "out_of_order": out_of_order,
            "concurrent_same_endpoint": overlapping,
        }
    finally:
        await worker_conn.close()
        await enqueue_conn.close()


async def run_jobs_bench(
    settings: Settings, *, events: int, endpoints: int, delivery_ms: float, batch_size: int
) -> dict[str, Any]:
    """Both modes, side by side in one run, in a throwaway database."""
    dsn = with_database(settings.database_url, f"prs_bench_jobs_{uuid.uuid4().hex[:8]}")
    await ensure_database(dsn)
    try:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            await Queries(AsyncpgDriver(conn)).install()  # pgqueuer's own schema, only in this scratch database
        finally:
            await conn.close()
        ordered = await _run_mode(
            dsn, events=events, endpoints=endpoints, delivery_s=delivery_ms / 1000, ordered=True, batch_size=batch_size
        )
        unordered = await _run_mode(
            dsn, events=events, endpoints=endpoints, delivery_s=delivery_ms / 1000, ordered=False, batch_size=batch_size
        )
    finally:
        await drop_database(dsn)
    return {
        "engine": "pgqueuer",
        "events": events,
        "endpoints": endpoints,
        "delivery_ms": delivery_ms,
        "ordered_per_s": ordered["per_s"],
        "unordered_per_s": unordered["per_s"],
        "unordered_out_of_order": unordered["out_of_order"],
        "unordered_concurrent_same_endpoint": unordered["concurrent_same_endpoint"],
        "ordered": ordered,
        "unordered": unordered,
    }
