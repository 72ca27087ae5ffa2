"""A replica's life around the load balancer: on SIGTERM `prs serve` reports not-ready first while it still
serves, then stops; a second process on the same embedded vector-store folder refuses to start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import free_port, wait_until_serving

REPO_ROOT = Path(__file__).resolve().parents[2]
DRAIN_S = 8


@pytest.fixture
def server_env(app_settings, tmp_path) -> dict[str, str]:
    return {
        **os.environ,
        "PRS_DATABASE_URL": app_settings.database_url,
        "PRS_DATA_DIR": str(tmp_path / "data"),
        "PRS_LLM_NODES": f"http://127.0.0.1:{free_port()}",
        "PRS_EMBEDDED_WORKER": "true",
        "PRS_LOG_JSON": "false",
        "PRS_ENVIRONMENT": "test",
        "PRS_SHUTDOWN_DRAIN_S": str(DRAIN_S),
        "PRS_JWT_SECRET": "drain-test-secret-" + "x" * 32,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def test_sigterm_reports_not_ready_first_keeps_serving_then_exits_and_a_second_process_refuses_the_store(
    server_env, tmp_path
):
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
            cwd=REPO_ROOT,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_serving(f"{base}/health/live", server, timeout=180), log_path.read_text()[-3000:]
        # `prs worker` beside `prs serve` on embedded defaults would read a stale copy of the vector index.
        second = subprocess.run(
            [sys.executable, "-m", "backend.cli", "worker"],
            cwd=REPO_ROOT,
            env=server_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2
        assert "PRS_CHROMA_URL" in second.stderr and "in use by another process" in second.stderr

        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        ready = httpx.get(f"{base}/health/ready", timeout=10)
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        assert httpx.get(f"{base}/health/live", timeout=10).status_code == 200
        login = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": f"nobody-{uuid.uuid4().hex[:6]}", "password": "Wrong-Password-1"},
            timeout=10,
        )
        assert login.status_code == 401, "requests are still served while draining"
        assert time.monotonic() - signalled < DRAIN_S, "the checks above ran within the drain period"
        server.wait(timeout=60)
        assert time.monotonic() - signalled >= DRAIN_S - 0.5, "the process stopped before the drain period ended"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
