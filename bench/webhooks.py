"""`prs bench webhooks`: deliveries per second and commit-to-delivery delay to a healthy loopback receiver.

Runs in a throwaway database (created, migrated and dropped), with real delivery workers (LISTEN/NOTIFY and
polling, signing, the outbound guard) and a real HTTP receiver on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import h11

from backend.clock import SystemClock
from backend.config import Settings
from backend.context import system_context
from backend.db import create_pool, drop_database, ensure_database, migrate, transaction
from backend.notify.outbox import write_event
from backend.notify.schemas import EndpointCreate
from backend.notify.wiring import build_notify


class BenchReceiver:
    """A minimal keep-alive HTTP/1.1 server that answers 204 and notes when each (endpoint, event) arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, str], float] = {}
        self.changed = asyncio.Event()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        target, message_id = "", ""
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    target = event.target.decode()
                    message_id = dict(event.headers).get(b"webhook-id", b"").decode()
                elif isinstance(event, h11.EndOfMessage):
                    self.arrivals[(target, message_id)] = time.time()
                    self.changed.set()
                    writer.write(conn.send(h11.Response(status_code=204, headers=[("content-length", "0")])))
                    writer.write(conn.send(h11.EndOfMessage()))
                    await writer.drain()
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return
        except (ConnectionError, h11.ProtocolError):
            return
        finally:
            writer.close()

    async def wait_for_count(self, count: int, timeout: float) -> None:
        """Wait until `count` deliveries arrived."""
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"only {len(self.arrivals)} of {count} deliveries arrived in {timeout}s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=min(remaining, 1.0))
            except asyncio.TimeoutError:
                pass


def _bench_dsn(dsn: str) -> str:
    parts = urlsplit(dsn)
    name = (parts.path.lstrip("/") or "prs") + f"_bench_webhooks_{os.getpid()}"
    return urlunsplit(parts._replace(path="/" + name))


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the sorted values lie (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


async def _commit_event(pool: asyncpg.Pool, clock: SystemClock, n: int) -> tuple[str, float]:
    now = clock.now()
    async with transaction(pool) as conn:
        written = await write_event(
            conn,
            event_type="incident.created",
            occurred_at=now,
            now=now,
            data={"incident": {"id": n, "title": f"bench {n}"}},
            area="production",
            priority="high",
        )
    return written.event_id, time.time()


async def run_webhook_bench(
    settings: Settings, *, events: int, endpoints: int, workers: int, latency_events: int, rate: float
) -> dict[str, Any]:
    """Throughput phase (a backlog drained by the workers) then latency phase (events committed one by one)."""
    dsn = _bench_dsn(settings.database_url)
    await ensure_database(dsn)
    data_dir = Path(tempfile.mkdtemp(prefix="prs-bench-webhooks-"))
    bench_settings = settings.model_copy(
        update={"database_url": dsn, "notify_allowed_hosts": "127.0.0.1", "data_dir": data_dir}
    )
    receiver = BenchReceiver()
    stop = asyncio.Event()
    pool = None
    try:
        await migrate(dsn)
        pool = await create_pool(dsn, min_size=2, max_size=workers * (settings.notify_batch_size + 2) + 4)
        clock = SystemClock()
        await receiver.start()
        admin = build_notify(bench_settings, pool=pool, clock=clock, registry=None)
        urls = [f"http://127.0.0.1:{receiver.port}/endpoint/{n}" for n in range(endpoints)]
        for url in urls:
            await admin.create_endpoint(
                system_context("bench"), EndpointCreate(kind="webhook", target=url, event_types=["incident.created"])
            )
        for n in range(events):
            await _commit_event(pool, clock, n)
        runners = [
            build_notify(bench_settings, pool=pool, clock=clock, registry=None, worker_name=f"bench-{n}")
            for n in range(workers)
        ]
        started = time.time()
        tasks = [asyncio.create_task(r.delivery.run(stop)) for r in runners]
        await receiver.wait_for_count(events * endpoints, timeout=600)
        drained = max(receiver.arrivals.values()) - started
        throughput = events * endpoints / drained

        receiver.arrivals.clear()
        committed: list[tuple[str, float]] = []
        for n in range(latency_events):
            committed.append(await _commit_event(pool, clock, events + n))
            await asyncio.sleep(1.0 / rate)
        await receiver.wait_for_count(latency_events * endpoints, timeout=600)
        delays_ms = [
            (receiver.arrivals[(urlsplit(url).path, event_id)] - commit_at) * 1000
            for event_id, commit_at in committed
            for url in urls
        ]
        stop.set()
        await asyncio.gather(*tasks)
        await admin.delivery.http.aclose()
    finally:
        stop.set()
        await receiver.stop()
        if pool is not None:
            await pool.close()
        await drop_database(dsn)
        shutil.rmtree(data_dir, ignore_errors=True)
    result: dict[str, Any] = {
        "bench": "webhooks",
        "at": datetime.now(timezone.utc).isoformat(),
        "endpoints": endpoints,
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "throughput": {
            "deliveries": events * endpoints,
            "seconds": round(drained, 3),
            "deliveries_per_s": round(throughput, 1),
        },
        "latency": {
            "deliveries": len(delays_ms),
            "rate_events_per_s": rate,
            "commit_to_delivery_ms_p50": round(percentile(delays_ms, 0.50), 2),
            "commit_to_delivery_ms_p95": round(percentile(delays_ms, 0.95), 2),
            "commit_to_delivery_ms_max": round(max(delays_ms), 2),
            "commit_to_delivery_ms_mean": round(statistics.fmean(delays_ms), 2),
        },
    }
    print(
        f"throughput: {result['throughput']['deliveries']} deliveries to {endpoints} endpoints by {workers} "
        f"workers in {drained:.2f}s = {throughput:.1f} deliveries/s"
    )
    print(
        f"latency at {rate:g} events/s: commit->delivery p50 {result['latency']['commit_to_delivery_ms_p50']} ms, "
        f"p95 {result['latency']['commit_to_delivery_ms_p95']} ms, max {result['latency']['commit_to_delivery_ms_max']} ms"
    )
    return result
