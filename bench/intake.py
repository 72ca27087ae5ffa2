"""`prs bench intake`: latency of `POST /api/v1/incidents` next to the floor of its retrieval, in one run.

In a throwaway database: import the incidents of a JIRA-format JSONL file as the knowledge base, start
the app in-process (ASGI, the real middleware, auth and services, no worker), log in as a technician
and report new incidents made from records of the same file. Between requests, the floor is taken
on the same text: one encoding, one vector query and one lexical query, one after the other, through
the same encoder, store and index the app uses. Requests and floors alternate, so the load of the
machine weighs on both alike. The first few of each are warm-up and not counted. The import runs as `prs ingest incidents` in a
separate process, so the resident memory printed is that of a replica that only serves.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from agent.lexical import tokenize
from backend.auth.schemas import UserCreate
from backend.config import Settings
from backend.context import system_context
from backend.db import drop_database, ensure_database, migrate, with_database
from backend.knowledge.ingest import incident_from_jira
from bench.retrieval import _read_jsonl, latency_figures

WARM_UP = 5
BENCH_USER = "bench-intake"
BENCH_PASSWORD = "Bench-Intake-9-Password"


def resident_mb() -> float:
    """This process's resident memory (VmRSS) in MiB; 0 where /proc is not available."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def split_reports(
    records: list[dict[str, Any]], count: int, kb_limit: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`count` records spread evenly over the file to report as new, and the knowledge base: the others
    (at most kb_limit of them, spread evenly too, so every area of the file is in it)."""
    step = max(1, len(records) // max(1, count))
    chosen = set(range(0, len(records), step)[:count])
    reported = [records[index] for index in sorted(chosen)]
    rest = [record for index, record in enumerate(records) if index not in chosen]
    if kb_limit and kb_limit < len(rest):
        rest = [rest[int(index * len(rest) / kb_limit)] for index in range(kb_limit)]
    areas = {record.get("project") for record in rest}
    return [record for record in reported if record.get("project") in areas], rest


def new_incidents(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The body of `POST /api/v1/incidents` for each JIRA record (title, description, area, priority)."""
    reports = []
    for number, record in enumerate(records, start=1):
        incident = incident_from_jira(record, number)
        reports.append(
            {
                "title": incident["title"][:200],
                "description": (incident["description"] or incident["title"])[:20000],
                "area": incident["area"],
                "priority": incident["priority"],
            }
        )
    return reports


def _write_knowledge_file(source: Path, kb_file: Path, count: int, kb_limit: int | None) -> list[dict[str, Any]]:
    """Write the knowledge-base part of the file to kb_file; the reports to send."""
    reported, knowledge_records = split_reports(_read_jsonl(source), count, kb_limit)
    with kb_file.open("w", encoding="utf-8") as out:
        for record in knowledge_records:
            out.write(json.dumps(record) + "\n")
    return new_incidents(reported)


async def _import_in_subprocess(kb_file: Path, dsn: str, data_dir: Path) -> dict[str, Any]:
    """`prs ingest incidents` in its own process, as an operator would, so the replica measured did not import."""
    env = {**os.environ, "PRS_DATABASE_URL": dsn, "PRS_DATA_DIR": str(data_dir)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "backend.cli",
        "ingest",
        "incidents",
        str(kb_file),
        "--mapping",
        "jira",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"prs ingest incidents failed with exit code {process.returncode}")
    return json.loads(output.decode().strip().splitlines()[-1])


async def _floor_once(services: Any, report: dict[str, Any]) -> float:
    """One encode + one vector query + one lexical query for a report's text, in sequence; seconds."""
    knowledge = services.knowledge
    params = knowledge.retriever.params
    text = f"{report['title']}\n{report['description']}"
    started = time.perf_counter()
    vector = (await knowledge.encoder.encode_async([text], max_tokens=params.query_max_tokens(("incident",))))[0]
    knowledge.vector_store.query(vector, params.candidates, {"kind": ["incident"], "area": [report["area"], ""]})
    await knowledge.lexical_index.search(tokenize(text), k=params.candidates, area=report["area"], kinds=("incident",))
    return time.perf_counter() - started


async def run_intake_bench(
    settings: Settings, kb_path: Path, *, requests: int = 200, kb_limit: int | None = None
) -> dict[str, Any]:
    """Import the knowledge base, then time incident intake against its floor; returns the figures."""
    from backend.container import build_container
    from backend.main import create_app

    dsn = with_database(settings.database_url, f"prs_bench_{uuid.uuid4().hex[:12]}")
    await ensure_database(dsn)
    try:
        await migrate(dsn)
        with tempfile.TemporaryDirectory(prefix="prs-bench-intake-") as folder:
            work_dir = Path(folder)
            kb_file = work_dir / "kb.jsonl"
            reports = _write_knowledge_file(Path(kb_path), kb_file, requests + WARM_UP, kb_limit)
            gc.collect()  # the parsed file is not part of a replica's memory
            bench = settings.model_copy(
                update={"database_url": dsn, "data_dir": work_dir / "data", "embedded_worker": False}
            )
            imported = await _import_in_subprocess(kb_file, dsn, bench.data_dir)
            services = await build_container(bench)
            try:
                await services.knowledge.warm_up()
                await services.auth.create_user(
                    system_context("bench"), UserCreate(username=BENCH_USER, password=BENCH_PASSWORD, role="technician")
                )
                app = create_app(bench, container=services, run_worker=False)
                transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
                async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                    reply = await client.post(
                        "/api/v1/auth/token", data={"username": BENCH_USER, "password": BENCH_PASSWORD}
                    )
                    reply.raise_for_status()
                    headers = {"Authorization": f"Bearer {reply.json()['access_token']}"}
                    intake, floor, similar = [], [], 0
                    for number, report in enumerate(reports):
                        started = time.perf_counter()
                        reply = await client.post("/api/v1/incidents", json=report, headers=headers)
                        seconds = time.perf_counter() - started
                        if reply.status_code != 201:
                            raise RuntimeError(f"intake answered {reply.status_code}: {reply.text[:300]}")
                        floor_seconds = await _floor_once(services, report)
                        if number >= WARM_UP:
                            intake.append(seconds)
                            floor.append(floor_seconds)
                            similar += len(reply.json()["similar"])
                    rss_mb = resident_mb()
            finally:
                await services.aclose()
    finally:
        await drop_database(dsn)
    figures = latency_figures(intake)
    floors = latency_figures(floor)
    return {
        "n": len(intake),
        "kb_size": imported["inserted"],
        "import_per_s": round(imported["inserted"] / max(imported["seconds"], 1e-9), 1),
        "p50_ms": figures["p50_ms"],
        "p95_ms": figures["p95_ms"],
        "floor_p50_ms": floors["p50_ms"],
        "floor_p95_ms": floors["p95_ms"],
        "p50_ratio": round(figures["p50_ms"] / floors["p50_ms"], 2) if floors["p50_ms"] else None,
        "p95_ratio": round(figures["p95_ms"] / floors["p95_ms"], 2) if floors["p95_ms"] else None,
        "similar_per_request": round(similar / max(1, len(intake)), 2),
        "api_rss_mb": rss_mb,
    }
