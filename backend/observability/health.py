"""Liveness, readiness (database, vector store, LLM nodes) and the /metrics endpoint."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backend.auth.dependencies import get_services

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


async def _check_llm(services: Any) -> dict[str, Any]:
    nodes = await services.llm.health()
    for node in nodes:
        services.metrics.llm_node_up.labels(node.url).set(1 if node.up else 0)
    return {
        "up": any(n.up for n in nodes),
        "nodes": [{"url": n.url, "up": n.up, "version": n.version, "latency_ms": n.latency_ms, "error": n.error}
                  for n in nodes],
    }


@router.get("/health/live", summary="Liveness", description="200 while the process serves requests. No auth.")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness",
            description="No auth. 200 `ok` when database, vector store and at least one LLM node answer; 200 "
                        "`degraded` when only the database answers (incidents are still accepted, retrieval falls "
                        "back to lexical, suggestions wait); 503 `down` when the database does not answer.")
async def ready(request: Request) -> JSONResponse:
    services = get_services(request)
    database, vectors, llm = await asyncio.gather(
        _check_database(services), _check_vector_store(services), _check_llm(services)
    )
    if not database["up"]:
        status, code = "down", 503
    elif vectors["up"] and llm["up"]:
        status, code = "ok", 200
    else:
        status, code = "degraded", 200
    return JSONResponse({"status": status, "checks": {"database": database, "vector_store": vectors, "llm": llm}},
                        status_code=code)


@router.get("/metrics", summary="Prometheus metrics", description="Prometheus text format. No auth (scrape it "
            "from the internal network only; nginx does not expose it).")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(get_services(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
