"""Every change operation refuses what its create operation refuses, with a 4xx naming the field and nothing
stored. The operations, fields and invalid values come from the OpenAPI document (tests/fixtures/
change_schemas.py); only one valid body per resource is written here, to have something to change."""

from __future__ import annotations

import pytest

from tests.fixtures.change_schemas import ChangePair, change_pairs, invalid_values

pytestmark = pytest.mark.asyncio

# A valid new resource per collection; the invalid cases are derived from the schemas.
VALID_BODIES = {
    "/api/v1/incidents": {
        "title": "Line 3 conveyor motor overheating",
        "area": "production",
        "priority": "low",
        "description": "Alarm E-4021 after 20 minutes.",
        "category": "motors",
        "tags": ["line3"],
    },
    "/api/v1/users": {
        "username": "change-target",
        "password": "Correct-Horse-9-Battery",
        "role": "reporter",
        "email": "target@example.com",
    },
    "/api/v1/notify/endpoints": {
        "kind": "webhook",
        "target": "http://127.0.0.1:9/hook",
        "event_types": ["incident.created"],
    },
    "/api/v1/sla/policies": {"name": "Production", "first_response_minutes": 15, "resolution_minutes": 240},
    "/api/v1/sla/escalation-rules": {"name": "Breach", "conditions": [{"type": "sla_breached"}], "level": 1},
}


async def _document(client) -> dict:
    return (await client.get("/openapi.json")).json()


async def _read_back(client, pair: ChangePair, resource_id: int, headers: dict) -> dict:
    """The stored resource: its own GET when there is one, else its entry in the collection's list."""
    item = pair.item_path.rsplit("/", 1)[0] + f"/{resource_id}"
    reply = await client.get(item, headers=headers)
    if reply.status_code == 200:
        return reply.json()
    listed = (await client.get(pair.collection, headers=headers)).json()
    return next(entry for entry in listed if entry["id"] == resource_id)


def _names_the_field(body: dict, name: str) -> bool:
    return body.get("field", "").split(".")[0] == name


async def test_every_change_operation_refuses_what_create_refuses_and_stores_nothing(notify_api, admin):
    document = await _document(notify_api)
    pairs = [pair for pair in change_pairs(document) if pair.collection in VALID_BODIES]
    assert {pair.collection for pair in pairs} == set(VALID_BODIES), "a resource lost its change operation"
    checked = 0
    for pair in pairs:
        created = await notify_api.post(pair.collection, json=VALID_BODIES[pair.collection], headers=admin.headers)
        assert created.status_code == 201, created.text
        resource_id = created.json()["id"]
        before = await _read_back(notify_api, pair, resource_id, admin.headers)
        item = pair.item_path.rsplit("/", 1)[0] + f"/{resource_id}"
        for name, schema in pair.change_schema["properties"].items():
            for why, value in invalid_values(schema, document):
                reply = await notify_api.patch(item, json={name: value}, headers=admin.headers)
                assert reply.status_code == 422, f"PATCH {pair.item_path} {name} {why}: {reply.status_code}"
                assert _names_the_field(reply.json(), name), f"PATCH {name} {why}: {reply.json()}"
                if name in pair.create_schema.get("properties", {}):
                    body = {**VALID_BODIES[pair.collection], name: value}
                    refused = await notify_api.post(pair.collection, json=body, headers=admin.headers)
                    assert refused.status_code == 422, f"POST {pair.collection} {name} {why}: {refused.status_code}"
                    assert _names_the_field(refused.json(), name), f"POST {name} {why}: {refused.json()}"
                checked += 1
        after = await _read_back(notify_api, pair, resource_id, admin.headers)
        assert after == before, f"{pair.item_path} changed although every change was refused"
    assert checked > 60


async def test_null_clears_a_nullable_field_and_omission_keeps_it(notify_api, admin):
    created = await notify_api.post("/api/v1/incidents", json=VALID_BODIES["/api/v1/incidents"], headers=admin.headers)
    incident = created.json()
    reply = await notify_api.patch(
        f"/api/v1/incidents/{incident['id']}", json={"category": None}, headers=admin.headers
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["category"] is None
    assert reply.json()["tags"] == ["line3"] and reply.json()["title"] == incident["title"]


async def test_tags_null_on_change_is_a_422_naming_tags(notify_api, admin):
    created = await notify_api.post("/api/v1/incidents", json=VALID_BODIES["/api/v1/incidents"], headers=admin.headers)
    reply = await notify_api.patch(
        f"/api/v1/incidents/{created.json()['id']}", json={"tags": None}, headers=admin.headers
    )
    assert reply.status_code == 422
    assert reply.json()["field"] == "tags"


async def test_null_email_removes_a_users_address_and_omission_keeps_it(notify_api, admin):
    created = (await notify_api.post("/api/v1/users", json=VALID_BODIES["/api/v1/users"], headers=admin.headers)).json()
    kept = await notify_api.patch(
        f"/api/v1/users/{created['id']}", json={"display_name": "Target"}, headers=admin.headers
    )
    assert kept.json()["email"] == "target@example.com"
    cleared = await notify_api.patch(f"/api/v1/users/{created['id']}", json={"email": None}, headers=admin.headers)
    assert cleared.status_code == 200 and cleared.json()["email"] is None
