"""The admin API of backups: admins only, clear 409 without storage and 503 with storage down, never a 5xx."""

from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest_asyncio

from backend.auth.schemas import UserCreate
from backend.context import system_context
from backend.main import create_app
from backups.wiring import Backups, build_backup_service
from tests.fixtures.backups import BackupWorld
from tests.fixtures.processes import free_port

PASSWORD = "Correct-Horse-9-Battery"


@pytest_asyncio.fixture
async def client(backup_world: BackupWorld) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(backup_world.settings, container=backup_world.services, run_worker=False)
    transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 4444))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def _headers(world: BackupWorld, http: httpx.AsyncClient, role: str) -> dict[str, str]:
    await world.services.auth.create_user(
        system_context("test"), UserCreate(username=role, password=PASSWORD, role=role)
    )
    reply = await http.post("/api/v1/auth/token", data={"username": role, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def test_an_admin_starts_a_backup_lists_it_and_reads_the_last_verification(backup_world, client):
    admin = await _headers(backup_world, client, "admin")
    assert (await client.get("/api/v1/backups/verification", headers=admin)).status_code == 404

    created = await client.post("/api/v1/backups", json={"tier": "weekly"}, headers=admin)
    assert created.status_code == 201, created.text
    backup_id = created.json()["id"]
    listed = (await client.get("/api/v1/backups", headers=admin)).json()
    assert [(b["id"], b["tier"], b["verified"]) for b in listed] == [(backup_id, "weekly", None)]
    await backup_world.services.backups.service.verify(backup_id)

    verification = await client.get("/api/v1/backups/verification", headers=admin)
    assert verification.status_code == 200
    assert (verification.json()["backup_id"], verification.json()["status"]) == (backup_id, "succeeded")
    runs = (await client.get("/api/v1/backups/runs", headers=admin)).json()
    assert [(r["operation"], r["trigger"]) for r in runs] == [("verify", "cli"), ("create", "api")]
    async with backup_world.services.pool.acquire() as conn:
        actor = await conn.fetchval("SELECT actor_name FROM audit_log WHERE action = 'backup.created'")
    assert actor == "admin"


async def test_bad_tier_is_422_naming_the_field_and_people_below_admin_get_403(backup_world, client):
    admin = await _headers(backup_world, client, "admin")
    supervisor = await _headers(backup_world, client, "supervisor")

    bad = await client.post("/api/v1/backups", json={"tier": "yearly"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["field"] == "tier"
    for method, path in (
        ("GET", "/api/v1/backups"),
        ("POST", "/api/v1/backups"),
        ("GET", "/api/v1/backups/verification"),
        ("GET", "/api/v1/backups/runs"),
    ):
        assert (await client.request(method, path, json={}, headers=supervisor)).status_code == 403
    assert (await client.get("/api/v1/backups")).status_code == 401


async def test_without_storage_configured_the_endpoints_answer_409_and_with_storage_down_503(backup_world, client):
    admin = await _headers(backup_world, client, "admin")
    configured = backup_world.services.backups
    try:
        backup_world.services.backups = Backups(metrics=configured.metrics, service=None, anchors=None)
        for method, path in (("GET", "/api/v1/backups"), ("POST", "/api/v1/backups")):
            reply = await client.request(method, path, json={}, headers=admin)
            assert reply.status_code == 409
            assert reply.json()["error"] == "Conflict" and "PRS_BACKUP_S3_ENDPOINT" in reply.json()["detail"]

        down = build_backup_service(
            backup_world.settings_with(backup_s3_endpoint=f"127.0.0.1:{free_port()}", backup_s3_timeout_s=1.0),
            pool=backup_world.services.pool,
            clock=backup_world.clock,
            vector_store=None,
            metrics=None,
        )
        backup_world.services.backups = Backups(metrics=configured.metrics, service=down, anchors=None)
        for method, path in (("GET", "/api/v1/backups"), ("POST", "/api/v1/backups")):
            reply = await client.request(method, path, json={}, headers=admin)
            assert reply.status_code == 503
            assert reply.json()["error"] == "ServiceUnavailable" and "unreachable" in reply.json()["detail"]
    finally:
        backup_world.services.backups = configured
