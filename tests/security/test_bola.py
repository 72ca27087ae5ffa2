"""Broken object-level authorization: a reporter probing incidents somebody else reported.

Policy (docs/access.md): people with the reporter role see and act only on incidents they reported; reading
anyone else's answers 404 (existence is not revealed), acting on it 403; technicians and above see every area.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio

NEW = {
    "title": "Robot de soldadura R7 se detiene",
    "description": "El robot R7 de la línea 2 se para con el error SRVO-050 al iniciar el ciclo.",
    "area": "quality",
    "priority": "high",
}

# (method, path template, body, status for a stranger reporter)
PROBES = [
    ("GET", "/api/v1/incidents/{id}", None, 404),
    ("GET", "/api/v1/incidents/{id}/comments", None, 404),
    ("GET", "/api/v1/incidents/{id}/similar", None, 404),
    ("GET", "/api/v1/incidents/{id}/suggestion", None, 404),
    ("GET", "/api/v1/incidents/{id}/suggestion/stream", None, 404),
    ("GET", "/api/v1/incidents/{id}/history", None, 403),
    ("POST", "/api/v1/incidents/{id}/comments", {"body": "cerrad esto"}, 403),
    ("POST", "/api/v1/incidents/{id}/suggestion/rating", {"rating": 1}, 403),
    ("POST", "/api/v1/incidents/{id}/suggestion/feedback", {"decision": "rejected"}, 403),
    ("POST", "/api/v1/incidents/{id}/suggestion/regenerate", {}, 403),
    ("PATCH", "/api/v1/incidents/{id}", {"priority": "low"}, 403),
    ("POST", "/api/v1/incidents/{id}/status", {"status": "closed"}, 403),
    ("POST", "/api/v1/incidents/{id}/resolve", {"solution": "nada"}, 403),
    ("POST", "/api/v1/incidents/{id}/reopen", {"reason": "x"}, 403),
    ("POST", "/api/v1/incidents/{id}/assign", {"assignee_id": None}, 403),
]


async def snapshot(services, incident_id):
    async with services.pool.acquire() as conn:
        incident = dict(await conn.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id))
        suggestion = dict(await conn.fetchrow("SELECT * FROM suggestions WHERE incident_id = $1", incident_id))
        comments = await conn.fetchval("SELECT count(*) FROM incident_comments WHERE incident_id = $1", incident_id)
    return incident, suggestion, comments


@pytest.fixture
async def victim_incident(api, make_account, services):
    """An incident of one reporter, with a ready suggestion, and a second reporter who did not report it."""
    owner = await make_account("reporter")
    stranger = await make_account("reporter")
    incident = (await api.post("/api/v1/incidents", json=NEW, headers=owner.headers)).json()
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE suggestions SET status = 'ready', text = 'Revisar encoder del eje 2.' WHERE incident_id = $1",
            incident["id"],
        )
    return owner, stranger, incident


async def test_a_reporter_cannot_reach_another_reporters_incident(api, services, victim_incident):
    """One attack case per probe; each asserts its exact status and that nothing changed."""
    owner, stranger, incident = victim_incident
    before = await snapshot(services, incident["id"])
    for method, path, body, status in PROBES:
        reply = await api.request(method, path.format(id=incident["id"]), json=body, headers=stranger.headers)
        assert reply.status_code == status, f"{method} {path}: {reply.status_code} {reply.text}"
        assert reply.json()["error"] == ("NotFound" if status == 404 else "Forbidden"), f"{method} {path}"
        assert await snapshot(services, incident["id"]) == before, f"{method} {path} changed something"


async def test_the_owner_still_reads_its_incident(api, victim_incident):
    owner, _, incident = victim_incident
    for path in ("/api/v1/incidents/{id}", "/api/v1/incidents/{id}/comments", "/api/v1/incidents/{id}/suggestion"):
        assert (await api.get(path.format(id=incident["id"]), headers=owner.headers)).status_code == 200


async def test_lists_and_filters_never_show_a_stranger_the_incident(api, make_account, victim_incident):
    owner, stranger, incident = victim_incident
    technician = await make_account("technician")
    for params in ({}, {"area": "quality"}, {"text": "SRVO-050"}, {"status": "open"}, {"priority": "high"}):
        assert (await api.get("/api/v1/incidents", params=params, headers=stranger.headers)).json()["items"] == []
        own = (await api.get("/api/v1/incidents", params=params, headers=owner.headers)).json()["items"]
        assert [i["id"] for i in own] == [incident["id"]]
        every = (await api.get("/api/v1/incidents", params=params, headers=technician.headers)).json()["items"]
        assert [i["id"] for i in every] == [incident["id"]]


async def test_an_unknown_id_and_a_hidden_id_look_the_same(api, victim_incident):
    _, stranger, incident = victim_incident
    hidden = await api.get(f"/api/v1/incidents/{incident['id']}", headers=stranger.headers)
    missing = await api.get(f"/api/v1/incidents/{incident['id'] + 1000}", headers=stranger.headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"] == missing.json()["error"] == "NotFound"
