"""The metrics operators page on: database gauges at scrape time (cached, zeros on a fresh install, stale but
answering when Postgres is down), the LLM node gauge from a background check, refusal counters, worker and LLM
node metrics endpoints."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from backend.container import build_container
from backend.context import system_context
from backend.db import create_pool
from backend.incidents.schemas import IncidentCreate
from backend.main import create_app
from backend.observability.db_gauges import DatabaseGauges
from backend.observability.metrics import Metrics
from backend.observability.monitoring import render_metrics, watch_llm_nodes
from tests.fixtures.app import wait_for
from tests.fixtures.processes import free_port, wait_until_serving
from tests.fixtures.security import app_with, client_for, settings_with

REPO = Path(__file__).resolve().parents[2]
ALWAYS_EXPORTED = (
    "prs_incidents_open",
    "prs_sla_clocks_breached",
    "prs_sla_clocks_at_risk",
    "prs_sla_breaches_total",
    "prs_jobs_queued_all",
    "prs_notify_backlog_all",
    "prs_notify_dead_letters_all",
    "prs_knowledge_entries_all",
    "prs_escalations_all_total",
    "prs_incidents_resolved_total",
    "prs_metrics_database_up",
    "prs_db_pool_in_use",
    "process_resident_memory_bytes",
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(page: dict, name: str, **labels: str) -> float:
    return page[(name, tuple(sorted(labels.items())))]


async def scrape(client: httpx.AsyncClient) -> dict:
    reply = await client.get("/metrics")
    assert reply.status_code == 200
    return samples(reply.text)


async def report(services, title: str, *, priority: str = "high", area: str = "maintenance") -> int:
    created = await services.incidents.create(
        system_context("test"),
        IncidentCreate(
            title=title, description="Hydraulic press leaks oil at the main cylinder.", area=area, priority=priority
        ),
    )
    return int(created["id"])


async def test_a_fresh_installation_exports_every_total_at_zero_and_each_configured_node(services, clean_state):
    services.db_gauges.expire()  # read now, not an earlier test's cached values
    async with client_for(app_with(services, services.settings)) as client:
        page = await scrape(client)
    for name in ALWAYS_EXPORTED:
        assert (name, ()) in page, name
    assert value(page, "prs_incidents_open") == 0 and value(page, "prs_jobs_queued_all") == 0
    assert value(page, "prs_sla_breaches_total") == 0
    assert value(page, "prs_metrics_database_up") == 1
    assert value(page, "prs_notify_backlog", kind="webhook") == 0
    assert value(page, "prs_jobs_queued", queue="suggestions") == 0
    assert value(page, "prs_knowledge_entries", kind="document") == 0
    for node in services.settings.llm_node_urls:
        assert ("prs_llm_node_up", (("node", node),)) in page
    assert value(page, "prs_suggestions_total", outcome="failed") == 0


async def test_open_incidents_and_queued_jobs_follow_the_database_after_the_cache_expires(services, clean_state):
    gauges = services.db_gauges
    gauges.cache_s = 60.0
    gauges.expire()  # the session's gauges may hold a read of an earlier test
    try:
        async with client_for(app_with(services, services.settings)) as client:
            before = await scrape(client)
            await report(services, "Press 2 oil leak", priority="critical")
            await report(services, "Press 3 oil leak", priority="high")
            cached = await scrape(client)
            gauges.cache_s = 0.0  # the cache has run out
            after = await scrape(client)
    finally:
        gauges.cache_s = services.settings.metrics_cache_s
    assert value(before, "prs_incidents_open") == 0
    assert value(cached, "prs_incidents_open") == 0  # served from the cache: no database query
    assert value(after, "prs_incidents_open") == 2
    assert value(after, "prs_incidents_open_detail", status="open", priority="critical", area="maintenance") == 1
    assert value(after, "prs_jobs_queued", queue="suggestions") == 2
    assert value(after, "prs_jobs_queued_all") == 2
    assert value(after, "prs_jobs_oldest_age_seconds", queue="suggestions") >= 0


async def test_scrape_while_postgres_is_down_answers_at_once_with_stale_gauges(app_settings, encoder, clean_state):
    settings = app_settings.model_copy(
        update={
            "database_url": "postgresql://postgres@127.0.0.1:1/none",
            "database_pool_min": 0,
            "metrics_db_timeout_s": 1.0,
        }
    )
    down = await build_container(settings, encoder=encoder)
    try:
        async with client_for(create_app(settings, container=down, run_worker=False)) as client:
            started = time.perf_counter()
            page = await scrape(client)
            elapsed = time.perf_counter() - started
    finally:
        await down.aclose()
    assert elapsed < 5
    assert value(page, "prs_metrics_database_up") == 0
    assert value(page, "prs_metrics_database_age_seconds") == float("inf")
    assert value(page, "prs_incidents_open") == 0


async def test_gauges_go_stale_not_missing_when_postgres_stops_answering(services, clean_state):
    await report(services, "Compressor 4 pressure drop")
    pool = await create_pool(services.settings.database_url, min_size=1, max_size=2)
    gauges = DatabaseGauges(pool=pool, clock=services.clock, cache_s=0.0, timeout_s=1.0)
    registry = CollectorRegistry()
    registry.register(gauges)
    fresh = samples((await render_metrics(registry, gauges)).decode())
    await pool.close()  # the database is gone for this process
    started = time.perf_counter()
    stale = samples((await render_metrics(registry, gauges)).decode())
    assert time.perf_counter() - started < 3
    assert value(fresh, "prs_metrics_database_up") == 1 and value(fresh, "prs_incidents_open") == 1
    assert value(stale, "prs_metrics_database_up") == 0
    assert value(stale, "prs_incidents_open") == 1  # the last values, not gaps
    assert value(stale, "prs_metrics_database_age_seconds") > 0


async def test_a_database_that_accepts_but_never_answers_does_not_hang_the_scrape(services):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accept the connection, say nothing
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = await create_pool(f"postgresql://postgres@127.0.0.1:{port}/prs", min_size=0, max_size=1)
    gauges = DatabaseGauges(pool=pool, clock=services.clock, cache_s=0.0, timeout_s=1.0)
    registry = CollectorRegistry()
    registry.register(gauges)
    try:
        started = time.perf_counter()
        page = samples((await render_metrics(registry, gauges)).decode())
        elapsed = time.perf_counter() - started
    finally:
        server.close()
        pool.terminate()
    assert elapsed < 3
    assert value(page, "prs_metrics_database_up") == 0


async def test_llm_node_gauge_is_kept_by_the_background_check(
    app_settings, encoder, llm_node_url, llm_node_factory, clean_state
):
    dead = llm_node_factory.unused_url()
    settings = app_settings.model_copy(update={"llm_nodes": f"{llm_node_url},{dead}"})
    watched = await build_container(settings, encoder=encoder, metrics=Metrics())
    stop = asyncio.Event()
    try:
        assert watched.metrics.llm_node_up.labels(llm_node_url)._value.get() == 0  # declared, down until checked
        watcher = asyncio.create_task(watch_llm_nodes(watched.llm, watched.metrics, interval_s=0.2, stop=stop))
        async with client_for(create_app(settings, container=watched, run_worker=False)) as client:
            for _ in range(100):
                page = await scrape(client)
                if value(page, "prs_llm_node_up", node=llm_node_url) == 1:
                    break
                await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(watcher, timeout=10)
    finally:
        stop.set()
        await watched.aclose()
    assert value(page, "prs_llm_node_up", node=llm_node_url) == 1
    assert value(page, "prs_llm_node_up", node=dead) == 0


async def test_a_generated_suggestion_records_its_duration_first_token_and_speed(services, clean_state, worker):
    def count(name: str, **labels: str) -> float:
        return services.metrics.registry.get_sample_value(name, labels) or 0.0

    before = (
        count("prs_suggestion_generation_seconds_count", outcome="ready"),
        count("prs_suggestion_first_token_seconds_count"),
        count("prs_suggestion_tokens_per_second_count"),
    )
    incident_id = await report(services, "Hydraulic press 1 loses pressure")

    async def ready() -> bool:
        return (await services.suggestions.get(incident_id))["status"] == "ready"

    await wait_for(ready, timeout=120)
    after = (
        count("prs_suggestion_generation_seconds_count", outcome="ready"),
        count("prs_suggestion_first_token_seconds_count"),
        count("prs_suggestion_tokens_per_second_count"),
    )
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1]
    assert count("prs_suggestion_tokens_per_second_sum") > 0
    assert count("prs_suggestions_total", outcome="ready") >= 1


async def test_failed_logins_and_api_key_refusals_are_counted_by_reason(api, services, make_api_key):
    before = await scrape(api)
    await api.post("/api/v1/auth/token", data={"username": "nobody", "password": "Wrong-password-1"})
    await api.get("/api/v1/external/incidents/1", headers={"X-API-Key": "prs_live_not-a-key"})
    writer = await make_api_key(permissions=["write"])
    await api.get("/api/v1/external/incidents/1", headers=writer.headers)  # lacks `read`
    after = await scrape(api)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - before.get((name, tuple(sorted(labels.items()))), 0.0)

    assert grew("prs_login_failures_total") == 1
    assert grew("prs_api_key_denials_total", reason="api_key_unknown") == 1
    assert grew("prs_api_key_denials_total", reason="api_key_missing_permission") == 1


async def test_requests_refused_by_a_rate_limit_are_counted_by_limit(services, clean_state):
    settings = settings_with(services, login_rate_limit="2/minute")
    async with client_for(app_with(services, settings), client_ip="10.9.9.9") as client:
        before = (await scrape(client)).get(("prs_rate_limited_total", (("reason", "login_rate_limited"),)), 0.0)
        codes = [
            (await client.post("/api/v1/auth/token", data={"username": "x", "password": "Wrong-pass-1"})).status_code
            for _ in range(3)
        ]
        after = await scrape(client)
    assert codes == [401, 401, 429]
    assert value(after, "prs_rate_limited_total", reason="login_rate_limited") - before == 1


def scrape_worker(app_settings, tmp_path, command: list[str], **extra_env: str) -> dict:
    """Start a worker command with PRS_METRICS_PORT, scrape it once, stop it; also checks other paths get 404."""
    port = free_port()
    env = {
        **os.environ,
        "PRS_DATABASE_URL": app_settings.database_url,
        "PRS_DATA_DIR": str(tmp_path / "data"),
        "PRS_METRICS_PORT": str(port),
        "PRS_METRICS_HOST": "127.0.0.1",
        "PRS_LOG_JSON": "false",
        **extra_env,
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", *command], cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        assert wait_until_serving(f"http://127.0.0.1:{port}/metrics", process, timeout=120), log.read_text()[-2000:]
        page = samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=30)
    return page


def test_notify_worker_serves_its_metrics_on_the_metrics_port(app_settings, tmp_path):
    page = scrape_worker(app_settings, tmp_path, ["notify", "worker"])
    assert ("process_resident_memory_bytes", ()) in page
    assert ("prs_db_pool_max", ()) in page
    assert ("prs_notify_endpoints_disabled_total", ()) in page


def test_job_worker_serves_queue_gauges_and_node_state_on_the_metrics_port(app_settings, llm_node_url, tmp_path):
    page = scrape_worker(app_settings, tmp_path, ["worker"], PRS_LLM_NODES=llm_node_url)
    assert value(page, "prs_metrics_database_up") == 1
    assert ("prs_jobs_queued_all", ()) in page and ("prs_incidents_open", ()) in page
    assert ("prs_llm_node_up", (("node", llm_node_url),)) in page
    assert value(page, "prs_suggestions_total", outcome="ready") >= 0


async def test_llm_node_exports_requests_tokens_and_queue(llm_node_url):
    async with httpx.AsyncClient(base_url=llm_node_url, timeout=120) as node:
        before = samples((await node.get("/metrics")).text)
        reply = await node.post(
            "/api/generate",
            json={
                "model": "gemma3-270m",
                "prompt": "The pump",
                "stream": False,
                "options": {"num_predict": 8, "temperature": 0},
            },
        )
        assert reply.status_code == 200
        after = samples((await node.get("/metrics")).text)
    tokens = value(after, "prs_llm_node_generated_tokens_total") - before.get(
        ("prs_llm_node_generated_tokens_total", ()), 0.0
    )
    assert tokens == reply.json()["eval_count"] > 0
    assert value(after, "prs_llm_node_requests_total", path="/api/generate", status="200") >= 1
    assert value(after, "prs_llm_node_tokens_per_second_count") >= 1
    assert value(after, "prs_llm_node_generations_in_progress") == 0
