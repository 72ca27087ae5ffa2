"""Suggestions under load, the short version of `prs bench suggestions-load`: a burst on one real LLM node and two
workers. The work admitted never exceeds the node's one slot, nothing is cancelled or retried, every suggestion
ends ready or skipped, and a critical incident reported last is served before the low-priority backlog."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from backend.container import build_container
from backend.jobs.worker import build_dispatcher
from backend.main import create_app
from backend.suggestions import repository
from backend.suggestions.dispatcher import SuggestionDispatcher
from tests.fixtures.app import wait_for

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
LOW_REPORTS = 6


def _report(n: int, priority: str) -> dict:
    return {
        "title": f"Bomba {n} de la línea 2 con vibración",
        "area": "production",
        "priority": priority,
        "description": f"La bomba {n} vibra y hace ruido al arrancar; alarma V-{100 + n}.",
    }


async def _statuses(pool) -> list[dict]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT incident_id, status, attempts, last_error, completed_at, priority_rank "
            "FROM suggestions ORDER BY incident_id"
        )
    return [dict(r) for r in rows]


async def _busy_slots(pool) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM llm_slots WHERE holder IS NOT NULL")


@pytest.fixture
async def burst_services(app_settings, encoder, llm_node_url, clean_state):
    # Generative mode: admission is about generations that hold a slot for seconds (an extractive suggestion
    # holds it for one short choice, too briefly for a queue to form).
    settings = app_settings.model_copy(
        update={
            "llm_nodes": llm_node_url,
            "suggestion_dispatch_poll_s": 0.1,
            "llm_slots_per_node": 0,
            "suggestion_mode": "generative",
        }
    )
    services = await build_container(settings, encoder=encoder)
    yield services
    await services.aclose()


@dataclass
class Burst:
    """The services under test, a technician's headers and a client of an app on those services."""

    services: Any
    headers: dict[str, str]
    client: httpx.AsyncClient

    async def report(self, n: int, priority: str) -> dict:
        """Report an incident; returns the created incident."""
        reply = await self.client.post("/api/v1/incidents", json=_report(n, priority), headers=self.headers)
        assert reply.status_code == 201, reply.text
        return reply.json()

    async def suggestion(self, incident_id: int) -> dict:
        """The incident's suggestion as the API shows it."""
        return (await self.client.get(f"/api/v1/incidents/{incident_id}/suggestion", headers=self.headers)).json()


@pytest.fixture
async def burst(burst_services, make_account):
    tech = await make_account("technician")
    app = create_app(burst_services.settings, container=burst_services, run_worker=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield Burst(burst_services, tech.headers, client)


async def test_a_burst_is_admitted_by_capacity_and_a_critical_report_goes_first(burst):
    services = burst.services
    stop = asyncio.Event()
    peak = 0

    async def sample_busy_slots() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, await _busy_slots(services.pool))
            await asyncio.sleep(0.05)

    for n in range(LOW_REPORTS):
        await burst.report(n, "low")
    workers = [build_dispatcher(services), build_dispatcher(services)]
    capacity = await workers[0].sync_slots()
    assert list(capacity.values()) == [1]  # the node advertises one parallel slot
    tasks = [asyncio.create_task(w.run(stop)) for w in workers] + [asyncio.create_task(sample_busy_slots())]
    try:

        async def one_generating():
            return any(s["status"] == "generating" for s in await _statuses(services.pool)) or None

        await wait_for(one_generating, timeout=60)
        waiting_lows = {s["incident_id"] for s in await _statuses(services.pool) if s["status"] == "pending"}
        critical = await burst.report(99, "critical")

        async def all_finished():
            rows = await _statuses(services.pool)
            return rows if all(s["status"] in ("ready", "skipped") for s in rows) else None

        finished = await wait_for(all_finished, timeout=300)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    by_id = {s["incident_id"]: s for s in finished}
    assert len(finished) == LOW_REPORTS + 1
    assert peak == 1, f"{peak} generations ran at once on a one-slot node"
    assert all(s["attempts"] == 1 and s["last_error"] is None for s in finished), finished  # none cancelled
    assert len(waiting_lows) >= LOW_REPORTS - 2
    done_at = by_id[critical["id"]]["completed_at"]
    assert all(done_at < by_id[i]["completed_at"] for i in waiting_lows), "the critical report waited behind lows"
    assert await _busy_slots(services.pool) == 0


async def test_a_stale_low_priority_backlog_is_skipped_and_can_be_asked_for_again(burst):
    services = burst.services
    low, high = await burst.report(1, "low"), await burst.report(2, "high")
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE suggestions SET queued_at = queued_at - $1::interval",
            timedelta(seconds=services.settings.suggestion_backlog_max_age_s + 60),
        )
    ready = (await burst.client.get("/health/ready")).json()
    assert ready["status"] == "degraded" and "backlog" in ready["reasons"]
    dispatcher = SuggestionDispatcher(
        settings=services.settings,
        pool=services.pool,
        clock=services.clock,
        llm=services.llm,
        suggestions=services.suggestions,
    )
    await dispatcher.housekeeping()
    skipped, kept = await burst.suggestion(low["id"]), await burst.suggestion(high["id"])
    assert skipped["status"] == "skipped" and "backlog" in skipped["last_error"]
    assert kept["status"] == "pending"
    again = await burst.client.post(
        f"/api/v1/incidents/{low['id']}/suggestion/regenerate", json={}, headers=burst.headers
    )
    assert again.status_code == 200 and again.json()["status"] == "pending"


async def test_a_watched_suggestion_goes_ahead_of_higher_priorities(burst):
    services = burst.services
    high, low = await burst.report(1, "high"), await burst.report(2, "low")
    await services.suggestions.mark_watched(low["id"])
    async with services.pool.acquire() as conn:
        async with conn.transaction():
            first = await repository.next_pending_for_update(conn, now=services.clock.now())
    assert first == low["id"] != high["id"]


async def test_a_node_failure_fails_over_to_an_up_node_at_once(
    app_settings, encoder, llm_node_url, llm_node_factory, make_account, clean_state
):
    dead = llm_node_factory.start()
    dead.kill()
    # A backoff this long would show: failing over to the other node must not wait for it.
    settings = app_settings.model_copy(
        update={
            "llm_nodes": f"{dead.url},{llm_node_url}",
            "suggestion_retry_base_s": 60.0,
            "suggestion_retry_max_s": 60.0,
            "suggestion_dispatch_poll_s": 0.1,
            "llm_slots_per_node": 1,
        }
    )
    services = await build_container(settings, encoder=encoder)
    stop = asyncio.Event()
    task = asyncio.create_task(build_dispatcher(services).run(stop))
    try:
        tech = await make_account("technician")
        app = create_app(settings, container=services, run_worker=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            incident = (await client.post("/api/v1/incidents", json=_report(1, "high"), headers=tech.headers)).json()

            async def ready():
                current = (
                    await client.get(f"/api/v1/incidents/{incident['id']}/suggestion", headers=tech.headers)
                ).json()
                return current if current["status"] == "ready" else None

            done = await wait_for(ready, timeout=25)  # a 60 s backoff would wait at least 30 s
    finally:
        stop.set()
        await asyncio.gather(task)
        await services.aclose()
        dead.stop()
    assert done["node"] == llm_node_url and done["attempts"] == 2
