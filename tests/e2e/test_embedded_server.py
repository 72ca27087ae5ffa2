"""The product as an operator runs it: `prs` processes on embedded defaults, driven over real HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import Server

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "Admin-Password-2026"


def prs(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def embedded_env(tmp_path, database_url, llm_node_url):
    base, _, _ = database_url.rpartition("/")
    name = f"prs_e2e_{os.getpid()}"
    subprocess.run(["psql", f"{base}/postgres", "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True)
    env = {
        **os.environ,
        "PRS_DATABASE_URL": f"{base}/{name}",
        "PRS_DATA_DIR": str(tmp_path / "data"),
        "PRS_LLM_NODES": llm_node_url,
        "PRS_LLM_MAX_TOKENS": "24",
        "PRS_LOG_JSON": "true",
        "PRS_SIMILAR_MIN_SCORE": "0.2",
    }
    yield env
    subprocess.run(["psql", f"{base}/postgres", "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=False)


def login(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    reply = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def test_operator_flow_from_migrate_to_grounded_suggestion_and_reindex(embedded_env, tmp_path):
    migrate = prs(embedded_env, "migrate")
    assert migrate.returncode == 0, migrate.stderr
    assert prs(embedded_env, "migrate").returncode == 0, "migrate twice is harmless"
    weak = prs(embedded_env, "user", "create", "--username", "admin", "--password", "short", "--role", "admin")
    assert weak.returncode == 2 and "password" in weak.stderr
    made = prs(embedded_env, "user", "create", "--username", "admin", "--password", ADMIN_PASSWORD, "--role", "admin")
    assert made.returncode == 0, made.stderr
    demo = prs(embedded_env, "demo", "load")
    assert demo.returncode == 0, demo.stderr

    server = Server(embedded_env, tmp_path / "server.log")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            headers = login(client, "admin", ADMIN_PASSWORD)
            assert client.get("/docs").status_code == 200
            report = {
                "title": "Motor de la cinta de la línea 3 se calienta, alarma E-4021",
                "description": "La cinta transportadora de la línea 3 se para por sobretemperatura del motor.",
                "area": "production",
                "priority": "high",
            }
            created = client.post("/api/v1/incidents", json=report, headers=headers)
            assert created.status_code == 201, created.text
            similar_before = [(s["incident_id"], round(s["score"], 4)) for s in created.json()["similar"]]
            assert similar_before, "the demo knowledge base has conveyor-motor incidents"
            incident_id = created.json()["id"]
            deadline = time.monotonic() + 360
            while time.monotonic() < deadline:
                suggestion = client.get(f"/api/v1/incidents/{incident_id}/suggestion", headers=headers).json()
                if suggestion["status"] == "ready":
                    break
                time.sleep(0.5)
            assert suggestion["status"] == "ready", suggestion
            assert set(suggestion["citations"]) <= set(suggestion["retrieved"])
            metrics = client.get("/metrics").text
            assert 'prs_suggestions_total{outcome="ready"}' in metrics
    finally:
        server.stop()

    shutil.rmtree(Path(embedded_env["PRS_DATA_DIR"]) / "chroma")
    rebuilt = prs(embedded_env, "reindex")
    assert rebuilt.returncode == 0, rebuilt.stderr
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            headers = login(client, "admin", ADMIN_PASSWORD)
            again = client.get(f"/api/v1/incidents/{incident_id}/similar", headers=headers).json()
            assert [(s["incident_id"], round(s["score"], 4)) for s in again] == similar_before
    finally:
        server.stop()
