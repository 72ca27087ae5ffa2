"""API keys limited to areas: every read and write of an incident outside them answers 404, exactly as for an
incident that does not exist, and changes nothing; lists and searches show only their areas.

Attack cases (counted in the closing note): 19 probes in OUT_OF_SCOPE against an incident of another area, 3
creations/moves into another area, 3 list and search probes, 1 key naming an unknown area.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio

INCIDENT = {
    "title": "Cinta transportadora C3 se detiene",
    "description": "La cinta C3 se para cada diez minutos con la alarma E-4021 de sobrecorriente.",
    "priority": "high",
}

# (method, path template, body): each answers 404 for an incident outside the key's areas.
OUT_OF_SCOPE = [
    ("GET", "/api/v1/incidents/{id}", None),
    ("GET", "/api/v1/incidents/{id}/comments", None),
    ("GET", "/api/v1/incidents/{id}/similar", None),
    ("GET", "/api/v1/incidents/{id}/suggestion", None),
    ("GET", "/api/v1/incidents/{id}/suggestion/stream", None),
    ("GET", "/api/v1/incidents/{id}/sla", None),
    ("GET", "/api/v1/incidents/{id}/history", None),
    ("GET", "/api/v1/incidents/{id}/escalations", None),
    ("GET", "/api/v1/external/incidents/{id}", None),
    ("PATCH", "/api/v1/incidents/{id}", {"priority": "low"}),
    ("POST", "/api/v1/incidents/{id}/comments", {"body": "cerrad esto"}),
    ("POST", "/api/v1/incidents/{id}/status", {"status": "in_progress"}),
    ("POST", "/api/v1/incidents/{id}/resolve", {"solution": "nada"}),
    ("POST", "/api/v1/incidents/{id}/reopen", {"reason": "otra vez"}),
    ("POST", "/api/v1/incidents/{id}/assign", {"assignee_id": None}),
    ("POST", "/api/v1/incidents/{id}/escalations", {"level": 1, "reason": "la línea está parada"}),
    ("POST", "/api/v1/incidents/{id}/suggestion/rating", {"rating": 1}),
    ("POST", "/api/v1/incidents/{id}/suggestion/feedback", {"decision": "rejected"}),
    ("POST", "/api/v1/incidents/{id}/suggestion/regenerate", {}),
]


async def snapshot(services, incident_id):
    async with services.pool.acquire() as conn:
        incident = dict(await conn.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id))
        comments = await conn.fetchval("SELECT count(*) FROM incident_comments WHERE incident_id = $1", incident_id)
        suggestion = await conn.fetchrow("SELECT * FROM suggestions WHERE incident_id = $1", incident_id)
    return incident, comments, dict(suggestion) if suggestion else None


@pytest.fixture
async def scene(api, make_account, make_api_key):
    """A production-only key with every permission but admin, one incident in production, one in maintenance."""
    technician = await make_account("technician")
    made = {}
    for area in ("production", "maintenance"):
        reply = await api.post("/api/v1/incidents", json=INCIDENT | {"area": area}, headers=technician.headers)
        assert reply.status_code == 201, reply.text
        made[area] = reply.json()["id"]
    key = await make_api_key(permissions=["read", "write", "escalate"], allowed_areas=["production"])
    return key, made["production"], made["maintenance"]


async def test_every_read_and_write_outside_the_keys_areas_is_404_like_a_missing_incident(api, services, scene):
    key, _, elsewhere = scene
    before = await snapshot(services, elsewhere)
    for method, template, body in OUT_OF_SCOPE:
        reply = await api.request(method, template.format(id=elsewhere), json=body, headers=key.headers)
        missing = await api.request(method, template.format(id=999_999), json=body, headers=key.headers)
        case = f"{method} {template}"
        assert reply.status_code == 404, f"{case}: {reply.status_code} {reply.text}"
        assert missing.status_code == 404, f"{case} (missing): {missing.status_code}"
        assert reply.json()["error"] == missing.json()["error"] == "NotFound", case
        assert reply.json()["detail"].replace(str(elsewhere), "N") == missing.json()["detail"].replace("999999", "N")
        assert await snapshot(services, elsewhere) == before, case


async def test_the_same_key_works_inside_its_area(api, scene):
    key, inside, _ = scene
    assert (await api.get(f"/api/v1/incidents/{inside}", headers=key.headers)).status_code == 200
    assert (await api.get(f"/api/v1/external/incidents/{inside}", headers=key.headers)).status_code == 200
    reply = await api.post(f"/api/v1/incidents/{inside}/comments", json={"body": "mirando"}, headers=key.headers)
    assert reply.status_code == 201


async def test_creating_or_moving_an_incident_into_another_area_is_refused_like_an_unknown_area(api, services, scene):
    key, inside, _ = scene
    async with services.pool.acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM incidents")
    created = await api.post("/api/v1/incidents", json=INCIDENT | {"area": "maintenance"}, headers=key.headers)
    unknown = await api.post("/api/v1/incidents", json=INCIDENT | {"area": "no-such-area"}, headers=key.headers)
    assert created.status_code == unknown.status_code == 422
    assert created.json()["field"] == "area" and "maintenance" not in created.json()["detail"].split(":")[-1]
    external = await api.post(
        "/api/v1/external/incidents", json=INCIDENT | {"area": "maintenance"}, headers=key.headers
    )
    assert external.status_code == 422 and external.json()["field"] == "area"
    moved = await api.patch(f"/api/v1/incidents/{inside}", json={"area": "maintenance"}, headers=key.headers)
    assert moved.status_code == 422 and moved.json()["field"] == "area"
    async with services.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM incidents") == count
        assert await conn.fetchval("SELECT area FROM incidents WHERE id = $1", inside) == "production"


async def test_lists_and_searches_show_only_the_keys_areas(api, scene):
    key, inside, _ = scene
    listed = (await api.get("/api/v1/incidents", headers=key.headers)).json()["items"]
    assert [i["id"] for i in listed] == [inside]
    filtered = (await api.get("/api/v1/incidents", params={"area": "maintenance"}, headers=key.headers)).json()
    assert filtered["items"] == []
    search = await api.get(
        "/api/v1/external/knowledge/search", params={"query": "cinta", "area": "maintenance"}, headers=key.headers
    )
    assert search.status_code == 422 and search.json()["field"] == "area"


async def test_a_key_cannot_be_limited_to_an_unknown_area(api, make_account):
    admin = await make_account("admin")
    reply = await api.post(
        "/api/v1/api-keys",
        headers=admin.headers,
        json={
            "name": "scoped",
            "owner_email": "it@example.com",
            "permissions": ["read"],
            "allowed_areas": ["production", "atlantis"],
        },
    )
    assert reply.status_code == 422 and reply.json()["field"] == "allowed_areas" and "atlantis" in reply.text
    good = await api.post(
        "/api/v1/api-keys",
        headers=admin.headers,
        json={
            "name": "scoped",
            "owner_email": "it@example.com",
            "permissions": ["read"],
            "allowed_areas": ["production"],
        },
    )
    assert good.status_code == 201 and good.json()["allowed_areas"] == ["production"]
