"""The shipped nginx configuration (nginx/nginx.conf + nginx/proxy.conf) in front of two real API replicas:
TLS, the client address behind a trusted proxy, login limits shared across replicas, and a replica killed."""

from __future__ import annotations

import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import PASSWORD
from tests.fixtures.notify_receivers import make_pki
from tests.fixtures.processes import free_port, wait_until_serving

REPO_ROOT = Path(__file__).resolve().parents[2]
NGINX_DIR = REPO_ROOT / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.asyncio  # nginx itself comes from deploy/local/install.sh (Debian nginx-light)


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"nginx/nginx.conf no longer contains {old!r}: update this test with it"
    return text.replace(old, new)


def nginx_config_for_test(
    folder: Path, *, http_port: int, https_port: int, replicas: list[int], pki, internal_port: int | None = None
) -> Path:
    """nginx/nginx.conf as shipped, with loopback ports, the test certificate and files in `folder`."""
    internal_port = internal_port or free_port()
    text = (NGINX_DIR / "nginx.conf").read_text()
    text = _replace(text, "include mime.types;", "include /etc/nginx/mime.types;")
    text = _replace(text, "/var/log/nginx/access.log", str(folder / "access.log"))
    text = _replace(text, "/var/log/nginx/error.log", str(folder / "error.log"))
    for name, port in (("api1", replicas[0]), ("api2", replicas[1]), ("api3", replicas[0])):
        text = _replace(text, f"server {name}:8000", f"server 127.0.0.1:{port}")
    text = _replace(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = _replace(text, "listen 8081;", f"listen 127.0.0.1:{internal_port};")
    text = _replace(text, "/etc/nginx/tls/prs.crt", str(pki.cert_file))
    text = _replace(text, "/etc/nginx/tls/prs.key", str(pki.key_file))
    # Which replica answered (tests only), and proxy.conf from the repository as shipped.
    text = _replace(
        text,
        "include proxy.conf;",
        f"include {NGINX_DIR / 'proxy.conf'};\n        add_header X-Upstream $upstream_addr always;",
    )
    head = f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
    if os.geteuid() == 0:
        head += "user root;\n"  # the workers write request bodies to temp files under `folder`
    path = folder / "nginx.conf"
    path.write_text(head + text)
    return path


@dataclass
class Replica:
    port: int
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@dataclass
class ProxiedSystem:
    https_url: str
    http_url: str
    ca_file: Path
    replicas: list[Replica]

    def client(self, address: str | None = None) -> httpx.AsyncClient:
        """A client from a loopback address of its own (not nginx's 127.0.0.1: each test starts with a clean
        login count), trusting the test CA."""
        address = address or f"127.{random.randint(10, 250)}.{random.randint(0, 250)}.{random.randint(2, 250)}"
        context = ssl.create_default_context(cafile=str(self.ca_file))
        transport = httpx.AsyncHTTPTransport(verify=context, local_address=address)
        return httpx.AsyncClient(base_url=self.https_url, transport=transport, timeout=30)


def _wait_until_up(url: str, process: subprocess.Popen, log_path: Path, *, verify=True) -> None:
    if not wait_until_serving(url, process, timeout=180, verify=verify):
        raise RuntimeError(f"{url} did not come up:\n" + log_path.read_text()[-3000:])


@pytest.fixture(scope="module")
def proxied(app_settings, tmp_path_factory) -> Iterator[ProxiedSystem]:
    folder = tmp_path_factory.mktemp("nginx")
    pki = make_pki(tmp_path_factory.mktemp("nginx-pki"))
    env = {
        **os.environ,
        "PRS_DATABASE_URL": app_settings.database_url,
        "PRS_LLM_NODES": f"http://127.0.0.1:{free_port()}",
        "PRS_EMBEDDED_WORKER": "false",
        "PRS_LOG_JSON": "false",
        "PRS_ENVIRONMENT": "test",
        "PRS_JWT_SECRET": "nginx-test-secret-" + "x" * 32,
        "PRS_TRUSTED_PROXIES": "127.0.0.1/32",
        "PRS_RATE_LIMIT_STORAGE_URI": "redis://127.0.0.1:6379",
        "PRS_RATE_LIMIT_KEY_PREFIX": f"prs-nginx-test-{uuid.uuid4().hex[:8]}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    replicas: list[Replica] = []
    nginx: subprocess.Popen | None = None
    try:
        for n in range(2):
            port, data_dir = free_port(), folder / f"replica-{n}"
            data_dir.mkdir()
            log_path = data_dir / "server.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "backend.cli", "serve", "--port", str(port), "--no-worker"],
                    cwd=REPO_ROOT,
                    env=env | {"PRS_DATA_DIR": str(data_dir)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            replicas.append(Replica(port, process, log_path))
        for replica in replicas:
            _wait_until_up(f"http://127.0.0.1:{replica.port}/health/live", replica.process, replica.log_path)
        http_port, https_port = free_port(), free_port()
        config = nginx_config_for_test(
            folder, http_port=http_port, https_port=https_port, replicas=[r.port for r in replicas], pki=pki
        )
        checked = subprocess.run([NGINX, "-t", "-p", str(folder), "-c", str(config)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        nginx_log = folder / "nginx.out"
        with nginx_log.open("wb") as log:
            nginx = subprocess.Popen(
                [NGINX, "-p", str(folder), "-c", str(config), "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT
            )
        _wait_until_up(
            f"https://127.0.0.1:{https_port}/health/live",
            nginx,
            nginx_log,
            verify=ssl.create_default_context(cafile=str(pki.ca_file)),
        )
        yield ProxiedSystem(
            https_url=f"https://127.0.0.1:{https_port}",
            http_url=f"http://127.0.0.1:{http_port}",
            ca_file=pki.ca_file,
            replicas=replicas,
        )
    finally:
        if nginx is not None and nginx.poll() is None:
            nginx.terminate()
            nginx.wait(timeout=30)
        for replica in replicas:
            replica.stop()


async def login(client: httpx.AsyncClient, username: str, password: str, **headers) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": username, "password": password}, headers=headers)


async def test_plain_http_is_redirected_to_https(proxied):
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"{proxied.http_url}/health/live")
    assert reply.status_code == 301
    assert reply.headers["location"].startswith("https://")


async def test_the_audit_log_records_the_real_client_behind_nginx_not_a_forged_header(proxied, make_account, services):
    account = await make_account("reporter")
    address = f"127.{random.randint(10, 250)}.{random.randint(0, 250)}.{random.randint(2, 250)}"
    async with proxied.client(address) as client:
        reply = await login(client, account.username, "Wrong-Password-123", **{"X-Forwarded-For": "203.0.113.9"})
    assert reply.status_code == 401
    assert reply.headers["strict-transport-security"].startswith("max-age=")
    async with services.pool.acquire() as conn:
        seen = await conn.fetchval(
            "SELECT client_ip FROM audit_log WHERE action = 'auth.login_failed' ORDER BY id DESC LIMIT 1"
        )
    assert str(seen) == address


async def test_the_login_limit_holds_across_replicas_behind_nginx(proxied, make_account):
    account = await make_account("reporter")
    served_by = set()
    async with proxied.client() as client:
        for n in range(5):
            reply = await login(client, account.username, f"Guess-{n}-Password")
            assert reply.status_code == 401
            served_by.add(reply.headers["x-upstream"])
        limited = await login(client, account.username, PASSWORD)
    assert len(served_by) == 2, "round robin sent the attempts to both replicas"
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert limited.json()["reason"] == "login_rate_limited" and "access_token" not in limited.text


async def test_the_suggestion_stream_flows_through_nginx_while_the_suggestion_is_pending(proxied, make_account):
    account = await make_account("technician")
    async with proxied.client() as client:
        token = (await login(client, account.username, PASSWORD)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        created = await client.post(
            "/api/v1/incidents",
            headers=headers,
            json={
                "title": "Sensor de presión sin lectura",
                "description": "El sensor P-7 no da lectura desde las 6:00.",
                "area": "maintenance",
                "priority": "low",
            },
        )
        assert created.status_code == 201, created.text
        # No LLM node answers: the stream sends its first event (the pending state) at once and stays open.
        async with client.stream(
            "GET",
            f"/api/v1/incidents/{created.json()['id']}/suggestion/stream",
            headers=headers,
            timeout=httpx.Timeout(30, read=15),
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            first = await anext(stream.aiter_lines())
    assert first == "event: status"


async def test_the_live_incident_stream_flows_through_nginx_from_any_replica(proxied, make_account):
    """The web pages' live stream: unbuffered through nginx, and fed by changes made on either replica."""
    account = await make_account("technician")
    async with proxied.client() as client:
        token = (await login(client, account.username, PASSWORD)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with client.stream(
            "GET", "/api/v1/live/incidents", headers=headers, timeout=httpx.Timeout(30, read=15)
        ) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert await anext(lines) == "event: ready"
            titles = [f"Cinta C-{n} parada {uuid.uuid4().hex[:6]}" for n in range(2)]
            created = [
                await client.post(
                    "/api/v1/incidents",
                    headers=headers,
                    json={
                        "title": title,
                        "description": "La cinta se para sola cada pocos minutos.",
                        "area": "production",
                        "priority": "medium",
                    },
                )
                for title in titles
            ]
            ids = {reply.json()["id"] for reply in created}
            seen = set()
            async for line in lines:
                if line.startswith("data: ") and '"incident.created"' in line:
                    seen.add(json.loads(line[6:])["incident_id"])
                    if seen == ids:
                        break
    assert seen == ids


async def test_a_killed_replica_loses_no_request_and_creates_nothing_twice(proxied, make_account, services):
    account = await make_account("technician")
    proxied.replicas[1].stop()
    title = f"Compresor C-2 sin presión {uuid.uuid4().hex[:6]}"
    async with proxied.client() as client:
        token = (await login(client, account.username, PASSWORD)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        replies = [await client.get("/api/v1/incidents", headers=headers) for _ in range(6)]
        created = await client.post(
            "/api/v1/incidents",
            headers=headers,
            json={
                "title": title,
                "description": "El compresor C-2 no levanta presión tras el arranque.",
                "area": "maintenance",
                "priority": "high",
            },
        )
    assert [r.status_code for r in replies] == [200] * 6
    assert created.status_code == 201, created.text
    async with services.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM incidents WHERE title = $1", title) == 1
