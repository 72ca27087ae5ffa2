"""Health endpoints, Prometheus metrics by route template, JSON logs with the request id."""

from __future__ import annotations

import json
import logging

import httpx

from backend.container import build_container
from backend.context import request_id_var
from backend.main import create_app
from backend.observability.logging import JsonFormatter


async def test_liveness_needs_no_auth(api):
    reply = await api.get("/health/live")
    assert reply.status_code == 200 and reply.json() == {"status": "ok"}


async def test_readiness_is_ok_with_database_vector_store_and_a_node(api):
    reply = await api.get("/health/ready")
    body = reply.json()
    assert reply.status_code == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["database"]["up"] and body["checks"]["vector_store"]["up"]
    assert any(node["up"] for node in body["checks"]["llm"]["nodes"])


async def test_readiness_is_degraded_not_down_when_no_llm_node_answers(
    app_settings, encoder, llm_node_factory, clean_state
):
    settings = app_settings.model_copy(update={"llm_nodes": llm_node_factory.unused_url()})
    services = await build_container(settings, encoder=encoder)
    try:
        app = create_app(settings, container=services, run_worker=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            reply = await client.get("/health/ready")
        body = reply.json()
        assert reply.status_code == 200
        assert body["status"] == "degraded"
        assert body["checks"]["llm"]["up"] is False
        assert body["checks"]["llm"]["nodes"][0]["error"]
    finally:
        await services.aclose()


async def test_readiness_is_503_when_the_database_is_unreachable(app_settings, encoder, clean_state):
    settings = app_settings.model_copy(
        update={"database_url": "postgresql://postgres@127.0.0.1:1/none", "database_pool_min": 0}
    )
    services = await build_container(settings, encoder=encoder)
    try:
        app = create_app(settings, container=services, run_worker=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            reply = await client.get("/health/ready")
        assert reply.status_code == 503 and reply.json()["status"] == "down"
    finally:
        await services.aclose()


async def test_metrics_count_requests_by_route_template_not_raw_path(api, make_account):
    tech = await make_account("technician")
    for incident_id in (101, 102, 103):
        await api.get(f"/api/v1/incidents/{incident_id}", headers=tech.headers)
    text = (await api.get("/metrics")).text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("prs_http_requests_total")
        and 'route="/api/v1/incidents/{incident_id}"' in row
        and 'status="404"' in row
    )
    assert float(line.rsplit(" ", 1)[1]) >= 3
    assert "/api/v1/incidents/101" not in text
    assert "prs_http_request_duration_seconds_bucket" in text


def test_json_log_lines_carry_the_request_id_and_extra_fields():
    token = request_id_var.set("req-42")
    try:
        record = logging.LogRecord("prs.test", logging.INFO, __file__, 1, "incident %s created", (7,), None)
        record.incident_id = 7
        entry = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert entry["message"] == "incident 7 created"
    assert entry["request_id"] == "req-42" and entry["incident_id"] == 7 and entry["level"] == "INFO"


async def test_readiness_is_degraded_naming_the_encoder_when_the_index_was_built_by_another(api, services):
    async with services.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO vector_index_state (encoder) VALUES ('adapted:elsewhere') "
            "ON CONFLICT (singleton) DO UPDATE SET encoder = EXCLUDED.encoder"
        )
    try:
        body = (await api.get("/health/ready")).json()
        assert body["status"] == "degraded" and "encoder" in body["reasons"]
        assert body["checks"]["encoder"]["index_encoder"] == "adapted:elsewhere"
        assert body["checks"]["encoder"]["encoder"] == services.knowledge.encoder.identity
        assert services.knowledge.retriever.dense_paused
    finally:
        async with services.pool.acquire() as conn:
            await conn.execute("DELETE FROM vector_index_state")
    body = (await api.get("/health/ready")).json()
    assert body["checks"]["encoder"]["up"] is True and services.knowledge.retriever.dense_paused is None
