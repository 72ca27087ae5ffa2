"""Schemathesis over every operation of the API, once per caller (reporter, technician, an API key, admin),
against a real `prs serve` on a database of its own.

Each run generates positive and negative data (examples and fuzzing phases; for the admin also the coverage
phase's boundary values), then the stateful phase follows the schema's links (ids returned by create operations
feed the operations on what they created). Checks: no 5xx; status codes, content types and bodies as documented; and `refused_outside_the_role`
(tests/security/fuzz_hooks.py): operations the caller's role or permissions do not allow answer 401/403,
never 2xx. Logout and refresh run on sessions of their own. Seed and example counts are fixed so CI is
repeatable; the case count of each run is printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from backend.db import drop_database
from tests.fixtures.database import database_url_named
from tests.fixtures.guards import api_key_may_use, declared_guards, person_may_use
from tests.fixtures.server import REPO_ROOT, Server
from tests.fixtures.summary import report_figure

SEED = 20261202
PASSWORD = "Fuzz-Correct-Horse-9"
KEY_PERMISSIONS = frozenset({"read", "write"})
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "refused_outside_the_role",
]
CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")
ALL_PHASES = "examples,coverage,fuzzing,stateful"
# The coverage phase (boundary and missing values of every parameter, thousands of cases) runs for the admin,
# who reaches every handler; lower callers are refused before validation, so fuzzing covers them.
LOWER_PHASES = "examples,fuzzing,stateful"
# (caller, examples per operation, phases). The admin run comes last: it may change or revoke what others use.
RUNS = [
    ("reporter", 4, LOWER_PHASES),
    ("technician", 4, LOWER_PHASES),
    ("api_key", 4, LOWER_PHASES),
    ("admin", 6, ALL_PHASES),
]


@dataclass
class FuzzTarget:
    """The server under test and the credentials of each caller."""

    server: Server
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    api_key: str = ""


def _prs(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _sign_in(url: str, username: str) -> str:
    reply = httpx.post(f"{url}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()["access_token"]


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory) -> Iterator[FuzzTarget]:
    """`prs serve` on a fresh database with an account per role, a session account and an API key."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    database_url = database_url_named(f"prs_fuzz_{uuid.uuid4().hex[:12]}")
    env = {
        **os.environ,
        "PRS_DATABASE_URL": database_url,
        "PRS_DATA_DIR": str(data_dir),
        "PRS_LLM_NODES": "http://127.0.0.1:9",
        "PRS_EMBEDDED_WORKER": "false",
        "PRS_LOG_JSON": "false",
        "PRS_ENVIRONMENT": "test",
        "PRS_JWT_SECRET": "fuzz-server-secret-" + "x" * 32,
        # No worker runs here: a suggestion stream would wait for ever; close it after a second.
        "PRS_SUGGESTION_STREAM_MAX_S": "1",
        "PRS_LIVE_STREAM_MAX_S": "1",  # the web pages' live stream, likewise
        # The fuzzer signs in for every logout and refresh and fails many logins on purpose.
        "PRS_LOGIN_RATE_LIMIT": "100000/minute",
        "PRS_API_KEY_FAILURE_RATE_LIMIT": "100000/minute",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    _prs(env, "migrate")
    _prs(env, "user", "create", "--username", "fuzz-admin", "--password", PASSWORD, "--role", "admin")
    server = Server(env, data_dir / "server.log")
    server.start()
    target = FuzzTarget(server)
    try:
        admin = {"Authorization": f"Bearer {_sign_in(server.url, 'fuzz-admin')}"}
        for username, role in [
            ("fuzz-technician", "technician"),
            ("fuzz-reporter", "reporter"),
            ("fuzz-session", "reporter"),
            ("fuzz-scratch", "reporter"),
        ]:
            reply = httpx.post(
                f"{server.url}/api/v1/users",
                headers=admin,
                timeout=30,
                json={"username": username, "password": PASSWORD, "role": role},
            )
            assert reply.status_code == 201, reply.text
            target.user_ids[username] = reply.json()["id"]
        users = httpx.get(f"{server.url}/api/v1/users", headers=admin, timeout=30).json()
        target.user_ids["fuzz-admin"] = next(u["id"] for u in users if u["username"] == "fuzz-admin")
        for role in ("admin", "technician", "reporter"):
            target.tokens[role] = _sign_in(server.url, f"fuzz-{role}")
        reply = httpx.post(
            f"{server.url}/api/v1/api-keys",
            headers=admin,
            timeout=30,
            json={
                "name": "fuzzer",
                "owner_email": "it@example.com",
                "permissions": sorted(KEY_PERMISSIONS),
                "rate_limit_per_minute": 100_000,
            },
        )
        assert reply.status_code == 201, reply.text
        target.api_key = reply.json()["key"]
        yield target
    finally:
        server.stop()
        asyncio.run(drop_database(database_url))


def forbidden_operations(caller: str) -> list[tuple[str, str]]:
    """The operations the caller may not use, from each endpoint's declared guard."""
    guards = declared_guards()
    if caller == "api_key":
        return sorted(op for op, guard in guards.items() if not api_key_may_use(guard, op[0], KEY_PERMISSIONS))
    return sorted(op for op, guard in guards.items() if not person_may_use(guard, caller))


def test_each_lower_caller_has_operations_it_may_not_use():
    counts = {caller: len(forbidden_operations(caller)) for caller, _, _ in RUNS}
    key_only = [op for op, guard in declared_guards().items() if guard.startswith("require_api_key_")]
    assert forbidden_operations("admin") == sorted(key_only) and key_only
    assert counts["reporter"] > counts["technician"] > 0
    assert counts["api_key"] > 0


def _run_schemathesis(
    target: FuzzTarget, caller: str, examples: int, phases: str, report: Path
) -> subprocess.CompletedProcess:
    url = target.server.url
    header, value = (
        ("X-API-Key", target.api_key) if caller == "api_key" else ("Authorization", f"Bearer {target.tokens[caller]}")
    )
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.security.fuzz_hooks",
        "PRS_FUZZ_BASE_URL": url,
        "PRS_FUZZ_AUTH_HEADER": header,
        "PRS_FUZZ_AUTH_VALUE": value,
        "PRS_FUZZ_SESSION_USERNAME": "fuzz-session",
        "PRS_FUZZ_SESSION_PASSWORD": PASSWORD,
        "PRS_FUZZ_PROTECTED_USER_IDS": ",".join(
            str(target.user_ids[name]) for name in ("fuzz-admin", "fuzz-technician", "fuzz-reporter", "fuzz-session")
        ),
        "PRS_FUZZ_SCRATCH_USER_ID": str(target.user_ids["fuzz-scratch"]),
        "PRS_FUZZ_FORBIDDEN": json.dumps(forbidden_operations(caller)),
        "PYTHONPATH": str(REPO_ROOT),
    }
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG_FILE),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--mode",
        "all",
        "--max-examples",
        str(examples),
        "--seed",
        str(SEED),
        "--phases",
        phases,
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    # In the test's folder: the CLI keeps a cache (.schemathesis/) where it runs.
    return subprocess.run(command, cwd=report.parent, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("caller, examples, phases", RUNS, ids=[caller for caller, _, _ in RUNS])
def test_no_operation_fails_under_fuzzing(fuzz_target, caller, examples, phases, tmp_path, request):
    done = _run_schemathesis(fuzz_target, caller, examples, phases, tmp_path / "junit.xml")
    output = done.stdout + done.stderr
    generated = re.search(r"(\d+) generated", output)
    summary = f"schemathesis [{caller}]: {generated.group(1) if generated else '?'} cases, exit {done.returncode}"
    report_figure(request.config, summary)
    assert generated is not None and int(generated.group(1)) > 0, output[-5000:]
    assert done.returncode == 0, output[-20000:]
