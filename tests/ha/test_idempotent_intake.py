"""Idempotency-Key on the two intake endpoints: a repeat gets the first answer, another body under the same key
is refused, and concurrent duplicates create one incident."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

pytestmark = pytest.mark.asyncio

REPORT = {
    "title": "Compresor C-4 dispara por sobrecorriente",
    "description": "El compresor C-4 se detiene con alarma de sobrecorriente a los pocos minutos del arranque.",
    "area": "maintenance",
    "priority": "high",
}


async def count_incidents(services, title: str) -> int:
    async with services.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM incidents WHERE title = $1", title)


class TestPeopleIntake:
    async def test_a_repeat_with_the_same_key_answers_the_first_answer_and_creates_nothing(
        self, api, make_account, services
    ):
        account = await make_account("reporter")
        headers = account.headers | {"Idempotency-Key": str(uuid.uuid4())}
        first = await api.post("/api/v1/incidents", json=REPORT, headers=headers)
        again = await api.post("/api/v1/incidents", json=REPORT, headers=headers)
        assert first.status_code == 201 and again.status_code == 201, again.text
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
        assert await count_incidents(services, REPORT["title"]) == 1

    async def test_the_same_key_with_another_body_is_422_naming_the_header_and_stores_nothing(
        self, api, make_account, services
    ):
        account = await make_account("reporter")
        headers = account.headers | {"Idempotency-Key": "order-4711"}
        assert (await api.post("/api/v1/incidents", json=REPORT, headers=headers)).status_code == 201
        other = REPORT | {"title": "Otro problema distinto en la prensa P-2"}
        refused = await api.post("/api/v1/incidents", json=other, headers=headers)
        assert refused.status_code == 422
        assert refused.json()["field"] == "Idempotency-Key" and "Idempotency-Key" in refused.json()["detail"]
        assert await count_incidents(services, other["title"]) == 0

    async def test_concurrent_duplicates_create_exactly_one_incident(self, api, make_account, services):
        account = await make_account("reporter")
        headers = account.headers | {"Idempotency-Key": str(uuid.uuid4())}
        replies = await asyncio.gather(*(api.post("/api/v1/incidents", json=REPORT, headers=headers) for _ in range(6)))
        assert [r.status_code for r in replies] == [201] * 6, [r.text for r in replies]
        assert len({r.json()["id"] for r in replies}) == 1
        assert sum(1 for r in replies if "idempotent-replayed" not in r.headers) == 1
        assert await count_incidents(services, REPORT["title"]) == 1

    async def test_keys_are_private_to_their_sender(self, api, make_account, services):
        first, second = await make_account("reporter"), await make_account("reporter")
        for account in (first, second):
            reply = await api.post(
                "/api/v1/incidents", json=REPORT, headers=account.headers | {"Idempotency-Key": "shared-key-1"}
            )
            assert reply.status_code == 201 and "idempotent-replayed" not in reply.headers
        assert await count_incidents(services, REPORT["title"]) == 2

    @pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\tinside"])
    async def test_a_malformed_key_is_422_naming_the_header(self, api, make_account, services, key):
        account = await make_account("reporter")
        reply = await api.post("/api/v1/incidents", json=REPORT, headers=account.headers | {"Idempotency-Key": key})
        assert reply.status_code == 422 and reply.json()["field"] == "Idempotency-Key"
        assert await count_incidents(services, REPORT["title"]) == 0

    async def test_keys_are_kept_a_day_and_an_expired_key_is_purged_and_free_again(self, api, make_account, services):
        account = await make_account("reporter")
        headers = account.headers | {"Idempotency-Key": "expiring-key"}
        first = (await api.post("/api/v1/incidents", json=REPORT, headers=headers)).json()
        async with services.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT created_at, expires_at FROM idempotency_keys WHERE key = $1", "expiring-key"
            )
            assert row["expires_at"] - row["created_at"] >= timedelta(hours=24)
            await conn.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
        later = await api.post("/api/v1/incidents", json=REPORT, headers=headers)
        assert later.status_code == 201 and later.json()["id"] != first["id"]
        async with services.pool.acquire() as conn:
            await conn.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
        assert await services.incidents.idempotency.purge_expired() == 1
        async with services.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == 0


class TestExternalIntake:
    async def test_an_mes_retry_with_the_key_answers_the_same_incident(self, api, make_api_key, services):
        key = await make_api_key(name="MES planta sur")
        headers = key.headers | {"Idempotency-Key": "MES-2026-00077"}
        first = await api.post("/api/v1/external/incidents", json=REPORT, headers=headers)
        again = await api.post("/api/v1/external/incidents", json=REPORT, headers=headers)
        assert first.status_code == 201 and again.status_code == 201
        assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
        assert again.json()["similar"] == first.json()["similar"]
        refused = await api.post("/api/v1/external/incidents", json=REPORT | {"priority": "low"}, headers=headers)
        assert refused.status_code == 422 and refused.json()["field"] == "Idempotency-Key"
        assert await count_incidents(services, REPORT["title"]) == 1
