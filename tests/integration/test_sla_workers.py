"""Three `prs worker` processes sweep the same real Postgres: each breach and escalation is recorded once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.fixtures.sla import minutes

pytestmark = pytest.mark.asyncio
REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = 3
READY_TIMEOUT_S = 150.0
DONE_TIMEOUT_S = 90.0


def start_worker(index: int, database_url: str, data_dir: Path) -> subprocess.Popen:
    """`python -m backend.cli worker` with a one-second sweep interval and no reachable LLM."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PRS_DATABASE_URL": database_url,
        "PRS_DATA_DIR": str(data_dir),
        "PRS_ENVIRONMENT": "test",
        "PRS_SLA_SWEEP_INTERVAL_S": "1",
        "PRS_LLM_NODES": "http://127.0.0.1:9",
        "PRS_LOG_JSON": "false",
        "PRS_LOG_LEVEL": "WARNING",
        "PRS_DATABASE_POOL_MAX": "4",
    }
    log = (data_dir / "worker.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "worker"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def stop_workers(processes: list[subprocess.Popen]) -> list[int | None]:
    """SIGTERM every worker, then SIGKILL those that do not stop in time; returns exit codes."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=30))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait(timeout=10))
    return codes


async def poll(predicate, timeout: float, processes: list[subprocess.Popen], logs: list[Path]):
    """Await a truthy predicate while every worker is alive."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        dead = [p.args for p in processes if p.poll() is not None]
        if dead or asyncio.get_running_loop().time() > deadline:
            tails = "\n".join(log.read_text(errors="replace")[-2000:] for log in logs)
            raise AssertionError(f"workers did not get there (dead: {len(dead)}):\n{tails}")
        await asyncio.sleep(0.5)


async def test_breaches_and_escalations_are_recorded_once_with_three_worker_processes(sla, tmp_path):
    await sla.policy(name="Line", first_response_minutes=30, resolution_minutes=60)
    await sla.rule(name="Warn L1", level=1, conditions=[{"type": "sla_warning"}])
    await sla.rule(
        name="Breach L2",
        level=2,
        target_department="maintenance-l2",
        conditions=[{"type": "sla_breached", "clock": "resolution"}],
    )
    tech = await sla.user("technician")
    # Incidents reported three hours ago: every level is already crossed when the workers start.
    sla.clock.set(datetime.now(timezone.utc) - timedelta(hours=3))
    stale = [await sla.incident(title=f"Parada {n}") for n in range(4)]
    # Incidents put on hold 5 seconds before their resolution deadline; they resume while the workers sweep.
    sla.clock.set(datetime.now(timezone.utc) - minutes(60))
    held = [await sla.incident(title=f"Atasco {n}") for n in range(2)]
    sla.advance(minutes=59, seconds=55)
    for incident in held:
        await sla.services.incidents.change_status(tech.ctx, incident["id"], status="waiting")
    await sla.execute("DELETE FROM suggestions")  # no suggestion work: the workers have no LLM
    incidents = stale + held

    dirs = [tmp_path / f"worker-{i}" for i in range(WORKERS)]
    for folder in dirs:
        folder.mkdir()
    logs = [folder / "worker.log" for folder in dirs]
    processes = [start_worker(i, sla.services.settings.database_url, dirs[i]) for i in range(WORKERS)]
    try:

        async def all_workers_sweeping():
            return (
                await sla.count("SELECT count(DISTINCT claimed_by) FROM periodic_ticks WHERE task = 'sla.sweep'")
                >= WORKERS
            )

        await poll(all_workers_sweeping, READY_TIMEOUT_S, processes, logs)
        resumed_at = sla.clock.set(datetime.now(timezone.utc))
        for incident in held:
            await sla.services.incidents.change_status(tech.ctx, incident["id"], status="in_progress")

        async def everything_recorded():
            return await sla.count("SELECT count(*) FROM sla_escalations") >= 2 * len(incidents) and await sla.count(
                "SELECT count(*) FROM sla_events"
            ) >= 6 * len(incidents)

        await poll(everything_recorded, DONE_TIMEOUT_S, processes, logs)
        ticks_before = await sla.count("SELECT count(*) FROM periodic_ticks WHERE task = 'sla.sweep'")

        async def three_more_sweeps():
            return (
                await sla.count(
                    "SELECT count(*) FROM periodic_ticks WHERE task = 'sla.sweep' AND finished_at IS NOT NULL"
                )
                >= ticks_before + 3
            )

        await poll(three_more_sweeps, DONE_TIMEOUT_S, processes, logs)
    finally:
        codes = stop_workers(processes)
    assert codes == [0] * WORKERS

    async with sla.services.pool.acquire() as conn:
        per_incident = {
            r["incident_id"]: r
            for r in await conn.fetch(
                """SELECT i.id AS incident_id,
                      (SELECT count(*) FROM sla_events e WHERE e.incident_id = i.id) AS levels,
                      (SELECT count(*) FROM sla_events e WHERE e.incident_id = i.id AND e.kind = 'breach') AS breaches,
                      (SELECT array_agg(x.level ORDER BY x.level) FROM sla_escalations x
                        WHERE x.incident_id = i.id) AS escalation_levels,
                      (SELECT count(*) FROM notify_events n WHERE n.incident_id = i.id
                        AND n.type = 'incident.escalated') AS escalated_events,
                      (SELECT count(*) FROM notify_events n WHERE n.incident_id = i.id
                        AND n.type = 'sla.breached') AS breached_events
                 FROM incidents i"""
            )
        }
        sweepers = await conn.fetchval("SELECT count(DISTINCT claimed_by) FROM periodic_ticks WHERE task = 'sla.sweep'")
        duplicate_ticks = await conn.fetchval(
            "SELECT count(*) FROM (SELECT tick FROM periodic_ticks WHERE task = 'sla.sweep' "
            "GROUP BY tick HAVING count(*) > 1) d"
        )
        failed_ticks = await conn.fetchval(
            "SELECT count(*) FROM periodic_ticks WHERE task = 'sla.sweep' AND error IS NOT NULL"
        )
        late_breaches = await conn.fetch(
            """SELECT occurred_at, recorded_at FROM sla_events WHERE clock_kind = 'resolution' AND kind = 'breach'
                AND incident_id = ANY ($1::bigint[])""",
            [i["id"] for i in held],
        )
    assert set(per_incident) == {i["id"] for i in incidents}
    for incident_id, row in per_incident.items():
        assert row["levels"] == 6, incident_id  # 75 %, 90 % and breach of both clocks, once each
        assert row["breaches"] == 2
        assert row["escalation_levels"] == [1, 2]
        assert row["escalated_events"] == 2 and row["breached_events"] == 2
    assert sweepers == WORKERS and duplicate_ticks == 0 and failed_ticks == 0
    # The held incidents' deadlines passed 5 seconds after they resumed, while the three workers swept.
    assert len(late_breaches) == len(held)
    for breach in late_breaches:
        assert abs((breach["occurred_at"] - resumed_at - timedelta(seconds=5)).total_seconds()) < 1
        assert breach["recorded_at"] >= breach["occurred_at"]
