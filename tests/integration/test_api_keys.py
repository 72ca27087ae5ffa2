"""API keys: issued once with a prefix, stored only as a hash, rotated with a grace period, revoked, counted."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from backend.apikeys.service import ApiKeyService
from backend.clock import FrozenClock
from tests.fixtures.security import app_with, settings_with

pytestmark = pytest.mark.asyncio

INCIDENT = {
    "title": "Línea 3: fallo de comunicación PLC",
    "description": "El MES perdió la conexión con el PLC de la línea 3 durante 5 minutos (timeout Modbus).",
    "area": "production",
}
KEY_BODY = {
    "name": "MES line 3",
    "owner_email": "mes-team@example.com",
    "permissions": ["read", "write"],
    "rate_limit_per_minute": 100,
    "allowed_networks": ["10.0.0.0/8"],
}


async def issue(api, admin, **fields):
    reply = await api.post("/api/v1/api-keys", json=KEY_BODY | fields, headers=admin.headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def key_state(services, key_id):
    async with services.pool.acquire() as conn:
        return await conn.fetchrow("SELECT use_count, last_used_at, last_used_ip FROM api_keys WHERE id = $1", key_id)


class TestIssue:
    async def test_key_is_shown_once_with_its_prefix_and_stored_only_as_sha256(self, api, make_account, services):
        admin = await make_account("admin")
        created = await issue(api, admin)
        key = created["key"]
        assert key.startswith("prs_live_") and len(key) >= 50
        assert created["key_prefix"] == key[:15] and created["status"] == "active"
        listed = await api.get("/api/v1/api-keys", headers=admin.headers)
        one = await api.get(f"/api/v1/api-keys/{created['id']}", headers=admin.headers)
        assert key not in listed.text and key not in one.text and "key" not in one.json()
        async with services.pool.acquire() as conn:
            stored = await conn.fetchval("SELECT secret_hash FROM api_key_secrets WHERE api_key_id = $1", created["id"])
            everything = (
                str([dict(r) for r in await conn.fetch("SELECT * FROM api_key_secrets")])
                + str([dict(r) for r in await conn.fetch("SELECT * FROM api_keys")])
                + str([dict(r) for r in await conn.fetch("SELECT * FROM audit_log")])
            )
        assert stored == hashlib.sha256(key.encode()).hexdigest()
        assert key not in everything and key[15:] not in everything

    async def test_key_works_on_the_external_api_and_its_use_is_counted(self, api, make_account, services):
        admin = await make_account("admin")
        created = await issue(api, admin)
        headers = {"X-API-Key": created["key"]}
        reply = await api.post("/api/v1/external/incidents", json=INCIDENT, headers=headers)
        assert reply.status_code == 201, reply.text
        assert reply.json()["reporter"] == "MES line 3" and reply.json()["priority"] == "medium"
        status = await api.get(f"/api/v1/external/incidents/{reply.json()['id']}", headers=headers)
        assert status.status_code == 200 and status.json()["status"] == "open"
        assert status.json()["suggestion"]["status"] == "pending"
        state = await key_state(services, created["id"])
        assert state["use_count"] == 2 and state["last_used_ip"] == "10.1.2.3" and state["last_used_at"] is not None
        async with services.pool.acquire() as conn:
            audit_row = await conn.fetchrow(
                "SELECT actor_kind, actor_id, actor_name FROM audit_log WHERE action = 'incident.created'"
            )
        assert dict(audit_row) == {"actor_kind": "api_key", "actor_id": str(created["id"]), "actor_name": "MES line 3"}

    async def test_same_key_works_on_the_internal_api_within_its_permissions(self, api, make_account):
        admin = await make_account("admin")
        reader = await issue(api, admin, name="dashboard", permissions=["read"])
        writer = await issue(api, admin, name="monitoring", permissions=["read", "write"])
        assert (await api.get("/api/v1/incidents", headers={"X-API-Key": reader["key"]})).status_code == 200
        denied = await api.post(
            "/api/v1/incidents", json=INCIDENT | {"priority": "low"}, headers={"X-API-Key": reader["key"]}
        )
        assert denied.status_code == 403 and denied.json()["reason"] == "api_key_missing_permission"
        created = await api.post(
            "/api/v1/incidents", json=INCIDENT | {"priority": "low"}, headers={"X-API-Key": writer["key"]}
        )
        assert created.status_code == 201 and created.json()["reporter"]["name"] == "monitoring"

    async def test_live_names_are_unique_and_expiry_must_be_future(self, api, make_account):
        admin = await make_account("admin")
        await issue(api, admin)
        again = await api.post("/api/v1/api-keys", json=KEY_BODY | {"name": "mes LINE 3"}, headers=admin.headers)
        assert again.status_code == 409 and again.json()["field"] == "name"
        past = await api.post(
            "/api/v1/api-keys",
            json=KEY_BODY | {"name": "other", "expires_at": "2001-01-01T00:00:00Z"},
            headers=admin.headers,
        )
        assert past.status_code == 422 and past.json()["field"] == "expires_at"


class TestRotateAndRevoke:
    async def test_old_and_new_key_both_work_during_the_grace_period_then_only_the_new(
        self, api_from, make_account, services, api
    ):
        admin = await make_account("admin")
        clock = FrozenClock(services.clock.now())
        keys = ApiKeyService(settings=services.settings, pool=services.pool, clock=clock)
        client = api_from(app_with(services, settings_with(services), api_keys=keys))
        old = await issue(client, admin)
        rotated = await client.post(
            f"/api/v1/api-keys/{old['id']}/rotate", json={"grace_minutes": 30}, headers=admin.headers
        )
        assert rotated.status_code == 200 and rotated.json()["key"] != old["key"]
        assert rotated.json()["previous_key_valid_until"] is not None
        for key in (old["key"], rotated.json()["key"]):
            assert (await client.get("/api/v1/incidents", headers={"X-API-Key": key})).status_code == 200
        clock.advance(minutes=31)
        late = await client.get("/api/v1/incidents", headers={"X-API-Key": old["key"]})
        assert late.status_code == 401 and late.json()["reason"] == "api_key_rotated"
        assert (await client.get("/api/v1/incidents", headers={"X-API-Key": rotated.json()["key"]})).status_code == 200

    async def test_rotation_without_grace_stops_the_old_key_at_once(self, api, make_account):
        admin = await make_account("admin")
        old = await issue(api, admin)
        new = (
            await api.post(f"/api/v1/api-keys/{old['id']}/rotate", json={"grace_minutes": 0}, headers=admin.headers)
        ).json()
        assert (await api.get("/api/v1/incidents", headers={"X-API-Key": old["key"]})).status_code == 401
        assert (await api.get("/api/v1/incidents", headers={"X-API-Key": new["key"]})).status_code == 200

    async def test_revocation_stops_the_key_and_its_predecessor_in_grace(self, api, make_account, services):
        admin = await make_account("admin")
        old = await issue(api, admin)
        new = (await api.post(f"/api/v1/api-keys/{old['id']}/rotate", headers=admin.headers)).json()
        revoked = await api.post(f"/api/v1/api-keys/{old['id']}/revoke", headers=admin.headers)
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        for key in (old["key"], new["key"]):
            reply = await api.get("/api/v1/incidents", headers={"X-API-Key": key})
            assert reply.status_code == 401 and reply.json()["reason"] == "api_key_revoked"
        again = await api.post(f"/api/v1/api-keys/{old['id']}/revoke", headers=admin.headers)
        assert again.status_code == 409
        async with services.pool.acquire() as conn:
            actions = [
                r["action"]
                for r in await conn.fetch("SELECT action FROM audit_log WHERE resource_type = 'api_key' ORDER BY id")
            ]
        assert actions[:3] == ["api_key.created", "api_key.rotated", "api_key.revoked"]
        assert actions[3:] == ["api_key.denied", "api_key.denied"]

    async def test_expired_key_is_refused_with_its_own_reason(self, api_from, make_account, services):
        admin = await make_account("admin")
        clock = FrozenClock(services.clock.now())
        keys = ApiKeyService(settings=services.settings, pool=services.pool, clock=clock)
        client = api_from(app_with(services, settings_with(services), api_keys=keys))
        created = await issue(client, admin, expires_at=(clock.now() + timedelta(days=1)).isoformat())
        assert (await client.get("/api/v1/incidents", headers={"X-API-Key": created["key"]})).status_code == 200
        clock.advance(days=1, seconds=1)
        reply = await client.get("/api/v1/incidents", headers={"X-API-Key": created["key"]})
        assert reply.status_code == 401 and reply.json()["reason"] == "api_key_expired"
        listed = (await client.get(f"/api/v1/api-keys/{created['id']}", headers=admin.headers)).json()
        assert listed["status"] == "expired"
