"""`prs bench suggestions-load`: a burst of incidents on two real LLM nodes, one of them stopped for a while.

In a throwaway database: start two LLM nodes (one llama thread each), measure one generation alone and the
capacity of both nodes running the same prompts back to back, then report incidents (5% critical spread evenly,
one critical last, the rest mixed) with two workers admitting work by slot, stop one node for `outage_s` in the
middle and bring it back. Prints completed / skipped / failed suggestions, cancelled generations (read from the
nodes' own logs), useful output tokens per second against capacity, and time to ready of critical incidents.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from agent.suggest import STOP_SEQUENCES, build_prompt
from agent.types import CaseForPrompt
from backend.config import Settings
from backend.context import system_context
from backend.db import drop_database, ensure_database, migrate
from backend.demo import demo_incidents_path
from backend.incidents.schemas import IncidentCreate

PRIORITY_MIX = ("low", "medium", "medium", "high")
TOPICS = [
    ("Cinta transportadora línea {n} parada", "El motor de la cinta se para con alarma E-40{n:02d} tras calentarse."),
    ("Bomba de refrigeración {n} con vibración", "La bomba {n} vibra y la presión cae a 1,{n} bar al arrancar."),
    ("Robot de soldadura {n} sin comunicación", "El robot {n} pierde la comunicación con el PLC y se detiene."),
    ("Horno {n} no alcanza temperatura", "El horno {n} se queda 40 grados por debajo de la consigna."),
    ("Etiquetadora {n} imprime borroso", "Las etiquetas de la línea {n} salen borrosas y el lector falla."),
]


@dataclass
class NodeRun:
    """An LLM node process the bench controls, and the seconds it was serving."""

    port: int
    log_path: Path
    data_dir: Path
    threads: int = 1
    process: subprocess.Popen[bytes] | None = None
    up_since: float | None = None
    up_seconds: float = 0.0
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The node's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start the node and wait until it answers."""
        log_path = self.log_path.with_suffix(f".{len(self.logs)}.log")
        self.logs.append(log_path)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "llm_node",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    "--threads",
                    str(self.threads),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + 300
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"{self.url}/api/version")).status_code == 200:
                        self.up_since = time.monotonic()
                        return
                except httpx.HTTPError:
                    pass
                if self.process.poll() is not None:
                    break
                await asyncio.sleep(0.5)
        raise RuntimeError(f"LLM node on port {self.port} did not start; see {log_path}")

    def stop(self) -> None:
        """Stop the node at once (SIGKILL), as a crashed or unplugged machine."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        if self.up_since is not None:
            self.up_seconds += time.monotonic() - self.up_since
            self.up_since = None

    def up_seconds_until(self, moment: float) -> float:
        """Seconds this node served, counting the current run up to `moment`."""
        return self.up_seconds + (moment - self.up_since if self.up_since is not None else 0.0)

    def finished_generations(self) -> list[dict[str, Any]]:
        """The 'generation finished' lines of every run of this node's logs."""
        lines = []
        for path in self.logs:
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if '"generation finished"' in line:
                    try:
                        lines.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
        return lines


def _nearest_rank(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of an ordered list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _bench_dsn(database_url: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=f"/prs_bench_suggestions_{uuid.uuid4().hex[:10]}"))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _report(n: int, priority: str) -> IncidentCreate:
    title, description = TOPICS[n % len(TOPICS)]
    return IncidentCreate.model_validate(
        {
            "title": title.format(n=n % 97),
            "description": description.format(n=n % 97),
            "area": "production",
            "priority": priority,
        }
    )


def _priorities(count: int, rng: random.Random) -> list[str]:
    """5% critical spread evenly, the last one critical, the rest a mix of low, medium and high."""
    every = 20
    return [
        "critical" if (n % every == every // 2 or n == count - 1) else rng.choice(PRIORITY_MIX) for n in range(count)
    ]


async def _generate_once(
    client: httpx.AsyncClient, url: str, model: str, prompt: str, max_tokens: int
) -> tuple[int, float]:
    """One generation straight on a node: (completion tokens, seconds)."""
    started = time.perf_counter()
    reply = await client.post(
        f"{url}/api/generate",
        json={
            "model": model,
            "prompt": prompt,
            "raw": True,
            "stream": False,
            "options": {"num_predict": max_tokens, "temperature": 0.2, "stop": STOP_SEQUENCES},
        },
    )
    reply.raise_for_status()
    return int(reply.json().get("eval_count") or 0), time.perf_counter() - started


async def _measure_capacity(
    nodes: list[NodeRun], model: str, prompts: list[str], max_tokens: int
) -> tuple[float, float]:
    """(seconds of one generation alone, combined output tokens/s of all nodes running the prompts back to back)."""
    async with httpx.AsyncClient(timeout=600) as client:
        await _generate_once(client, nodes[0].url, model, prompts[0], max_tokens)  # warm-up
        alone = [(await _generate_once(client, nodes[0].url, model, p, max_tokens))[1] for p in prompts[:3]]

        async def back_to_back(node: NodeRun) -> int:
            return sum([(await _generate_once(client, node.url, model, p, max_tokens))[0] for p in prompts])

        started = time.perf_counter()
        tokens = await asyncio.gather(*(back_to_back(node) for node in nodes))
        return statistics.median(alone), sum(tokens) / (time.perf_counter() - started)


async def _sample_prompts(services: Any, count: int) -> list[str]:
    prompts = []
    for n in range(count):
        body = _report(n, "medium")
        cases: list[CaseForPrompt] = await services.knowledge.retrieve_cases(
            text=f"{body.title}\n{body.description}", area=body.area, limit=services.settings.suggestion_cases
        )
        prompts.append(
            build_prompt(title=body.title, description=body.description, area=body.area, cases=cases, language="es")
        )
    return prompts


async def run_suggestions_load_bench(
    settings: Settings,
    *,
    incidents: int,
    report_s: float,
    outage_s: float,
    max_tokens: int,
    workers: int,
    timeout_s: float,
) -> dict[str, Any]:
    """Run the whole scenario in a throwaway database; returns the figures."""
    from backend.container import build_container
    from backend.jobs.worker import build_dispatcher

    dsn = _bench_dsn(settings.database_url)
    await ensure_database(dsn)
    await migrate(dsn)
    scratch = Path(tempfile.mkdtemp(prefix="prs-bench-suggestions-"))
    model_dir = settings.ensure_data_dir()  # the bundled model is assembled there once and reused
    nodes = [NodeRun(_free_port(), scratch / f"node{n}", model_dir) for n in range(2)]
    services = None
    stop = asyncio.Event()
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        bench = settings.model_copy(
            update={
                "database_url": dsn,
                "data_dir": scratch / "data",
                "llm_nodes": ",".join(n.url for n in nodes),
                "llm_max_tokens": max_tokens,
                "llm_node_cooldown_s": 5.0,
                "suggestion_dispatch_poll_s": 0.2,
                "embedded_worker": False,
                "suggestion_mode": "generative",
            }
        )  # load = generations of max_tokens
        services = await build_container(bench)
        await services.knowledge.ingest_incidents_jsonl(demo_incidents_path(), create_areas=True, mapping="prs")
        prompts = await _sample_prompts(services, 6)
        generation_s, capacity_tps = await _measure_capacity(nodes, bench.llm_model, prompts, max_tokens)
        # The load phase counts only its own generations: those logged after the capacity runs.
        logged_before = [len(node.finished_generations()) for node in nodes]

        rng = random.Random(20261202)
        priorities = _priorities(incidents, rng)
        dispatchers = [build_dispatcher(services) for _ in range(workers)]
        await dispatchers[0].sync_slots()
        tasks = [asyncio.create_task(d.run(stop)) for d in dispatchers]
        load_started = time.monotonic()
        up_at_start = [node.up_seconds_until(load_started) for node in nodes]
        outage = asyncio.create_task(_outage(nodes[1], delay_s=report_s / 2, outage_s=outage_s))
        created: list[tuple[int, str]] = []
        ctx = system_context("bench")
        for n, priority in enumerate(priorities):
            reply = await services.incidents.create(ctx, _report(n, priority))
            created.append((reply["id"], priority))
            await asyncio.sleep(max(0.0, load_started + report_s * (n + 1) / incidents - time.monotonic()))
        reported_s = time.monotonic() - load_started
        await outage
        rows = await _wait_until_settled(services, timeout_s=timeout_s)
        load_s = time.monotonic() - load_started
        stop.set()
        await asyncio.gather(*tasks)
        # Capacity again after the load, and the higher of the two: the machine is shared, and a capacity taken
        # while something else ran would flatter the ratio.
        logged_after = [len(node.finished_generations()) for node in nodes]
        _, capacity_after = await _measure_capacity(nodes, bench.llm_model, prompts, max_tokens)
        capacity_tps = max(capacity_tps, capacity_after)
        # Seconds each node served during the load (one was stopped for a while), taken now, not afterwards.
        node_seconds = sum(
            node.up_seconds_until(load_started + load_s) - before
            for node, before in zip(nodes, up_at_start, strict=True)
        )
        return _figures(
            rows,
            created,
            nodes,
            logged_before,
            logged_after,
            capacity_tps=capacity_tps,
            node_seconds=node_seconds,
            generation_s=generation_s,
            load_s=load_s,
            reported_s=reported_s,
            outage_s=outage_s,
            incidents=incidents,
        )
    finally:
        stop.set()
        if services is not None:
            await services.aclose()
        for node in nodes:
            node.stop()
        await drop_database(dsn)


async def _outage(node: NodeRun, *, delay_s: float, outage_s: float) -> None:
    await asyncio.sleep(delay_s)
    node.stop()
    await asyncio.sleep(outage_s)
    await node.start()


async def _wait_until_settled(services: Any, *, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        async with services.pool.acquire() as conn:
            rows = [
                dict(r)
                for r in await conn.fetch(
                    "SELECT s.incident_id, s.status, s.attempts, s.completed_at, i.created_at, i.priority "
                    "FROM suggestions s JOIN incidents i ON i.id = s.incident_id"
                )
            ]
        if all(r["status"] in ("ready", "skipped", "failed") for r in rows) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(1.0)


def _figures(
    rows: list[dict[str, Any]],
    created: list[tuple[int, str]],
    nodes: list[NodeRun],
    logged_before: list[int],
    logged_after: list[int],
    *,
    capacity_tps: float,
    node_seconds: float,
    generation_s: float,
    load_s: float,
    reported_s: float,
    outage_s: float,
    incidents: int,
) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    finished = [
        line
        for node, before, after in zip(nodes, logged_before, logged_after, strict=True)
        for line in node.finished_generations()[before:after]
    ]
    cancelled = sum(1 for line in finished if line.get("done_reason") == "cancelled")
    useful_tokens = sum(
        int(line.get("completion_tokens") or 0) for line in finished if line.get("done_reason") != "cancelled"
    )
    per_node_tps = capacity_tps / len(nodes)
    critical_ids = {incident_id for incident_id, priority in created if priority == "critical"}
    critical_waits = sorted(
        (r["completed_at"] - r["created_at"]).total_seconds()
        for r in rows
        if r["incident_id"] in critical_ids and r["status"] == "ready"
    )
    return {
        "incidents": incidents,
        "reported_s": round(reported_s, 1),
        "load_s": round(load_s, 1),
        "outage_s": outage_s,
        "completed": by_status.get("ready", 0),
        "skipped": by_status.get("skipped", 0),
        "failed": by_status.get("failed", 0),
        "unfinished": len(rows) - sum(by_status.get(s, 0) for s in ("ready", "skipped", "failed")),
        "retried": sum(1 for r in rows if r["attempts"] > 1),
        "cancelled": cancelled,
        "useful_tokens": useful_tokens,
        "useful_tps": round(useful_tokens / load_s, 2),
        "node_seconds": round(node_seconds, 1),
        "capacity_tps": round(capacity_tps, 2),
        # Capacity while the load ran: each node's tokens/s times the seconds it was up (one was down a while).
        "throughput_ratio": round(useful_tokens / (per_node_tps * node_seconds), 3) if node_seconds else 0.0,
        "critical_p50_s": round(statistics.median(critical_waits), 1) if critical_waits else None,
        "critical_p95_s": round(_nearest_rank(critical_waits, 0.95), 1) if critical_waits else None,
        "generation_s": round(generation_s, 2),
    }
