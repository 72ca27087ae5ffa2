"""Brute force and floods: failed logins per client IP, rejected keys per IP, each key's own budget; the limits
hold across replicas sharing Redis, and a client cannot dodge them with forged forwarding headers."""

from __future__ import annotations

import pytest

from tests.fixtures.app import PASSWORD
from tests.fixtures.security import app_with, settings_with

pytestmark = pytest.mark.asyncio

REDIS = "redis://127.0.0.1:6379"
INCIDENT = {
    "title": "Etiquetadora Zebra no imprime",
    "description": "La impresora Zebra ZT410 de expedición imprime etiquetas en blanco.",
    "area": "logistics",
}


async def login(client, username, password, **headers):
    return await client.post("/api/v1/auth/token", data={"username": username, "password": password}, headers=headers)


async def failed_login_rows(services):
    async with services.pool.acquire() as conn:
        return await conn.fetch("SELECT client_ip FROM audit_log WHERE action = 'auth.login_failed' ORDER BY id")


def assert_rate_limited(reply, reason):
    assert reply.status_code == 429, reply.text
    assert reply.json()["error"] == "TooManyRequests" and reply.json()["reason"] == reason
    retry_after = int(reply.headers["retry-after"])
    assert 1 <= retry_after <= 60 and reply.json()["retry_after"] == retry_after
    assert "access_token" not in reply.text


class TestLoginBruteForce:
    async def test_sixth_failed_login_within_a_minute_is_429_even_with_the_right_password(
        self, api, make_account, services
    ):
        victim = await make_account("admin")
        for n in range(5):
            assert (await login(api, victim.username, f"Guess-{n}-Password")).status_code == 401
        assert_rate_limited(await login(api, victim.username, PASSWORD), "login_rate_limited")
        assert_rate_limited(await login(api, "someone-else", "Guess-6-Password"), "login_rate_limited")
        assert len(await failed_login_rows(services)) == 5, "refused attempts never reach the password check"

    async def test_other_addresses_and_successful_logins_are_not_limited(self, api_from, make_account, services):
        account = await make_account("reporter")
        app = app_with(services, settings_with(services))
        attacker, colleague = api_from(app, "10.9.9.9"), api_from(app, "10.9.9.10")
        for n in range(6):
            await login(attacker, account.username, f"Guess-{n}-Password")
        for _ in range(8):
            assert (await login(colleague, account.username, PASSWORD)).status_code == 200

    async def test_forged_forwarded_for_from_an_untrusted_peer_does_not_reset_the_count(self, api, make_account):
        victim = await make_account("reporter")
        for n in range(5):
            await login(api, victim.username, f"Guess-{n}-Password", **{"X-Forwarded-For": f"203.0.113.{n}"})
        reply = await login(api, victim.username, PASSWORD, **{"X-Forwarded-For": "203.0.113.200"})
        assert_rate_limited(reply, "login_rate_limited")

    async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(
        self, api_from, make_account, services
    ):
        victim = await make_account("reporter")
        proxy = api_from(app_with(services, settings_with(services, trusted_proxies="10.1.2.0/24")), "10.1.2.3")
        for n in range(5):
            await login(proxy, victim.username, f"Guess-{n}-Password", **{"X-Forwarded-For": "198.51.100.7"})
        assert_rate_limited(
            await login(proxy, victim.username, PASSWORD, **{"X-Forwarded-For": "198.51.100.7"}), "login_rate_limited"
        )
        other = await login(proxy, victim.username, PASSWORD, **{"X-Forwarded-For": "198.51.100.8"})
        assert other.status_code == 200
        assert {r["client_ip"] for r in await failed_login_rows(services)} == {"198.51.100.7"}


class TestAcrossReplicas:
    async def test_two_replicas_sharing_redis_share_the_login_limit(self, api_from, make_account, services):
        victim = await make_account("reporter")
        shared = settings_with(services, rate_limit_storage_uri=REDIS)
        replica_a = api_from(app_with(services, shared), "10.7.7.7")
        replica_b = api_from(app_with(services, shared), "10.7.7.7")
        for client in (replica_a, replica_b, replica_a, replica_b, replica_a):
            assert (await login(client, victim.username, "Wrong-Guess-123")).status_code == 401
        assert_rate_limited(await login(replica_b, victim.username, PASSWORD), "login_rate_limited")
        assert_rate_limited(await login(replica_a, victim.username, PASSWORD), "login_rate_limited")

    async def test_without_shared_storage_each_replica_counts_alone(self, api_from, make_account, services):
        victim = await make_account("reporter")
        replica_a = api_from(app_with(services, settings_with(services)), "10.7.7.8")
        replica_b = api_from(app_with(services, settings_with(services)), "10.7.7.8")
        for client in (replica_a, replica_b, replica_a, replica_b, replica_a):
            await login(client, victim.username, "Wrong-Guess-123")
        assert (await login(replica_b, victim.username, PASSWORD)).status_code == 200, (
            "control: memory storage is per process, which is why replicas need Redis"
        )

    async def test_an_api_keys_budget_is_shared_by_the_replicas(self, api_from, make_api_key, services):
        key = await make_api_key(rate_limit_per_minute=3)
        shared = settings_with(services, rate_limit_storage_uri=REDIS)
        replica_a = api_from(app_with(services, shared))
        replica_b = api_from(app_with(services, shared))
        for client in (replica_a, replica_b, replica_a):
            assert (await client.get("/api/v1/incidents", headers=key.headers)).status_code == 200
        assert_rate_limited(await replica_b.get("/api/v1/incidents", headers=key.headers), "api_key_rate_limited")
        async with services.pool.acquire() as conn:
            assert await conn.fetchval("SELECT use_count FROM api_keys WHERE id = $1", key.id) == 3


class TestApiKeyFloods:
    async def test_a_key_over_its_budget_gets_429_and_creates_nothing(self, api, make_api_key, services):
        key = await make_api_key(rate_limit_per_minute=2)
        for _ in range(2):
            assert (await api.post("/api/v1/external/incidents", json=INCIDENT, headers=key.headers)).status_code == 201
        assert_rate_limited(
            await api.post("/api/v1/external/incidents", json=INCIDENT, headers=key.headers), "api_key_rate_limited"
        )
        async with services.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM incidents") == 2

    async def test_guessing_keys_from_one_address_is_cut_off_and_bounded_in_the_audit_log(
        self, api_from, services, clean_state
    ):
        client = api_from(app_with(services, settings_with(services, api_key_failure_rate_limit="3/minute")))
        for n in range(3):
            reply = await client.get("/api/v1/incidents", headers={"X-API-Key": f"prs_live_guess{n}"})
            assert reply.status_code == 401
        assert_rate_limited(
            await client.get("/api/v1/incidents", headers={"X-API-Key": "prs_live_guess9"}),
            "api_key_attempts_rate_limited",
        )
        async with services.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'api_key.denied'") == 3
