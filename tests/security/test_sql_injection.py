"""SQL injection strings in every text and filter parameter: stored verbatim or refused, never executed."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.asyncio

PAYLOADS = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "1; SELECT pg_sleep(10); --",
    "' UNION SELECT password_hash, NULL FROM users --",
    '" OR ""="',
    "%' AND 1=1 --",
    "$1",
    "'); TRUNCATE audit_log; --",
    "1) OR (1=1",
    "'||(SELECT version())||'",
    "\\'; DELETE FROM incidents; --",
    "admin'--",
]
NEW = {
    "title": "Válvula V-3 atascada",
    "description": "La válvula neumática V-3 no cierra del todo.",
    "area": "maintenance",
    "priority": "low",
}


async def fingerprint(services):
    """What an injected statement would change: row counts of the tables that matter and their existence."""
    async with services.pool.acquire() as conn:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("users", "incidents", "incident_comments", "api_keys", "refresh_tokens", "areas")
        }


async def send(api, services, method, path, *, expected, **kwargs):
    before = await fingerprint(services)
    started = time.monotonic()
    reply = await api.request(method, path, **kwargs)
    assert time.monotonic() - started < 8, "pg_sleep ran: the payload reached SQL as code"
    assert reply.status_code == expected, f"{method} {path} {kwargs}: {reply.status_code} {reply.text[:300]}"
    return before, reply


@pytest.fixture
async def admin(make_account):
    return await make_account("admin")


class TestStoredTextIsVerbatim:
    @pytest.mark.parametrize("field", ["title", "description", "category", "external_ref", "tags"])
    async def test_incident_text_fields(self, api, services, admin, field):
        for payload in PAYLOADS:
            value = [payload[:40].strip()] if field == "tags" else payload
            before, reply = await send(
                api,
                services,
                "POST",
                "/api/v1/incidents",
                expected=201,
                json=NEW | {field: value},
                headers=admin.headers,
            )
            assert reply.json()[field] == value
            after = await fingerprint(services)
            assert after == before | {"incidents": before["incidents"] + 1}

    async def test_comment_body(self, api, services, admin):
        incident = (await api.post("/api/v1/incidents", json=NEW, headers=admin.headers)).json()
        for payload in PAYLOADS:
            before, reply = await send(
                api,
                services,
                "POST",
                f"/api/v1/incidents/{incident['id']}/comments",
                expected=201,
                json={"body": payload},
                headers=admin.headers,
            )
            assert reply.json()["body"] == payload
            assert await fingerprint(services) == before | {"incident_comments": before["incident_comments"] + 1}

    async def test_api_key_name(self, api, services, admin):
        for n, payload in enumerate(PAYLOADS):
            before, reply = await send(
                api,
                services,
                "POST",
                "/api/v1/api-keys",
                expected=201,
                headers=admin.headers,
                json={"name": f"{payload} {n}", "owner_email": "x@example.com", "permissions": ["read"]},
            )
            assert reply.json()["name"] == f"{payload} {n}".strip()
            assert await fingerprint(services) == before | {"api_keys": before["api_keys"] + 1}

    async def test_external_incident_fields(self, api, services, make_api_key):
        key = await make_api_key()
        for payload in PAYLOADS:
            before, reply = await send(
                api,
                services,
                "POST",
                "/api/v1/external/incidents",
                expected=201,
                json=NEW | {"title": payload, "external_ref": payload},
                headers=key.headers,
            )
            assert reply.json()["title"] == payload and reply.json()["external_ref"] == payload


class TestFiltersMatchNothingOrAreRefused:
    @pytest.mark.parametrize(
        "param, expected",
        [
            ("text", 200),
            ("area", 200),
            ("status", 422),
            ("priority", 422),
            ("assignee_id", 422),
            ("cursor", 400),
            ("created_from", 422),
        ],
    )
    async def test_incident_list_filters(self, api, services, admin, param, expected):
        await api.post("/api/v1/incidents", json=NEW, headers=admin.headers)
        for payload in PAYLOADS:
            before, reply = await send(
                api,
                services,
                "GET",
                "/api/v1/incidents",
                expected=expected,
                params={param: payload},
                headers=admin.headers,
            )
            if expected == 200:
                assert reply.json()["items"] == [], f"{param}={payload!r} must not match the stored incident"
            else:
                assert reply.json()["field"].split(".")[0] == param
            assert await fingerprint(services) == before

    @pytest.mark.parametrize(
        "param, expected",
        [
            ("actor", 200),
            ("action", 200),
            ("resource_type", 200),
            ("resource_id", 200),
            ("cursor", 400),
            ("occurred_to", 422),
        ],
    )
    async def test_audit_filters(self, api, services, admin, param, expected):
        for payload in PAYLOADS:
            before, reply = await send(
                api, services, "GET", "/api/v1/audit", expected=expected, params={param: payload}, headers=admin.headers
            )
            if expected == 200:
                assert reply.json()["items"] == []
            else:
                assert reply.json()["field"] == param
            assert await fingerprint(services) == before

    @pytest.mark.parametrize("param, expected", [("query", 200), ("area", 422)])
    async def test_external_knowledge_search(self, api, services, make_api_key, param, expected):
        key = await make_api_key()
        for payload in PAYLOADS:
            params = {"query": "válvula atascada"} | {param: payload}
            before, reply = await send(
                api,
                services,
                "GET",
                "/api/v1/external/knowledge/search",
                expected=expected,
                params=params,
                headers=key.headers,
            )
            assert await fingerprint(services) == before

    async def test_path_parameters(self, api, services, admin):
        for payload in PAYLOADS:
            for path in (f"/api/v1/incidents/{payload}", f"/api/v1/users/{payload}", f"/api/v1/api-keys/{payload}"):
                method = "PATCH" if "/users/" in path else "GET"
                before, reply = await send(
                    api,
                    services,
                    method,
                    path.replace("#", "%23").replace("?", "%3F"),
                    expected=422,
                    json={} if method == "PATCH" else None,
                    headers=admin.headers,
                )
                assert await fingerprint(services) == before


class TestCredentialsFields:
    async def test_login_username_and_password(self, api_from, services, admin):
        from tests.fixtures.security import app_with, settings_with

        client = api_from(app_with(services, settings_with(services, login_rate_limit="1000/minute")))
        for payload in PAYLOADS:
            for data in ({"username": payload, "password": "x"}, {"username": admin.username, "password": payload}):
                before, reply = await send(client, services, "POST", "/api/v1/auth/token", expected=401, data=data)
                assert await fingerprint(services) == before

    async def test_refresh_token(self, api, services):
        for payload in PAYLOADS:
            body = {"refresh_token": (payload * 2)[:200].ljust(10, "x")}
            before, reply = await send(api, services, "POST", "/api/v1/auth/refresh", expected=401, json=body)
            assert await fingerprint(services) == before


class TestUnstorableText:
    """A NUL byte cannot be stored by Postgres: it must be a 4xx, never a 500, and store nothing."""

    async def test_nul_in_an_internal_incident_is_422(self, api, services, admin):
        before, reply = await send(
            api,
            services,
            "POST",
            "/api/v1/incidents",
            expected=422,
            json=NEW | {"title": "a\x00b"},
            headers=admin.headers,
        )
        assert await fingerprint(services) == before

    async def test_nul_in_an_external_incident_is_422_naming_the_field(self, api, services, make_api_key):
        key = await make_api_key()
        for field in ("title", "description", "external_ref"):
            before, reply = await send(
                api,
                services,
                "POST",
                "/api/v1/external/incidents",
                expected=422,
                json=NEW | {field: "x\x00y"},
                headers=key.headers,
            )
            assert reply.json()["field"] == field
            assert await fingerprint(services) == before

    async def test_nul_in_a_username_is_an_ordinary_failed_login(self, api, services):
        before, reply = await send(
            api, services, "POST", "/api/v1/auth/token", expected=401, data={"username": "admin\x00", "password": "x"}
        )
        assert await fingerprint(services) == before

    async def test_ids_beyond_bigint_are_422_not_a_server_error(self, api, services, admin, make_api_key):
        key = await make_api_key()
        huge = "9" * 25
        for path, headers in (
            (f"/api/v1/incidents/{huge}", admin.headers),
            (f"/api/v1/incidents/{huge}/comments", admin.headers),
            (f"/api/v1/incidents/{huge}/suggestion", admin.headers),
            (f"/api/v1/api-keys/{huge}", admin.headers),
            (f"/api/v1/external/incidents/{huge}", key.headers),
        ):
            before, reply = await send(api, services, "GET", path, expected=422, headers=headers)
            assert await fingerprint(services) == before
