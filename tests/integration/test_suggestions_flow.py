"""Suggestions end to end: real worker, real LLM nodes, retry after an outage, grounded citations, SSE."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from backend.container import build_container
from backend.jobs.worker import run_worker
from backend.main import create_app
from tests.fixtures.app import wait_for

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

PAST = {
    "title": "Motor de cinta línea 3 sobrecalentado",
    "description": "Alarma E-4021 en el motor principal de la cinta de la línea 3 tras 20 minutos de marcha.",
    "area": "production",
    "priority": "high",
}
NEW = {
    "title": "Cinta línea 3 parada por temperatura",
    "description": "El motor vuelve a dar la alarma E-4021 y la cinta se detiene.",
    "area": "production",
    "priority": "high",
}
SOLUTION = "Se limpió el filtro del ventilador del motor y se sustituyó el rodamiento trasero."


async def resolved_past_incident(api, headers) -> int:
    past = (await api.post("/api/v1/incidents", json=PAST, headers=headers)).json()
    reply = await api.post(f"/api/v1/incidents/{past['id']}/resolve", json={"solution": SOLUTION}, headers=headers)
    assert reply.status_code == 200
    return past["id"]


async def suggestion(api, headers, incident_id):
    reply = await api.get(f"/api/v1/incidents/{incident_id}/suggestion", headers=headers)
    assert reply.status_code == 200
    return reply.json()


async def test_worker_writes_a_suggestion_citing_only_retrieved_incidents(api, make_account, worker):
    tech = await make_account("technician")
    past_id = await resolved_past_incident(api, tech.headers)
    incident = (await api.post("/api/v1/incidents", json=NEW, headers=tech.headers)).json()

    async def ready():
        current = await suggestion(api, tech.headers, incident["id"])
        return current if current["status"] == "ready" else None

    done = await wait_for(ready, timeout=120)
    assert done["text"].strip()
    assert past_id in done["retrieved"]
    assert set(done["citations"]) <= set(done["retrieved"])
    assert past_id in done["citations"], "the answer is primed with the best retrieved case"
    assert done["model"] and done["node"]
    reply = await api.post(
        f"/api/v1/incidents/{incident['id']}/suggestion/feedback", json={"decision": "accepted"}, headers=tech.headers
    )
    assert reply.json()["feedback"] == "accepted"
    reply = await api.post(
        f"/api/v1/incidents/{incident['id']}/suggestion/rating", json={"rating": 6}, headers=tech.headers
    )
    assert reply.status_code == 422 and reply.json()["field"] == "rating"
    reply = await api.post(
        f"/api/v1/incidents/{incident['id']}/suggestion/rating", json={"rating": 4}, headers=tech.headers
    )
    assert reply.json()["rating"] == 4


async def test_rating_a_suggestion_that_is_not_ready_is_409(api, make_account):
    reporter = await make_account("reporter")
    incident = (await api.post("/api/v1/incidents", json=NEW, headers=reporter.headers)).json()
    reply = await api.post(
        f"/api/v1/incidents/{incident['id']}/suggestion/rating", json={"rating": 5}, headers=reporter.headers
    )
    assert reply.status_code == 409


async def test_sse_stream_relays_tokens_and_ends_with_the_grounded_suggestion(api, make_account, worker):
    tech = await make_account("technician")
    await resolved_past_incident(api, tech.headers)
    incident = (await api.post("/api/v1/incidents", json=NEW, headers=tech.headers)).json()
    events: list[tuple[str, dict]] = []
    async with api.stream(
        "GET", f"/api/v1/incidents/{incident['id']}/suggestion/stream", headers=tech.headers, timeout=120
    ) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in reply.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
                if event == "done":
                    break
    kinds = [e for e, _ in events]
    assert kinds[0] == "status" and kinds[-1] == "done"
    streamed = ""
    for kind, data in events:
        if kind == "token":
            streamed += data["text"]
        elif kind == "reset":
            streamed = data["text"]
    final = events[-1][1]
    assert final["status"] == "ready"
    assert streamed == final["text"]


async def test_llm_outage_keeps_incident_and_similar_spends_no_attempts_and_completes_when_a_node_returns(
    app_settings, encoder, llm_node_factory, make_account, api
):
    node = llm_node_factory.start()
    node.kill()
    settings = app_settings.model_copy(update={"llm_nodes": node.url})
    outage_services = await build_container(settings, encoder=encoder)
    stop = asyncio.Event()
    worker_task = asyncio.create_task(run_worker(outage_services, stop))
    try:
        tech = await make_account("technician")
        past_id = await resolved_past_incident(api, tech.headers)
        app = create_app(settings, container=outage_services, run_worker=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            reply = await client.post("/api/v1/incidents", json=NEW, headers=tech.headers)
            assert reply.status_code == 201
            created = reply.json()
            assert [s["incident_id"] for s in created["similar"]] == [past_id]

            async def node_found_down():
                both = [await suggestion(client, tech.headers, i) for i in (past_id, created["id"])]
                return (
                    both if any(s["attempts"] for s in both) and all(s["status"] == "pending" for s in both) else None
                )

            tried = [s for s in await wait_for(node_found_down, timeout=60) if s["attempts"]]
            assert len(tried) == 1 and "no LLM node answered" in tried[0]["last_error"]
            assert tried[0]["next_attempt_at"] is not None
            # While the node stays down a health probe renews its cooldown each time it runs out: the
            # suggestions wait in line and no further attempt is spent on a node known to be down.
            await asyncio.sleep(settings.llm_node_cooldown_s * 4 + 2)
            later = [await suggestion(client, tech.headers, i) for i in (past_id, created["id"])]
            assert [s["status"] for s in later] == ["pending", "pending"]
            assert sum(s["attempts"] for s in later) == 1

            node.restart()

            async def ready():
                current = await suggestion(client, tech.headers, created["id"])
                return current if current["status"] == "ready" else None

            done = await wait_for(ready, timeout=120)
            assert done["text"] and set(done["citations"]) <= set(done["retrieved"])
    finally:
        stop.set()
        await asyncio.wait_for(worker_task, timeout=30)
        await outage_services.aclose()
        node.stop()
