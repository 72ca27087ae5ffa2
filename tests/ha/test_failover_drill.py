"""The short failover drill (deploy/ha/drill.py --profile short): nginx, two API replicas, a worker, an LLM node,
Chroma, Redis, etcd and two Patroni-managed PostgreSQL nodes under a steady load of incident reports with
Idempotency-Key; one replica is SIGKILLed and the PostgreSQL primary is lost. Nothing accepted is lost or doubled."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def drill_report() -> dict:
    for tool in ("patroni", "etcd", "nginx", "redis-server"):
        assert shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists(), (
            f"{tool} is missing: deploy/local/install.sh installs it"
        )
    if os.geteuid() != 0:
        pytest.skip("the drill runs PostgreSQL as the postgres user and needs root")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "deploy/ha/drill.py"), "--profile", "short"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_incident_that_got_a_201_exists_exactly_once_through_a_replica_kill_and_a_failover(drill_report):
    assert drill_report["accepted"] >= 100, drill_report
    assert drill_report["lost"] == 0 and drill_report["duplicates"] == 0, drill_report


def test_every_request_with_an_idempotency_key_succeeded_in_the_end(drill_report):
    assert drill_report["failed"] == 0, drill_report
    assert drill_report["requests"] >= drill_report["accepted"]


def test_the_standby_takes_over_within_thirty_seconds(drill_report):
    assert set(drill_report["recovery_s"]) == {"api_replica", "db_primary"}
    assert drill_report["recovery_s"]["db_primary"] < 30, drill_report
    assert drill_report["recovery_s"]["api_replica"] < 15, drill_report


def test_every_suggestion_finished_once_and_the_audit_chain_verifies(drill_report):
    suggestions = drill_report["suggestions"]
    assert suggestions["unfinished"] == 0 and suggestions["missing"] == 0, suggestions
    assert suggestions["finished_twice"] == 0, suggestions
    assert suggestions["ready"] + suggestions["skipped"] + suggestions["failed"] >= drill_report["accepted"]
    assert drill_report["audit_chain_ok"] is True
