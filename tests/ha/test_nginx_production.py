"""The shipped nginx configuration's production rules, with the real nginx in front of small real HTTP upstreams
that can answer or drop a request: a POST is re-sent to the next replica only with an Idempotency-Key, the
operations endpoints are internal only, the login and API rate limits answer 429, TLS is Mozilla intermediate,
and upstream connections are kept alive."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.fixtures.notify_receivers import make_pki
from tests.fixtures.processes import free_port, wait_until_serving
from tests.integration.test_nginx_proxy import nginx_config_for_test

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass
class Upstream:
    """A replica stand-in: `drop` closes every request unanswered (a replica killed mid-request)."""

    name: str
    drop: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    def serve(self) -> ThreadingHTTPServer:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                upstream.connections += 1
                super().setup()

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                upstream.requests.append((self.command, self.path))
                if upstream.drop:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                body = json.dumps({"replica": upstream.name}).encode()
                self.send_response(201 if self.command == "POST" else 200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@dataclass
class Proxy:
    https_url: str
    internal_url: str
    ca_file: Path
    first: Upstream
    second: Upstream

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(
            base_url=self.https_url, verify=ssl.create_default_context(cafile=str(self.ca_file)), timeout=15, **kwargs
        )


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[Proxy]:
    folder = tmp_path_factory.mktemp("nginx-prod")
    pki = make_pki(tmp_path_factory.mktemp("nginx-prod-pki"))
    first, second = Upstream("first", drop=True), Upstream("second")
    servers = [first.serve(), second.serve()]
    http_port, https_port, internal_port = free_port(), free_port(), free_port()
    config = nginx_config_for_test(
        folder,
        http_port=http_port,
        https_port=https_port,
        replicas=[first.port, second.port],
        pki=pki,
        internal_port=internal_port,
    )
    checked = subprocess.run([NGINX, "-t", "-p", str(folder), "-c", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    log_path = folder / "nginx.out"
    with log_path.open("wb") as log:
        nginx = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(config), "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        assert wait_until_serving(f"http://127.0.0.1:{internal_port}/health/live", nginx, timeout=30), (
            log_path.read_text()
        )
        yield Proxy(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{internal_port}", pki.ca_file, first, second)
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
        for server in servers:
            server.shutdown()


def test_a_post_with_an_idempotency_key_is_resent_to_the_next_replica_when_one_dies_mid_request(proxy):
    with proxy.client() as client:
        replies = [
            client.post("/api/v1/incidents", json={"n": n}, headers={"Idempotency-Key": f"k-{n}"}) for n in range(4)
        ]
    assert [r.status_code for r in replies] == [201] * 4
    assert {r.json()["replica"] for r in replies} == {"second"}
    assert ("POST", "/api/v1/incidents") in proxy.first.requests, "some attempts reached the dying replica"


def test_a_post_without_a_key_is_never_sent_twice(proxy):
    before_first, before_second = len(proxy.first.requests), len(proxy.second.requests)
    with proxy.client() as client:
        replies = [client.post("/api/v1/incidents", json={"n": n}) for n in range(4)]
    reached_first = len(proxy.first.requests) - before_first
    reached_second = len(proxy.second.requests) - before_second
    assert reached_first + reached_second == 4, "each POST reached exactly one replica"
    assert sum(r.status_code == 502 for r in replies) == reached_first
    assert sum(r.status_code == 201 for r in replies) == reached_second


def test_operations_endpoints_are_internal_only(proxy):
    with proxy.client() as client:
        for path in ("/metrics", "/health/ready", "/docs", "/openapi.json"):
            assert client.get(path).status_code == 404, path
        assert client.get("/health/live").status_code == 200
    for path in ("/metrics", "/health/ready", "/docs"):
        assert httpx.get(proxy.internal_url + path, timeout=10).status_code == 200, path


def test_login_floods_get_429_from_nginx(proxy):
    with proxy.client() as client:
        codes = [
            client.post("/api/v1/auth/token", data={"username": "x", "password": "y"}).status_code for _ in range(30)
        ]
    assert 429 in codes and codes[0] != 429


def test_tls_is_mozilla_intermediate_with_upstream_keepalive(proxy):
    port = int(proxy.https_url.rsplit(":", 1)[1])
    modern = ssl.create_default_context(cafile=str(proxy.ca_file))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        modern.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() in ("TLSv1.3", "TLSv1.2")
    legacy = ssl.create_default_context(cafile=str(proxy.ca_file))
    legacy.maximum_version = ssl.TLSVersion.TLSv1_2
    legacy.set_ciphers("ECDHE-ECDSA-AES128-SHA")  # CBC with SHA-1: outside the intermediate profile
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("127.0.0.1", port)) as raw, legacy.wrap_socket(raw, server_hostname="localhost"):
            pass
    connections, seen = proxy.second.connections, len(proxy.second.requests)
    with proxy.client() as client:
        for _ in range(10):
            assert client.get("/api/v1/incidents").status_code in (200, 502)
    served = len(proxy.second.requests) - seen
    assert served >= 5 and proxy.second.connections - connections < served, "upstream connections are reused"
