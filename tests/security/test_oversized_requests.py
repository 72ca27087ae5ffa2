"""Oversized headers and bodies: refused with a precise status before they reach the application, in-process
and through a real uvicorn socket."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from tests.fixtures.security import app_with, settings_with

pytestmark = pytest.mark.asyncio

NEW = {
    "title": "Cinta C-9 patina",
    "description": "La cinta C-9 patina con carga.",
    "area": "logistics",
    "priority": "low",
}


async def incident_count(services):
    async with services.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM incidents")


@pytest.fixture
async def small_limits(services, api_from):
    settings = settings_with(
        services, max_request_body_bytes=2_100_000, max_request_header_bytes=4096, document_max_bytes=2_000_000
    )
    return api_from(app_with(services, settings))


class TestInProcess:
    async def test_declared_oversized_body_is_413_without_reading_it(self, small_limits, make_account, services):
        tech = await make_account("technician")
        body = b'{"title": "' + b"x" * 2_200_000 + b'"}'
        reply = await small_limits.post(
            "/api/v1/incidents", content=body, headers=tech.headers | {"Content-Type": "application/json"}
        )
        assert reply.status_code == 413 and reply.json()["error"] == "PayloadTooLarge"
        assert reply.json()["limit_bytes"] == 2_100_000
        assert await incident_count(services) == 0

    async def test_streamed_oversized_body_without_length_is_413(self, small_limits, make_account, services):
        tech = await make_account("technician")

        async def chunks():
            yield b'{"title": "'
            for _ in range(30):
                yield b"y" * 100_000
            yield b'"}'

        reply = await small_limits.post(
            "/api/v1/incidents", content=chunks(), headers=tech.headers | {"Content-Type": "application/json"}
        )
        assert reply.status_code == 413 and reply.json()["error"] == "PayloadTooLarge"
        assert await incident_count(services) == 0

    async def test_oversized_header_block_is_431(self, small_limits, make_account, services):
        tech = await make_account("technician")
        reply = await small_limits.post("/api/v1/incidents", json=NEW, headers=tech.headers | {"X-Padding": "z" * 5000})
        assert reply.status_code == 431 and reply.json()["error"] == "RequestHeaderFieldsTooLarge"
        assert await incident_count(services) == 0

    @pytest.mark.parametrize("value", ["abc", "-1", "1e9", "12, 12000000"])
    async def test_malformed_content_length_is_400(self, small_limits, make_account, services, value):
        tech = await make_account("technician")
        reply = await small_limits.post(
            "/api/v1/incidents",
            content=b"{}",
            headers=tech.headers | {"Content-Length": value, "Content-Type": "application/json"},
        )
        assert reply.status_code == 400 and reply.json()["field"] == "content-length"

    async def test_oversized_field_inside_an_allowed_body_is_422_naming_it(self, small_limits, make_account, services):
        tech = await make_account("technician")
        reply = await small_limits.post(
            "/api/v1/incidents", json=NEW | {"description": "d" * 20_001}, headers=tech.headers
        )
        assert reply.status_code == 422 and reply.json()["field"] == "description"
        assert await incident_count(services) == 0

    async def test_a_body_just_under_the_limit_is_processed(self, small_limits, make_account):
        tech = await make_account("technician")
        reply = await small_limits.post("/api/v1/incidents", json=NEW | {"tags": ["a" * 40] * 20}, headers=tech.headers)
        assert reply.status_code == 201


def raw_exchange(port: int, *parts: bytes, pause_s: float = 0.3, read_limit: int = 65536) -> bytes:
    """Send the parts on a real socket (pausing between them) and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for n, part in enumerate(parts):
            if n:
                time.sleep(pause_s)
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed before taking everything; its answer is read below
        received = b""
        while len(received) < read_limit:
            try:
                chunk = sock.recv(4096)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            received += chunk
        return received


class TestRealSocket:
    async def test_a_slow_header_block_past_uvicorns_limit_is_dropped_before_the_app(
        self, live_server, services, clean_state
    ):
        head = b"GET /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
        answer = await asyncio.to_thread(
            raw_exchange, live_server.port, head + b"p" * 20_000, b"p" * 20_000, b"\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert b"Invalid HTTP request" in answer

    async def test_a_large_header_block_arriving_at_once_is_431_from_the_app(self, live_server):
        request = b"GET /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"p" * 70_000 + b"\r\n\r\n"
        answer = await asyncio.to_thread(raw_exchange, live_server.port, request)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert b"RequestHeaderFieldsTooLarge" in answer

    async def test_headers_within_uvicorns_limit_but_over_the_apps_are_431(self, live_server):
        reply = await asyncio.to_thread(
            httpx.get, f"{live_server.url}/api/v1/incidents", headers={"X-Padding": "q" * 15_000}, timeout=10
        )
        assert reply.status_code == 431 and reply.json()["error"] == "RequestHeaderFieldsTooLarge"

    async def test_declared_huge_body_is_413_at_once_over_a_socket(self, live_server, services, clean_state):
        request = (
            b"POST /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100000000\r\n\r\n{"title": "'
        )
        answer = await asyncio.to_thread(raw_exchange, live_server.port, request)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"PayloadTooLarge" in answer
        assert await incident_count(services) == 0

    async def test_real_server_sends_the_security_headers(self, live_server):
        reply = await asyncio.to_thread(httpx.get, f"{live_server.url}/health/live", timeout=10)
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["content-security-policy"].startswith("default-src 'self'")
