"""The HA failover drill without Docker (deploy/ha/drill.sh): the topology of docker-compose.ha.yml on this
machine, in a temporary folder with ports of its own, under a steady load of incident reports (each with an
Idempotency-Key) and reads through nginx, while an API replica, an LLM node, a worker mid-job and the Postgres
primary are killed one after another. Then it checks that every incident that got a 201 exists exactly once, that
every suggestion finished once, and that the audit chain verifies. The last stdout line is the JSON report.

Profiles: `full` (the drill), `short` (tests/ha: one replica killed, the primary failed over), `baseline` (the same
load against one `prs serve` on embedded defaults, no faults, for comparison). Needs: patroni, etcd, nginx,
redis-server, PostgreSQL 15 binaries (deploy/local/install.sh), root (PostgreSQL runs as the `postgres` user).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PRS_DRILL_PG_BIN", "/usr/lib/postgresql/15/bin"))
PYTHON = sys.executable
AREAS = ("production", "maintenance", "quality", "logistics")


@dataclass(frozen=True)
class Profile:
    api_replicas: int
    workers: int
    llm_nodes: int
    load_s: float
    faults: tuple[tuple[float, str], ...]  # (seconds into the load, fault)
    writers: int = 3
    readers: int = 1
    write_interval_s: float = 0.5  # per writer, between the end of one report and the next
    settle_s: float = 240.0  # longest wait for the suggestion backlog to finish after the load


PROFILES = {
    "full": Profile(
        api_replicas=3,
        workers=2,
        llm_nodes=2,
        load_s=200,
        faults=((25, "api_replica"), (60, "llm_node"), (95, "worker"), (135, "db_primary")),
    ),
    "short": Profile(
        api_replicas=2,
        workers=1,
        llm_nodes=1,
        load_s=70,
        faults=((12, "api_replica"), (30, "db_primary")),
        settle_s=120,
    ),
    "baseline": Profile(api_replicas=1, workers=0, llm_nodes=1, load_s=200, faults=()),
}


def log(message: str) -> None:
    print(f"[drill {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http(url: str, *, timeout: float, process: subprocess.Popen | None = None, verify=True, accept=(200,)) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: its process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=3, verify=verify).status_code in accept:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


class Processes:
    """Every process the drill started, each in a session of its own; all of them are stopped at the end."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.started: dict[str, subprocess.Popen] = {}

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        user: str | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen:
        log_file = (self.folder / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd or REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
        self.started[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL a process and everything in its session (Patroni and its PostgreSQL)."""
        process = self.started[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def kill_postgres(self, data_dir: Path) -> None:
        """SIGKILL a PostgreSQL server and its backends: Patroni starts it in a session of its own, so it outlives
        a killed Patroni (on a real machine both go together)."""
        try:
            pid = int((data_dir / "postmaster.pid").read_text().split()[0])
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
            pass

    def stop_all(self) -> None:
        for process in self.started.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for process in self.started.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in self.started.values():
            # PostgreSQL children of a Patroni killed earlier may outlive it in its session.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@dataclass
class Topology:
    """Where everything of one drill run listens."""

    folder: Path
    profile: Profile
    processes: Processes
    base_url: str = ""
    verify: object = True
    database_url: str = ""
    patroni_rest: dict[str, int] = field(default_factory=dict)
    api_names: list[str] = field(default_factory=list)
    worker_names: list[str] = field(default_factory=list)
    llm_names: list[str] = field(default_factory=list)
    app_env: dict[str, str] = field(default_factory=dict)


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "prs.crt", folder / "prs.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def start_etcd(top: Topology) -> str:
    client, peer = free_port(), free_port()
    etcd = shutil.which("etcd") or "/usr/bin/etcd"
    top.processes.start(
        "etcd",
        [
            etcd,
            "--name",
            "drill",
            "--data-dir",
            str(top.folder / "etcd"),
            "--listen-client-urls",
            f"http://127.0.0.1:{client}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{client}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"drill=http://127.0.0.1:{peer}",
        ],
    )
    wait_http(f"http://127.0.0.1:{client}/health", timeout=60, process=top.processes.started["etcd"])
    return f"127.0.0.1:{client}"


def start_patroni(top: Topology, etcd_hosts: str, password: str) -> list[int]:
    """Two Patroni nodes from deploy/ha/patroni/patroni.yml, as the postgres user; returns their Postgres ports."""
    postgres = pwd.getpwnam("postgres")
    config = top.folder / "patroni.yml"
    shutil.copyfile(REPO_ROOT / "deploy/ha/patroni/patroni.yml", config)
    config.chmod(0o644)
    ports = []
    for n in (1, 2):
        node = top.folder / f"pg{n}"
        node.mkdir(mode=0o700)
        os.chown(node, postgres.pw_uid, postgres.pw_gid)
        pg_port, rest_port = free_port(), free_port()
        env = {
            "PATH": f"{PG_BIN}:/usr/bin:/bin",
            "HOME": str(node),
            "LANG": "C.UTF-8",
            "PATRONI_NAME": f"pg{n}",
            "PATRONI_ETCD3_HOSTS": etcd_hosts,
            "PATRONI_RESTAPI_LISTEN": f"127.0.0.1:{rest_port}",
            "PATRONI_RESTAPI_CONNECT_ADDRESS": f"127.0.0.1:{rest_port}",
            "PATRONI_POSTGRESQL_LISTEN": f"127.0.0.1:{pg_port}",
            "PATRONI_POSTGRESQL_CONNECT_ADDRESS": f"127.0.0.1:{pg_port}",
            "PATRONI_POSTGRESQL_DATA_DIR": str(node / "data"),
            "PATRONI_POSTGRESQL_PGPASS": str(node / "pgpass"),
            "PATRONI_SUPERUSER_PASSWORD": password,
            "PATRONI_REPLICATION_PASSWORD": password,
        }
        top.processes.start(f"pg{n}", ["patroni", str(config)], env=env, user="postgres", cwd=node)
        top.patroni_rest[f"pg{n}"] = rest_port
        ports.append(pg_port)
        if n == 1:
            wait_http(f"http://127.0.0.1:{rest_port}/primary", timeout=120, process=top.processes.started["pg1"])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        roles = cluster_roles(top)
        if sorted(roles.values()) == ["leader", "sync_standby"]:
            return ports
        time.sleep(1)
    raise RuntimeError(f"no synchronous standby within 180 s: {cluster_roles(top)}")


def cluster_roles(top: Topology) -> dict[str, str]:
    """Member name -> role ('leader', 'sync_standby', 'replica') as Patroni reports it (running members only)."""
    for name, port in top.patroni_rest.items():
        if top.processes.started[name].poll() is not None:
            continue
        try:
            members = httpx.get(f"http://127.0.0.1:{port}/cluster", timeout=3).json()["members"]
        except (httpx.HTTPError, ValueError, KeyError):
            continue
        return {m["name"]: m["role"] for m in members if m.get("state") in ("running", "streaming")}
    return {}


def app_environment(
    top: Topology, *, database_url: str, read_url: str, llm_urls: list[str], chroma_url: str, redis_url: str
) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PRS_DATABASE_URL": database_url,
        "PRS_DATABASE_READ_URL": read_url,
        "PRS_LLM_NODES": ",".join(llm_urls),
        "PRS_CHROMA_URL": chroma_url,
        "PRS_RATE_LIMIT_STORAGE_URI": redis_url,
        "PRS_RATE_LIMIT_KEY_PREFIX": f"drill-{uuid.uuid4().hex[:6]}",
        "PRS_TRUSTED_PROXIES": "127.0.0.1/32",
        "PRS_JWT_SECRET": secrets.token_urlsafe(40),
        "PRS_NOTIFY_SECRET_KEY": secrets.token_urlsafe(40),
        "PRS_EMBEDDED_WORKER": "false",
        "PRS_LOG_JSON": "false",
        "PRS_LOG_LEVEL": "WARNING",
        "PRS_ENVIRONMENT": "production",
        "PRS_LLM_MAX_TOKENS": "12",
        "PRS_LLM_THREADS": "1",
        "PRS_LLM_CONTEXT": "1024",
        "PRS_LLM_TIMEOUT_S": "60",
        "PRS_LLM_NODE_COOLDOWN_S": "3",
        "PRS_LLM_HEALTH_INTERVAL_S": "5",
        "PRS_SUGGESTION_CASES": "2",
        "PRS_SUGGESTION_LEASE_S": "10",
        "PRS_SUGGESTION_RETRY_BASE_S": "1",
        "PRS_SUGGESTION_RETRY_MAX_S": "5",
        "PRS_SUGGESTION_BACKLOG_MAX_AGE_S": "45",
        "PRS_DATABASE_POOL_MAX": "6",
        "PRS_SHUTDOWN_DRAIN_S": "0",
        "PRS_LOGIN_RATE_LIMIT": "1000/minute",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }


def prs(top: Topology, *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [PYTHON, "-m", "backend.cli", *args],
        cwd=REPO_ROOT,
        env=top.app_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"prs {' '.join(args[:2])} failed: {done.stderr[-2000:]}")
    return done.stdout


def start_app_processes(top: Topology, *, embedded: bool) -> None:
    """LLM nodes, API replicas and workers; waits until each serves."""
    for n, name in enumerate(top.llm_names):
        port = int(top.app_env["PRS_LLM_NODES"].split(",")[n].rsplit(":", 1)[1])
        top.processes.start(
            name,
            [PYTHON, "-m", "backend.cli", "llm", "serve", "--port", str(port)],
            env=top.app_env | {"PRS_DATA_DIR": str(top.folder / name)},
        )
    api_ports = []
    for name in top.api_names:
        port = free_port()
        api_ports.append(port)
        argv = [PYTHON, "-m", "backend.cli", "serve", "--port", str(port)]
        env = top.app_env | {"PRS_DATA_DIR": str(top.folder / name)}
        if embedded:
            env["PRS_EMBEDDED_WORKER"] = "true"
        else:
            argv.append("--no-worker")
        top.processes.start(name, argv, env=env)
    for name in top.worker_names:
        top.processes.start(
            name, [PYTHON, "-m", "backend.cli", "worker"], env=top.app_env | {"PRS_DATA_DIR": str(top.folder / name)}
        )
    for name, port in zip(top.api_names, api_ports):
        wait_http(f"http://127.0.0.1:{port}/health/live", timeout=600, process=top.processes.started[name])
    for n, name in enumerate(top.llm_names):
        wait_http(
            top.app_env["PRS_LLM_NODES"].split(",")[n] + "/api/version",
            timeout=600,
            process=top.processes.started[name],
        )
    top.app_env["DRILL_API_PORTS"] = ",".join(map(str, api_ports))


def start_nginx(top: Topology, api_ports: list[int]) -> None:
    cert, key = make_certificate(top.folder)
    text = (REPO_ROOT / "nginx/nginx.conf").read_text()
    https, http, internal = free_port(), free_port(), free_port()
    replacements = [
        ("include mime.types;", "include /etc/nginx/mime.types;"),
        ("/var/log/nginx/access.log", str(top.folder / "logs/nginx-access.log")),
        ("/var/log/nginx/error.log", str(top.folder / "logs/nginx-error.log")),
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
        ("listen 8081;", f"listen 127.0.0.1:{internal};"),
        ("/etc/nginx/tls/prs.crt", str(cert)),
        ("/etc/nginx/tls/prs.key", str(key)),
        ("include proxy.conf;", f"include {REPO_ROOT / 'nginx/proxy.conf'};"),
    ]
    for old, new in replacements:
        if old not in text:
            raise RuntimeError(f"nginx/nginx.conf no longer contains {old!r}: update deploy/ha/drill.py")
        text = text.replace(old, new)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("server api") and ":8000" in stripped:
            if not api_ports:
                continue  # fewer replicas in this profile
            line = line.replace(stripped.split()[1], f"127.0.0.1:{api_ports.pop(0)}")
        lines.append(line)
    config = top.folder / "nginx.conf"
    config.write_text(f"pid {top.folder / 'nginx.pid'};\nuser root;\n" + "\n".join(lines) + "\n")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    checked = subprocess.run([nginx, "-t", "-p", str(top.folder), "-c", str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise RuntimeError(checked.stderr)
    top.processes.start("nginx", [nginx, "-p", str(top.folder), "-c", str(config), "-g", "daemon off;"])
    top.base_url = f"https://127.0.0.1:{https}"
    top.verify = ssl.create_default_context(cafile=str(cert))
    wait_http(f"{top.base_url}/health/live", timeout=60, verify=top.verify)


# --- load ---------------------------------------------------------------------------------------------------------


@dataclass
class Attempt:
    started: float
    ended: float
    ok: bool


@dataclass
class Load:
    """What the clients saw: one entry per logical request, one per attempt, and the 201s by key."""

    latencies_ms: list[float] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)  # idempotency key -> incident id
    failed: int = 0
    requests: int = 0


async def send(client: httpx.AsyncClient, load: Load, method: str, path: str, *, deadline_s: float = 90, **kwargs):
    """One logical request, retried (same Idempotency-Key) on errors, 502/503/504 until it succeeds or times out."""
    started = time.monotonic()
    load.requests += 1
    delay = 0.2
    while True:
        attempt_start = time.monotonic()
        try:
            reply = await client.request(method, path, **kwargs)
            ok = reply.status_code < 500
        except httpx.HTTPError:
            reply, ok = None, False
        load.attempts.append(Attempt(attempt_start, time.monotonic(), ok))
        if ok:
            load.latencies_ms.append((time.monotonic() - started) * 1000)
            return reply
        if time.monotonic() - started > deadline_s:
            load.failed += 1
            return reply
        retry_after = float(reply.headers.get("retry-after", 0)) if reply is not None else 0
        await asyncio.sleep(min(max(delay, min(retry_after, 2.0)), 2.0))
        delay = min(delay * 2, 2.0)


async def writer(
    client: httpx.AsyncClient, load: Load, headers: dict, stop: asyncio.Event, number: int, interval: float
) -> None:
    sequence = 0
    while not stop.is_set():
        sequence += 1
        key = f"drill-{number}-{sequence}-{uuid.uuid4().hex[:8]}"
        body = {
            "title": f"Fallo en línea {number} [{key}]",
            "area": AREAS[sequence % len(AREAS)],
            "description": f"La máquina {sequence} de la línea {number} se detiene con alarma E-{4000 + sequence}.",
            "priority": "low",
        }
        reply = await send(
            client, load, "POST", "/api/v1/incidents", json=body, headers=headers | {"Idempotency-Key": key}
        )
        if reply is not None and reply.status_code == 201:
            load.accepted[key] = reply.json()["id"]
        elif reply is not None and reply.status_code < 500:
            raise RuntimeError(f"an incident report was refused: {reply.status_code} {reply.text[:300]}")
        await asyncio.sleep(interval)


async def reader(client: httpx.AsyncClient, load: Load, headers: dict, stop: asyncio.Event) -> None:
    while not stop.is_set():
        reply = await send(client, load, "GET", "/api/v1/incidents?limit=20", headers=headers)
        if reply is not None and reply.status_code not in (200,) and reply.status_code < 500:
            raise RuntimeError(f"a read was refused: {reply.status_code} {reply.text[:300]}")
        await asyncio.sleep(0.5)


def recovery_seconds(load: Load, fault_at: float, window_end: float) -> float:
    """Seconds from the fault until requests succeed again: to the first success after the last failed attempt."""
    # Attempts that ran within this fault's window; one still running at the next fault belongs to that one.
    window = [a for a in load.attempts if a.ended >= fault_at and a.started < window_end and a.ended < window_end]
    failures = [a.ended for a in window if not a.ok]
    if not failures:
        return 0.0
    last_failure = max(failures)
    successes = [a.ended for a in load.attempts if a.ok and a.started >= last_failure]
    return round((min(successes) if successes else last_failure) - fault_at, 2)


async def inject(top: Topology, fault: str) -> None:
    processes = top.processes
    if fault == "api_replica":
        processes.kill(top.api_names[0])
    elif fault == "llm_node":
        processes.kill(top.llm_names[0])
    elif fault == "worker":
        await kill_worker_mid_job(top)
    elif fault == "db_primary":
        leader = next(name for name, role in cluster_roles(top).items() if role == "leader")
        processes.kill(leader)  # Patroni and its PostgreSQL: the machine is gone
        processes.kill_postgres(top.folder / leader / "data")
        log(f"killed the Postgres primary {leader}")
        return
    log(f"fault injected: {fault}")


async def kill_worker_mid_job(top: Topology) -> None:
    """SIGKILL the worker that holds an LLM slot (a generation in progress); any worker after 30 s."""
    import asyncpg

    pids = {top.processes.started[name].pid: name for name in top.worker_names}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(top.database_url)
            try:
                holders = await conn.fetch("SELECT holder FROM llm_slots WHERE incident_id IS NOT NULL")
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError):
            holders = []
        for row in holders:
            pid = int(str(row["holder"]).split(":")[1])
            if pid in pids:
                top.processes.kill(pids[pid])
                log(f"killed {pids[pid]} in the middle of a generation")
                return
        await asyncio.sleep(0.2)
    top.processes.kill(top.worker_names[0])
    log(f"killed {top.worker_names[0]} (no generation seen in progress)")


async def run_load(top: Topology, profile: Profile, headers: dict) -> tuple[Load, dict[str, float], float]:
    load, stop = Load(), asyncio.Event()
    async with httpx.AsyncClient(base_url=top.base_url, verify=top.verify, timeout=httpx.Timeout(30)) as client:
        started = time.monotonic()
        tasks = [
            asyncio.create_task(writer(client, load, headers, stop, n, profile.write_interval_s))
            for n in range(profile.writers)
        ]
        tasks += [asyncio.create_task(reader(client, load, headers, stop)) for _ in range(profile.readers)]
        fault_times: list[tuple[str, float]] = []
        for offset, fault in profile.faults:
            await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
            fault_times.append((fault, time.monotonic()))
            await inject(top, fault)
        await asyncio.sleep(max(0.0, started + profile.load_s - time.monotonic()))
        stop.set()
        await asyncio.gather(*tasks)
        duration = time.monotonic() - started
    recovery = {}
    for n, (fault, at) in enumerate(fault_times):
        window_end = fault_times[n + 1][1] if n + 1 < len(fault_times) else started + duration
        recovery[fault] = recovery_seconds(load, at, window_end)
    return load, recovery, duration


# --- checks ---------------------------------------------------------------------------------------------------------


async def check_outcome(top: Topology, load: Load, settle_s: float) -> dict:
    """Lost and duplicated incidents, suggestions finished once (after the backlog settles), the audit chain."""
    import asyncpg

    conn = await asyncpg.connect(top.database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, substring(title from '\\[(drill-[^]]+)\\]') AS key FROM incidents "
            "WHERE title LIKE 'Fallo en línea %'"
        )
        by_key: dict[str, list[int]] = {}
        for row in rows:
            by_key.setdefault(row["key"], []).append(row["id"])
        lost = sum(1 for key, incident_id in load.accepted.items() if incident_id not in by_key.get(key, []))
        duplicates = sum(len(ids) - 1 for ids in by_key.values() if len(ids) > 1)
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            waiting = await conn.fetchval("SELECT count(*) FROM suggestions WHERE status IN ('pending', 'generating')")
            if waiting == 0:
                break
            await asyncio.sleep(2)
        states = dict(await conn.fetch("SELECT status, count(*) FROM suggestions GROUP BY status"))
        without = await conn.fetchval(
            "SELECT count(*) FROM incidents i WHERE NOT EXISTS (SELECT 1 FROM suggestions s WHERE s.incident_id = i.id)"
        )
        ready_twice = await conn.fetchval(
            "SELECT count(*) FROM (SELECT resource_id FROM audit_log WHERE action = 'suggestion.ready' "
            "GROUP BY resource_id HAVING count(*) > 1) twice"
        )
    finally:
        await conn.close()
    verified = subprocess.run(
        [PYTHON, "-m", "backend.cli", "audit", "verify"],
        cwd=REPO_ROOT,
        env=top.app_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    audit = json.loads(verified.stdout.strip().splitlines()[-1]) if verified.stdout.strip() else {}
    unfinished = states.get("pending", 0) + states.get("generating", 0)
    return {
        "lost": lost,
        "duplicates": duplicates,
        "suggestions": {
            "ready": states.get("ready", 0),
            "skipped": states.get("skipped", 0),
            "failed": states.get("failed", 0),
            "unfinished": unfinished,
            "missing": without,
            "finished_twice": ready_twice,
        },
        "audit_chain_ok": verified.returncode == 0 and bool(audit.get("ok")),
        "audit_rows_checked": audit.get("rows_checked"),
    }


def report(load: Load, recovery: dict[str, float], duration: float, outcome: dict, profile_name: str) -> dict:
    latencies = sorted(load.latencies_ms) or [0.0]
    p99_index = min(len(latencies) - 1, max(0, int(round(0.99 * len(latencies))) - 1))
    return {
        "profile": profile_name,
        "requests": load.requests,
        "accepted": len(load.accepted),
        "failed": load.failed,
        "lost": outcome["lost"],
        "duplicates": outcome["duplicates"],
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[p99_index], 1),
        "rps": round(load.requests / duration, 2) if duration else 0.0,
        "recovery_s": recovery,
        "retried_attempts": sum(1 for a in load.attempts if not a.ok),
        "suggestions": outcome["suggestions"],
        "audit_chain_ok": outcome["audit_chain_ok"],
        "duration_s": round(duration, 1),
    }


# --- the drill --------------------------------------------------------------------------------------------------


async def login(top: Topology, username: str, password: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=top.base_url, verify=top.verify, timeout=30) as client:
        reply = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
        reply.raise_for_status()
        return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def build(top: Topology, profile_name: str) -> None:
    profile = top.profile
    redis_port, chroma_port = free_port(), free_port()
    top.processes.start(
        "redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    )
    llm_urls = [f"http://127.0.0.1:{free_port()}" for _ in range(profile.llm_nodes)]
    top.llm_names = [f"llm{n + 1}" for n in range(profile.llm_nodes)]
    top.api_names = [f"api{n + 1}" for n in range(profile.api_replicas)]
    top.worker_names = [f"worker{n + 1}" for n in range(profile.workers)]
    database = f"prs_drill_{uuid.uuid4().hex[:8]}"
    if profile_name == "baseline":
        server = os.environ.get("PRS_DRILL_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
        top.database_url = f"{server}/{database}"
        top.app_env = app_environment(
            top, database_url=top.database_url, read_url="", llm_urls=llm_urls, chroma_url="", redis_url="memory://"
        )
    else:
        etcd_hosts = start_etcd(top)
        password = secrets.token_urlsafe(18)
        log("starting Patroni (2 nodes) and waiting for the synchronous standby")
        pg_ports = start_patroni(top, etcd_hosts, password)
        hosts = ",".join(f"127.0.0.1:{p}" for p in pg_ports)
        top.database_url = f"postgresql://postgres:{password}@{hosts}/{database}?target_session_attrs=read-write"
        read_url = f"postgresql://postgres:{password}@{hosts}/{database}?target_session_attrs=prefer-standby"
        top.processes.start(
            "chroma",
            [
                str(Path(PYTHON).parent / "chroma"),
                "run",
                "--path",
                str(top.folder / "chroma"),
                "--host",
                "127.0.0.1",
                "--port",
                str(chroma_port),
            ],
        )
        top.app_env = app_environment(
            top,
            database_url=top.database_url,
            read_url=read_url,
            llm_urls=llm_urls,
            chroma_url=f"http://127.0.0.1:{chroma_port}",
            redis_url=f"redis://127.0.0.1:{redis_port}",
        )
        wait_http(
            f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", timeout=120, process=top.processes.started["chroma"]
        )
    log("migrating and creating the drill's account")
    prs(top, "migrate")


async def drill(profile_name: str) -> dict:
    profile = PROFILES[profile_name]
    folder = Path(tempfile.mkdtemp(prefix="prs-drill-"))
    folder.chmod(0o755)
    (folder / "logs").mkdir()
    processes = Processes(folder)
    top = Topology(folder=folder, profile=profile, processes=processes)
    keep = os.environ.get("PRS_DRILL_KEEP") == "1"
    try:
        build(top, profile_name)
        password = "Drill-" + secrets.token_urlsafe(12) + "a1A"
        prs(top, "user", "create", "--username", "drill", "--password", password, "--role", "reporter")
        log(
            f"starting {len(top.llm_names)} LLM node(s), {len(top.api_names)} API replica(s), "
            f"{len(top.worker_names)} worker(s)"
        )
        start_app_processes(top, embedded=profile_name == "baseline")
        api_ports = [int(p) for p in top.app_env["DRILL_API_PORTS"].split(",")]
        if profile_name == "baseline":
            top.base_url, top.verify = f"http://127.0.0.1:{api_ports[0]}", True
        else:
            start_nginx(top, list(api_ports))
        headers = await login(top, "drill", password)
        log(f"load for {profile.load_s:.0f} s; faults: {', '.join(f for _, f in profile.faults) or 'none'}")
        load, recovery, duration = await run_load(top, profile, headers)
        log(f"load done: {load.requests} requests, {len(load.accepted)} accepted; checking")
        outcome = await check_outcome(top, load, profile.settle_s)
        return report(load, recovery, duration, outcome, profile_name)
    finally:
        processes.stop_all()
        for name in top.patroni_rest:
            processes.kill_postgres(folder / name / "data")
        if profile_name == "baseline" and top.database_url:
            subprocess.run(
                [
                    PYTHON,
                    "-c",
                    "import asyncio, sys; from backend.db import drop_database; "
                    "asyncio.run(drop_database(sys.argv[1]))",
                    top.database_url,
                ],
                cwd=REPO_ROOT,
                capture_output=True,
                timeout=120,
            )
        if keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the drill runs PostgreSQL as the postgres user: run it as root")
    # SIGTERM (a CI timeout, `kill`) stops the drill like Ctrl-C: everything it started is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = asyncio.run(drill(args.profile))
    print(json.dumps(result, sort_keys=False), flush=True)


if __name__ == "__main__":
    main()
