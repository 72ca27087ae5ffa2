"""Every way an API key can be wrong gets its own precise answer, is audited, and changes nothing."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from backend.apikeys.service import ApiKeyService
from backend.clock import FrozenClock
from backend.context import system_context
from tests.fixtures.security import app_with, settings_with

pytestmark = pytest.mark.asyncio

INCIDENT = {
    "title": "Sensor de temperatura T-12 fuera de rango",
    "description": "El sensor T-12 del horno marca 450 °C con el horno apagado.",
    "area": "production",
}


async def counts(services):
    async with services.pool.acquire() as conn:
        return (
            await conn.fetchval("SELECT count(*) FROM incidents"),
            await conn.fetchval("SELECT coalesce(sum(use_count), 0) FROM api_keys"),
        )


async def denials(services):
    async with services.pool.acquire() as conn:
        return [
            r["after"]
            for r in await conn.fetch("SELECT after FROM audit_log WHERE action = 'api_key.denied' ORDER BY id")
        ]


async def attempt(client, services, headers, *, method="POST"):
    before = await counts(services)
    if method == "POST":
        reply = await client.post("/api/v1/external/incidents", json=INCIDENT, headers=headers)
    else:
        reply = await client.get("/api/v1/external/knowledge/search", params={"query": "horno"}, headers=headers)
    assert await counts(services) == before, "a refused request must not create or count anything"
    return reply


def expect(reply, status: int, reason: str) -> None:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["reason"] == reason and body["error"] == {401: "Unauthorized", 403: "Forbidden"}[status]


class TestUnknownKeys:
    async def test_unknown_or_malformed_keys_are_401_unknown(self, api, services, make_api_key):
        """One attack case per presented value; the audit log records the refusal but never the value."""
        await make_api_key()
        presented_values = [
            "prs_live_" + "A" * 43,
            "prs_live_",
            "not-a-key",
            "prs_live_' OR '1'='1",
            "prs_live_" + "x" * 500,
            "Bearer prs_live_abc",
            "prs_test_" + "A" * 43,
        ]
        for n, presented in enumerate(presented_values, start=1):
            expect(await attempt(api, services, {"X-API-Key": presented}), 401, "api_key_unknown")
            assert [d["reason"] for d in await denials(services)] == ["api_key_unknown"] * n
            assert presented not in str(await denials(services))

    async def test_the_stored_hash_is_not_a_key(self, api, services, make_api_key):
        key = await make_api_key()
        stolen_hash = hashlib.sha256(key.key.encode()).hexdigest()
        expect(await attempt(api, services, {"X-API-Key": stolen_hash}), 401, "api_key_unknown")
        expect(await attempt(api, services, {"X-API-Key": "prs_live_" + stolen_hash}), 401, "api_key_unknown")

    async def test_a_key_in_the_query_string_is_ignored(self, api, services, make_api_key):
        key = await make_api_key()
        reply = await api.post(
            "/api/v1/external/incidents", params={"api_key": key.key, "X-API-Key": key.key}, json=INCIDENT
        )
        assert reply.status_code == 401 and "reason" not in reply.json()

    async def test_a_key_differing_in_one_character_is_unknown(self, api, services, make_api_key):
        key = await make_api_key()
        flipped = key.key[:-1] + ("A" if key.key[-1] != "A" else "B")
        expect(await attempt(api, services, {"X-API-Key": flipped}), 401, "api_key_unknown")


class TestKeyStates:
    async def test_revoked_key_is_401_revoked(self, api, services, make_api_key):
        key = await make_api_key()
        await services.api_keys.revoke(system_context("test"), key.id)
        expect(await attempt(api, services, key.headers), 401, "api_key_revoked")
        assert (await denials(services))[-1] == {"reason": "api_key_revoked", "key_name": "system-1"}

    async def test_expired_key_is_401_expired(self, api_from, services, make_api_key):
        clock = FrozenClock(services.clock.now())
        keys = ApiKeyService(settings=services.settings, pool=services.pool, clock=clock)
        client = api_from(app_with(services, settings_with(services), api_keys=keys))
        key = await make_api_key(expires_at=clock.now() + timedelta(hours=1))
        clock.advance(hours=2)
        expect(await attempt(client, services, key.headers), 401, "api_key_expired")

    async def test_rotated_key_after_its_grace_is_401_rotated(self, api, services, make_api_key):
        key = await make_api_key()
        await services.api_keys.rotate(system_context("test"), key.id, 0)
        expect(await attempt(api, services, key.headers), 401, "api_key_rotated")


class TestWhereFrom:
    async def test_key_used_from_outside_its_networks_is_403(self, api_from, api, services, make_api_key):
        key = await make_api_key(allowed_networks=["192.168.50.0/24", "2001:db8::/32"])
        expect(await attempt(api, services, key.headers), 403, "api_key_ip_not_allowed")
        inside = api_from(app_with(services, settings_with(services)), "192.168.50.7")
        assert (await inside.post("/api/v1/external/incidents", json=INCIDENT, headers=key.headers)).status_code == 201

    async def test_spoofed_forwarded_for_does_not_move_the_caller_into_the_network(self, api, services, make_api_key):
        key = await make_api_key(allowed_networks=["192.168.50.0/24"])
        spoofed = key.headers | {"X-Forwarded-For": "192.168.50.7"}
        expect(await attempt(api, services, spoofed), 403, "api_key_ip_not_allowed")

    @pytest.mark.parametrize(
        "origin",
        ["https://evil.example.com", "https://mes.example.com.evil.io", "null", "http://mes.example.com", None],
    )
    async def test_key_used_from_a_foreign_or_missing_origin_is_403(self, api, services, make_api_key, origin):
        key = await make_api_key(allowed_origins=["https://mes.example.com"])
        headers = key.headers | ({"Origin": origin} if origin else {})
        expect(await attempt(api, services, headers), 403, "api_key_origin_not_allowed")

    async def test_the_allowed_origin_is_accepted(self, api, services, make_api_key):
        key = await make_api_key(allowed_origins=["https://mes.example.com"])
        reply = await api.post(
            "/api/v1/external/incidents", json=INCIDENT, headers=key.headers | {"Origin": "https://MES.example.com"}
        )
        assert reply.status_code == 201


class TestPermissions:
    async def test_read_only_key_cannot_create_incidents(self, api, services, make_api_key):
        key = await make_api_key(permissions=["read"])
        expect(await attempt(api, services, key.headers), 403, "api_key_missing_permission")
        assert (await denials(services))[-1]["needed"] == "write"

    async def test_write_only_key_cannot_read(self, api, services, make_api_key):
        key = await make_api_key(permissions=["write"])
        expect(await attempt(api, services, key.headers, method="GET"), 403, "api_key_missing_permission")

    async def test_people_tokens_are_not_keys_for_the_external_api(self, api, services, make_account):
        admin = await make_account("admin")
        reply = await attempt(api, services, admin.headers)
        assert reply.status_code == 401 and "X-API-Key" in reply.json()["detail"]


class TestNoSecretsInLogsOrAudit:
    async def test_keys_passwords_and_tokens_never_reach_the_logs_or_the_audit_log(
        self, api, services, make_api_key, make_account, caplog
    ):
        caplog.set_level("DEBUG")
        account = await make_account("admin")
        key = await make_api_key()
        await api.post("/api/v1/auth/token", data={"username": account.username, "password": "Typo-Password-77"})
        await api.post("/api/v1/external/incidents", json=INCIDENT, headers=key.headers)
        await api.get("/api/v1/incidents", headers={"X-API-Key": key.key[:-2] + "zz"})
        rotated = await api.post(f"/api/v1/api-keys/{key.id}/rotate", headers=account.headers)
        async with services.pool.acquire() as conn:
            audit_text = str([dict(r) for r in await conn.fetch("SELECT * FROM audit_log")])
        secrets = [
            key.key,
            key.key[:-2] + "zz",
            rotated.json()["key"],
            "Typo-Password-77",
            account.headers["Authorization"].split()[1],
        ]
        for secret in secrets:
            assert secret not in caplog.text and secret not in audit_text
