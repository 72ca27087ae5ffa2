"""What keeps the metrics current: the background LLM health check, scrape-time rendering, and the small
/metrics server of processes that have no HTTP API (`prs worker`, `prs notify worker`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agent.llm import LLMCluster
from backend.observability.db_gauges import DatabaseGauges
from backend.observability.metrics import Metrics

log = logging.getLogger(__name__)
REQUEST_HEAD_TIMEOUT_S = 5.0
REQUEST_HEAD_MAX_BYTES = 8192


async def check_llm_nodes(llm: LLMCluster, metrics: Metrics) -> None:
    """Probe every LLM node once and set `prs_llm_node_up` for each."""
    for node in await llm.health():
        metrics.llm_node_up.labels(node.url).set(1 if node.up else 0)


async def watch_llm_nodes(llm: LLMCluster, metrics: Metrics, *, interval_s: float, stop: asyncio.Event) -> None:
    """Check the LLM nodes every `interval_s` until stopped; a failed probe never ends the loop."""
    while not stop.is_set():
        try:
            await check_llm_nodes(llm, metrics)
        except Exception:  # noqa: BLE001 - the watcher must outlive any probe failure
            log.warning("LLM node health check failed", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except asyncio.TimeoutError:
            pass


async def render_metrics(registry: CollectorRegistry, db_gauges: DatabaseGauges | None) -> bytes:
    """The Prometheus text of `registry`, after renewing the database gauges if their cache ran out."""
    if db_gauges is not None:
        await db_gauges.refresh()
    return generate_latest(registry)


async def start_metrics_server(
    render: Callable[[], Awaitable[bytes]], *, host: str, port: int
) -> asyncio.AbstractServer:
    """Listen on host:port and answer `GET /metrics` (any other path: 404); fails at once if it cannot bind."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=REQUEST_HEAD_TIMEOUT_S)
            parts = head.split(b"\r\n", 1)[0].split(b" ")
            if len(parts) == 3 and parts[0] in (b"GET", b"HEAD") and parts[1].split(b"?")[0] == b"/metrics":
                body = await render()
                status, content_type = b"200 OK", CONTENT_TYPE_LATEST.encode()
            else:
                body, status, content_type = b"not found\n", b"404 Not Found", b"text/plain"
            body_out = b"" if parts[0] == b"HEAD" else body
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: "
                + content_type
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body_out
            )
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that sends no complete request head gets nothing
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port, limit=REQUEST_HEAD_MAX_BYTES)
    log.info("metrics served", extra={"host": host, "port": port})
    return server
