"""Liveness, readiness (database, vector store, LLM nodes) and the /metrics endpoint."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from backend.deps import get_container
from backend.observability.monitoring import render_metrics

router = APIRouter(tags=["operations"])


async def _check_database(services: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        async with services.pool.acquire(timeout=3) as conn:
            await conn.fetchval("SELECT 1")
        return {"up": True, "latency_ms": round((time.perf_counter() - start) * 1000, 1)}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"up": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


async def _check_vector_store(services: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        count = await asyncio.wait_for(asyncio.to_thread(services.vector_store.count), timeout=3)
        return {"up": True, "entries": count, "latency_ms": round((time.perf_counter() - start) * 1000, 1)}
    except Exception as exc:  # noqa: BLE001
        return {"up": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


async def _check_encoder(services: Any) -> dict[str, Any]:
    try:
        state = await asyncio.wait_for(services.knowledge.check_encoder(), timeout=3)
        return {"up": state["matches"], "encoder": state["encoder"], "index_encoder": state["index_encoder"]}
    except Exception as exc:  # noqa: BLE001
        return {"up": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


async def _check_llm(services: Any) -> dict[str, Any]:
    # prs_llm_node_up is kept by the background health check (backend/observability/monitoring.py), not here.
    nodes = await services.llm.health()
    return {
        "up": any(n.up for n in nodes),
        "nodes": [
            {"url": n.url, "up": n.up, "version": n.version, "latency_ms": n.latency_ms, "error": n.error}
            for n in nodes
        ],
    }


async def _check_suggestion_backlog(services: Any) -> dict[str, Any]:
    limit = services.settings.suggestion_backlog_degraded_s
    try:
        age = await asyncio.wait_for(services.suggestions.backlog_age_s(), timeout=3)
    except Exception as exc:  # noqa: BLE001 - the database check reports the outage
        return {"up": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"up": age <= limit, "oldest_wait_s": round(age, 1), "limit_s": limit}


@router.get("/health/live", summary="Liveness", description="200 while the process serves requests. No auth.")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Readiness",
    description="No auth. 200 `ok` when database, vector store and at least one LLM node answer and no "
    "suggestion has waited longer than PRS_SUGGESTION_BACKLOG_DEGRADED_S and this replica's encoder "
    "is the one that built the vector index; 200 `degraded` otherwise while the database answers "
    "(incidents are still accepted, retrieval falls back to lexical, suggestions wait), with "
    "`reasons` such as `backlog` or `encoder` (PRS_EMBEDDING_MODEL differs from the index's: "
    "see `prs knowledge adapt`); 503 `down` when the "
    "database does not answer; 503 `draining` after SIGTERM while the replica finishes its "
    "requests.",
)
async def ready(request: Request) -> JSONResponse:
    if getattr(request.app.state, "draining", False):
        # SIGTERM received: leave the rotation while in-flight and new requests are still served.
        return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
    services = get_container(request)
    database, vectors, encoder, llm, backlog = await asyncio.gather(
        _check_database(services),
        _check_vector_store(services),
        _check_encoder(services),
        _check_llm(services),
        _check_suggestion_backlog(services),
    )
    checks = {"database": database, "vector_store": vectors, "encoder": encoder, "llm": llm, "backlog": backlog}
    reasons = [name for name in ("vector_store", "encoder", "llm", "backlog") if not checks[name]["up"]]
    if not database["up"]:
        status, code = "down", 503
    elif reasons:
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    body: dict[str, Any] = {"status": status, "checks": checks}
    if status == "degraded":
        body["reasons"] = reasons
    return JSONResponse(body, status_code=code)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Prometheus text format. No auth (scrape it "
    "from the internal network only; nginx does not expose it). Database gauges are read at most once per "
    "PRS_METRICS_CACHE_S; when the database does not answer within PRS_METRICS_DB_TIMEOUT_S the last values "
    "are served and prs_metrics_database_up is 0.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    services = get_container(request)
    body = await render_metrics(services.metrics.registry, services.db_gauges)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
