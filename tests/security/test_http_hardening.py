"""Security headers on every kind of answer, CORS only for configured origins, tokens and API data not cached."""

from __future__ import annotations

import pytest

from tests.fixtures.security import app_with, settings_with

pytestmark = pytest.mark.asyncio

EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/", 200),
        ("GET", "/static/app.js", 200),
        ("GET", "/health/live", 200),
        ("GET", "/api/v1/incidents", 401),
        ("GET", "/api/v1/no-such-thing", 404),
        ("POST", "/api/v1/auth/token", 422),
    ],
)
async def test_every_answer_carries_the_security_headers(api, method, path, status):
    reply = await api.request(method, path)
    assert reply.status_code == status
    for name, value in EXPECTED.items():
        assert reply.headers[name] == value, name
    csp = reply.headers["content-security-policy"]  # pages may set a stricter one of their own
    assert csp.startswith("default-src 'self'") and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "camera=()" in reply.headers["permissions-policy"]
    if path.startswith("/api/"):
        assert reply.headers["cache-control"] == "no-store"


async def test_hsts_is_sent_only_when_configured(api_from, services):
    client = api_from(app_with(services, settings_with(services, hsts_seconds=31536000)))
    assert (await client.get("/health/live")).headers["strict-transport-security"].startswith("max-age=31536000")


async def test_cors_allows_only_the_configured_origins(api_from, services):
    client = api_from(app_with(services, settings_with(services, cors_origins="https://portal.example.com")))
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"}
    allowed = await client.options(
        "/api/v1/external/incidents", headers=preflight | {"Origin": "https://portal.example.com"}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://portal.example.com"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    refused = await client.options("/api/v1/external/incidents", headers=preflight | {"Origin": "https://evil.example"})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    simple = await client.get("/health/live", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_without_configured_origins_no_cors_headers_are_sent(api):
    reply = await api.options(
        "/api/v1/incidents", headers={"Origin": "https://portal.example.com", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in reply.headers
