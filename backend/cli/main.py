"""`prs`: serve, worker, migrate, llm serve, user, reindex, ingest, demo, bench."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional, cast

import typer

if TYPE_CHECKING:
    from backend.container import Container

from agent.adapt import AdaptationParams
from backend.config import Settings, load_settings
from backend.knowledge.ingest import read_confirmed_matches
from backend.observability.logging import configure_logging

app = typer.Typer(help="PR-System: on-premises incident agent.", no_args_is_help=True, add_completion=False)
llm_app = typer.Typer(help="The local LLM node.", no_args_is_help=True)
user_app = typer.Typer(help="Accounts.", no_args_is_help=True)
ingest_app = typer.Typer(help="Load past incidents or knowledge documents.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo knowledge base.", no_args_is_help=True)
knowledge_app = typer.Typer(help="The knowledge base's encoder.", no_args_is_help=True)
for sub, name in (
    (knowledge_app, "knowledge"),
    (llm_app, "llm"),
    (user_app, "user"),
    (ingest_app, "ingest"),
    (bench_app, "bench"),
    (demo_app, "demo"),
):
    app.add_typer(sub, name=name)


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return settings


def _claim_embedded_vector_store(settings: Settings) -> None:
    """Refuse to start a second process on the same embedded vector-store folder (exit 2, naming PRS_CHROMA_URL)."""
    from backend.vector_store_lock import VectorStoreInUse, lock_embedded_vector_store

    if settings.chroma_url:
        return
    try:
        lock_embedded_vector_store(settings.chroma_path)
    except VectorStoreInUse as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)


async def _with_container(settings: Settings, action: Callable[[Container], Awaitable[Any]]) -> Any:
    """Build the container, run `action` with it, close it."""
    from backend.container import build_container

    container = await build_container(settings)
    try:
        return await action(container)
    finally:
        await container.aclose()


def _print_json(action: Callable[[Container], Awaitable[Any]], settings: Settings | None = None) -> None:
    """Run `action` with a container and print what it returns as one JSON line."""
    typer.echo(json.dumps(asyncio.run(_with_container(settings or _settings(), action)), default=str))


@app.command()
def migrate() -> None:
    """Create the database if missing and apply pending migrations (safe to run from many replicas at once)."""
    from backend.db import ensure_database
    from backend.db import migrate as run_migrations

    settings = _settings()

    async def run() -> list[str]:
        await ensure_database(settings.database_url)
        return await run_migrations(settings.database_url)

    applied = asyncio.run(run())
    typer.echo(json.dumps({"applied": applied}))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    worker: Optional[bool] = typer.Option(
        None, "--worker/--no-worker", help="Run the job worker in this process (default: PRS_EMBEDDED_WORKER)."
    ),
) -> None:
    """Run the HTTP API (and, on embedded defaults, the job worker)."""
    from backend.main import create_app
    from backend.serving import serve_http

    settings = _settings()
    _claim_embedded_vector_store(settings)
    application = create_app(settings, run_worker=worker)
    # On SIGTERM: not-ready for PRS_SHUTDOWN_DRAIN_S, then finish in-flight requests (backend/serving.py).
    serve_http(
        application,
        host=host,
        port=port,
        drain_s=settings.shutdown_drain_s,
        shutdown_timeout_s=settings.shutdown_timeout_s,
        max_header_bytes=settings.max_request_header_bytes,
    )


@app.command("worker")
def worker_command() -> None:
    """Run the job worker (suggestions, vector-index sync, stalled-job recovery) until SIGTERM/SIGINT."""
    from backend.jobs.worker import run_worker

    settings = _settings()
    _claim_embedded_vector_store(settings)

    async def run(services) -> None:
        from backend.observability.monitoring import render_metrics, watch_llm_nodes

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server = await _metrics_server(settings, lambda: render_metrics(services.metrics.registry, services.db_gauges))
        node_watch = asyncio.create_task(
            watch_llm_nodes(services.llm, services.metrics, stop=stop, interval_s=settings.llm_health_interval_s)
        )
        try:
            await run_worker(services, stop)
        finally:
            stop.set()
            await asyncio.gather(node_watch, return_exceptions=True)
            if server is not None:
                server.close()

    asyncio.run(_with_container(settings, run))


async def _metrics_server(settings: Settings, render):
    """The /metrics server of a worker process on PRS_METRICS_PORT (None when the port is 0)."""
    from backend.observability.monitoring import start_metrics_server

    if not settings.metrics_port:
        return None
    return await start_metrics_server(render, host=settings.metrics_host, port=settings.metrics_port)


@llm_app.command("serve")
def llm_serve(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(11434),
    model_path: str = typer.Option("", help="GGUF file; default PRS_LLM_MODEL_PATH or the bundled model."),
    model_name: str = typer.Option("", help="Name announced to clients; default PRS_LLM_MODEL."),
) -> None:
    """Serve a GGUF model over the Ollama REST API (the embedded default LLM node)."""
    from llm_node.server import serve as serve_node

    settings = _settings()
    serve_node(
        host=host,
        port=port,
        model_path=model_path or settings.llm_model_path or None,
        model_name=model_name or settings.llm_model,
        data_dir=settings.ensure_data_dir(),
        threads=settings.llm_threads,
        n_ctx=settings.llm_context,
    )


@user_app.command("create")
def user_create(
    username: str = typer.Option(...),
    password: str = typer.Option(..., prompt=True, hide_input=True),
    role: str = typer.Option("reporter", help="reporter, technician, supervisor, admin or auditor"),
    display_name: str = typer.Option(""),
    must_change: bool = typer.Option(
        False, "--must-change", help="The person must choose a new password at the first login."
    ),
) -> None:
    """Create a local account (use it to make the first admin)."""
    from backend.auth.schemas import UserCreate
    from backend.context import system_context
    from backend.errors import AppError

    settings = _settings()
    try:
        body = UserCreate.model_validate(
            {
                "username": username,
                "password": password,
                "role": role,
                "display_name": display_name,
                "must_change_password": must_change,
            }
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)

    async def run(services):
        return await services.auth.create_user(system_context("cli"), body)

    try:
        user = asyncio.run(_with_container(settings, run))
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps({"id": user["id"], "username": user["username"], "role": user["role"]}))


@user_app.command("ensure-admin")
def user_ensure_admin(username: str = typer.Option("admin")) -> None:
    """Create an admin with a random password if none exists; the password goes to DATA_DIR/initial-admin-password
    and must be changed at the first login."""
    from backend.auth.schemas import UserCreate
    from backend.context import system_context

    settings = _settings()

    async def run(services):
        if any(u["role"] == "admin" and u["is_active"] for u in await services.auth.list_users()):
            return None
        password = "Prs-" + secrets.token_urlsafe(12) + "a1A"
        await services.auth.create_user(
            system_context("cli"),
            UserCreate(username=username, password=password, role="admin", must_change_password=True),
        )
        return password

    password = asyncio.run(_with_container(settings, run))
    secret_file = settings.ensure_data_dir() / "initial-admin-password"
    if password is not None:
        secret_file.write_text(f"{username} {password}\n")
        secret_file.chmod(0o600)
        typer.echo(
            f"created admin '{username}'; its password is in {secret_file} and must be changed at the first login"
        )
    else:
        typer.echo("an active admin exists; nothing to do")


@app.command()
def reindex() -> None:
    """Rebuild the vector index from Postgres (the source of truth)."""
    settings = _settings()
    report = asyncio.run(_with_container(settings, lambda s: s.knowledge.reindex()))
    typer.echo(json.dumps(report, default=str))


@knowledge_app.command("adapt")
def knowledge_adapt(
    out: Path = typer.Option(..., "--out", help="Folder for the adapted encoder (written beside, then renamed)."),
    epochs: int = typer.Option(AdaptationParams.epochs, min=1, help="Passes over the knowledge base (or its sample)."),
    max_steps: int = typer.Option(
        AdaptationParams.max_steps, min=1, help="At most this many batches of 32 (bounds the time)."
    ),
    pairs: Path | None = typer.Option(
        None,
        "--pairs",
        exists=True,
        dir_okay=False,
        help='Confirmed matches to learn, JSONL: {"query": "<report>", "document_id": N} or '
        '{"query": "<report>", "incident_id": N} per line.',
    ),
    feedback: bool = typer.Option(
        True, "--feedback/--no-feedback", help="Also learn the accepted suggestions (report against what they cited)."
    ),
    pair_epochs: int = typer.Option(AdaptationParams.pair_epochs, min=1, help="Passes over the confirmed matches."),
    max_pairs: int = typer.Option(
        AdaptationParams.max_pairs, min=2, help="At most this many confirmed matches (bounds the time)."
    ),
) -> None:
    """Adapt the encoder to the knowledge base (from its own entries, and from the confirmed matches
    of --pairs and accepted suggestions), then rebuild the vector index with it. Afterwards set
    PRS_EMBEDDING_MODEL to the --out folder on every API replica and worker and restart them: until
    then their dense retrieval is paused (lexical only)."""
    from backend.errors import AppError

    settings = _settings()
    params = AdaptationParams(epochs=epochs, max_steps=max_steps, pair_epochs=pair_epochs, max_pairs=max_pairs)
    try:
        matches = read_confirmed_matches(pairs) if pairs else []
    except AppError as exc:  # a bad line: nothing has run yet
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2)

    def progress(step: int, total: int, loss: float) -> None:
        if step == 1 or step % 10 == 0 or step == total:
            typer.echo(f"step {step}/{total} loss {loss:.3f}", err=True)

    async def run(c: Container) -> dict[str, Any]:
        return await c.knowledge.adapt_encoder(
            out.resolve(), params, matches=matches, from_feedback=feedback, progress=progress
        )

    try:
        _print_json(run, settings)
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2)
    except OSError as exc:  # e.g. --out not writable: nothing was replaced (the model is written beside it first)
        typer.echo(f"error: adapting the encoder failed, nothing changed: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(
        f"next: set PRS_EMBEDDING_MODEL={out.resolve()} on every API replica and worker, then restart them",
        err=True,
    )


@ingest_app.command("incidents")
def ingest_incidents(
    path: Path = typer.Argument(..., exists=True, dir_okay=False),
    mapping: str = typer.Option("prs", help="prs (our JSONL fields) or jira (the eval data set)"),
    create_areas: bool = typer.Option(True, help="Create unknown areas instead of failing."),
    bulk: bool = typer.Option(
        False,
        help="Large load (e.g. the first import): build the ordered BM25 indexes once at the end; "
        "lexical search is slow until then.",
    ),
) -> None:
    """Import past resolved incidents from JSONL (idempotent on their key)."""
    if mapping not in ("prs", "jira"):
        raise typer.BadParameter("use prs or jira", param_hint="--mapping")
    fields = cast(Literal["prs", "jira"], mapping)

    async def run(c):
        if not bulk:
            return await c.knowledge.ingest_incidents_jsonl(path, create_areas=create_areas, mapping=fields)
        async with c.knowledge.bulk_import():
            return await c.knowledge.ingest_incidents_jsonl(
                path, create_areas=create_areas, mapping=fields, vacuum=False
            )

    _print_json(run)


@ingest_app.command("documents")
def ingest_documents(
    paths: list[Path] = typer.Argument(..., exists=True, dir_okay=False), area: Optional[str] = typer.Option(None)
) -> None:
    """Add knowledge documents (.md or .txt runbooks), chunked and indexed."""
    settings = _settings()

    async def run(services):
        # One bulk call: chunks of every file are embedded together, in large batches.
        return await services.knowledge.ingest_documents(
            [
                {
                    "title": path.stem.replace("_", " "),
                    "filename": path.name,
                    "text": path.read_text(encoding="utf-8"),
                    "area": area,
                }
                for path in paths
            ]
        )

    _print_json(run, settings)


@demo_app.command("load")
def demo_load() -> None:
    """Load the bundled demo knowledge base (past incidents and runbooks); safe to run again."""
    from backend.demo import demo_incidents_path, demo_runbook_paths

    settings = _settings()

    async def run(services):
        incidents = await services.knowledge.ingest_incidents_jsonl(
            demo_incidents_path(), create_areas=True, mapping="prs"
        )
        existing = {d["filename"] for d in await services.knowledge.list_documents()}
        documents = 0
        for path in demo_runbook_paths():
            if path.name not in existing:
                await services.knowledge.ingest_document(
                    title=path.stem.replace("_", " ").replace("-", " "),
                    filename=path.name,
                    text=path.read_text(encoding="utf-8"),
                )
                documents += 1
        return {"incidents": incidents, "documents_added": documents}

    _print_json(run, settings)


@bench_app.command("retrieval")
def bench_retrieval(
    task: str = typer.Argument(..., help="jira or dell"),
    kb: Path = typer.Option(..., exists=True, dir_okay=False, help="knowledge-base file"),
    queries: Path = typer.Option(..., exists=True, dir_okay=False, help="queries file"),
    limit: Optional[int] = typer.Option(
        None, help="Only this many queries, spread over the file (quick runs; the knowledge base stays whole)."
    ),
    fit: bool = typer.Option(
        False, "--fit", help="Also fit the ranking weights on each half of the queries and score them on the other."
    ),
    adapt: bool = typer.Option(
        True,
        help="Adapt the encoder to the knowledge base after the ingest, as `prs knowledge adapt` does "
        "(figures with the base encoder under `unadapted`).",
    ),
    learn: bool = typer.Option(
        False,
        "--learn",
        help="Also learn confirmed matches (query, relevant entries), as a deployment with accepted suggestions "
        "does: each half of the queries is scored by an encoder adapted with the other half's matches "
        "(figures without them under `unsupervised`). Twice the adaptation time.",
    ),
) -> None:
    """Retrieval quality and speed on the eval data; the last stdout line is one JSON object."""
    from bench.retrieval import Task, run_retrieval_bench

    if task not in ("jira", "dell"):
        typer.echo("task must be jira or dell", err=True)
        raise typer.Exit(2)
    settings = _settings()
    result = asyncio.run(
        run_retrieval_bench(settings, cast(Task, task), kb, queries, limit=limit, fit=fit, adapt=adapt, learn=learn)
    )
    sys.stdout.write(json.dumps(result) + "\n")


@bench_app.command("intake")
def bench_intake(
    kb: Path = typer.Option(
        ..., exists=True, dir_okay=False, help="JSONL of past incidents in the JIRA format (the knowledge base)"
    ),
    requests: int = typer.Option(200, help="Incidents to report (after 5 for warm-up)."),
    kb_limit: Optional[int] = typer.Option(None, help="Import only the first N incidents of the file."),
) -> None:
    """Latency of POST /api/v1/incidents next to its retrieval floor; the last stdout line is one JSON object."""
    from bench.intake import run_intake_bench

    result = asyncio.run(run_intake_bench(_settings(), kb, requests=requests, kb_limit=kb_limit))
    sys.stdout.write(json.dumps(result) + "\n")


@bench_app.command("scale")
def bench_scale(
    kb: Path = typer.Option(
        ...,
        exists=True,
        dir_okay=False,
        help="JSONL of past incidents in the JIRA format (the material of the entries)",
    ),
    entries: int = typer.Option(1_000_000, min=1, help="Knowledge-base entries to build."),
    queries: int = typer.Option(200, min=1, help="Queries to time (after 10 for warm-up)."),
    batch: int = typer.Option(50_000, min=1, help="Entries per import call."),
    exhaustive: int = typer.Option(
        20, min=0, help="Queries also timed with BM25 over every posting (the design before impact ordering)."
    ),
) -> None:
    """Retrieval latency at a million incidents (synthetic, from the file's records) in a scratch database:
    lexical, dense and fused, with and without an area; build time, disk and memory. Last stdout line: JSON."""
    from bench.scale import run_scale_bench

    result = asyncio.run(
        run_scale_bench(_settings(), kb, entries=entries, queries=queries, batch=batch, exhaustive_queries=exhaustive)
    )
    sys.stdout.write(json.dumps(result) + "\n")


notify_app = typer.Typer(help="Notifications (webhooks, Slack, e-mail).", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


@notify_app.command("worker")
def notify_worker() -> None:
    """Run only the notification delivery loop until SIGTERM/SIGINT (scale deliveries apart from other jobs)."""
    from backend.clock import SystemClock
    from backend.db import create_pool
    from backend.notify.wiring import build_notify
    from backend.sla.service import EscalationMessageReader

    settings = _settings()

    async def run() -> None:
        from prometheus_client import generate_latest

        from backend.observability.metrics import Metrics, PoolCollector

        pool = await create_pool(settings.database_url, min_size=1, max_size=settings.notify_batch_size + 2)
        server = None
        try:
            metrics = Metrics()
            metrics.registry.register(PoolCollector(pool))
            notify = build_notify(
                settings,
                pool=pool,
                clock=SystemClock(),
                registry=metrics.registry,
                escalation_messages=EscalationMessageReader(pool),
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)

            async def render() -> bytes:
                return generate_latest(metrics.registry)

            server = await _metrics_server(settings, render)
            await notify.delivery.run(stop)
        finally:
            if server is not None:
                server.close()
            await pool.close()

    asyncio.run(run())


@bench_app.command("access")
def bench_access(
    writers: int = typer.Option(8, help="Concurrent transactions writing audit rows."),
    rows: int = typer.Option(250, help="Audit rows per writer, one per transaction."),
    checks: int = typer.Option(500, help="API-key checks timed one after another."),
) -> None:
    """Audit rows/s under concurrency (hash chain at commit), chain verification rows/s and API-key check
    latency, in a throwaway database; the last stdout line is one JSON object."""
    from bench.access import run_access_bench

    settings = _settings()
    result = asyncio.run(run_access_bench(settings, writers=writers, rows_per_writer=rows, checks=checks))
    sys.stdout.write(json.dumps(result) + "\n")


@bench_app.command("webhooks")
def bench_webhooks(
    events: int = typer.Option(400, help="Events to deliver in the throughput phase."),
    endpoints: int = typer.Option(4, help="Webhook endpoints (each keeps its own order)."),
    workers: int = typer.Option(2, help="Delivery workers running at once."),
    latency_events: int = typer.Option(200, help="Events committed one by one in the latency phase."),
    rate: float = typer.Option(50.0, help="Events per second in the latency phase."),
) -> None:
    """Deliveries per second and commit-to-delivery delay (p50, p95) to a healthy loopback receiver, in a throwaway
    database; the last stdout line is one JSON object."""
    from bench.webhooks import run_webhook_bench

    settings = _settings()
    result = asyncio.run(
        run_webhook_bench(
            settings, events=events, endpoints=endpoints, workers=workers, latency_events=latency_events, rate=rate
        )
    )
    sys.stdout.write(json.dumps(result) + "\n")


@bench_app.command("jobs")
def bench_jobs(
    events: int = typer.Option(400, help="Events to deliver."),
    endpoints: int = typer.Option(4, help="Endpoints (each must see its events in order)."),
    delivery_ms: float = typer.Option(7.0, help="Time one delivery takes (webhook bench median)."),
    batch_size: int = typer.Option(10, help="Jobs a pgqueuer worker fetches at once."),
) -> None:
    """pgqueuer running webhook-style deliveries with per-endpoint order (serialised) and without, side by side, in
    a throwaway database; compare with `prs bench webhooks` (docs/jobs.md). The last stdout line is JSON."""
    from bench.jobs import run_jobs_bench

    result = asyncio.run(
        run_jobs_bench(_settings(), events=events, endpoints=endpoints, delivery_ms=delivery_ms, batch_size=batch_size)
    )
    sys.stdout.write(json.dumps(result) + "\n")


@bench_app.command("suggestions-load")
def bench_suggestions_load(
    incidents: int = typer.Option(300, help="Incidents reported in the burst."),
    report_s: float = typer.Option(50.0, help="Seconds over which they are reported."),
    outage_s: float = typer.Option(60.0, help="Seconds one of the two LLM nodes is stopped, mid-burst."),
    max_tokens: int = typer.Option(48, help="Length of each suggestion in tokens."),
    workers: int = typer.Option(2, help="Workers admitting generations (each a dispatcher)."),
    timeout_s: float = typer.Option(1500.0, help="Longest wait for every suggestion to settle."),
) -> None:
    """A burst of incidents on two real LLM nodes, one stopped for a while: completed/skipped/failed, cancelled
    generations, useful tokens/s against capacity and critical time to ready; last stdout line is JSON."""
    from bench.suggestions_load import run_suggestions_load_bench

    settings = _settings()
    result = asyncio.run(
        run_suggestions_load_bench(
            settings,
            incidents=incidents,
            report_s=report_s,
            outage_s=outage_s,
            max_tokens=max_tokens,
            workers=workers,
            timeout_s=timeout_s,
        )
    )
    sys.stdout.write(json.dumps(result) + "\n")


@bench_app.command("llm")
def bench_llm(
    runs: int = typer.Option(7, min=5, help="Rounds; each sends the prompt once through every path."),
    max_tokens: int = typer.Option(128, min=8, help="Tokens generated per run."),
    threads: int = typer.Option(0, min=0, help="llama.cpp threads for the node and for direct; 0: all cores."),
) -> None:
    """The bundled model through llama-cpp-python directly, through an LLM node it starts, and through the
    cluster client, in alternating rounds: median time to first token and tokens/s of each, the ratios to direct
    (`ttft_ratio`, `tps_ratio`: cluster client over direct) and the node's RSS. The last stdout line is JSON."""
    import os

    from bench.llm import run_llm_bench

    result = asyncio.run(
        run_llm_bench(_settings(), runs=runs, max_tokens=max_tokens, threads=threads or (os.cpu_count() or 1))
    )
    sys.stdout.write(json.dumps(result) + "\n")


bench_suggestions_app = typer.Typer(help="Suggestion quality on the eval data.", no_args_is_help=True)
bench_app.add_typer(bench_suggestions_app, name="suggestions")


@bench_suggestions_app.command("dell")
def bench_suggestions_dell(
    kb: Path = typer.Option(..., exists=True, dir_okay=False, help="dellqa_solutions.jsonl.gz"),
    queries: Path = typer.Option(..., exists=True, dir_okay=False, help="dellqa_questions.jsonl"),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N questions."),
    leave_one_out: bool = typer.Option(
        False,
        "--leave-one-out",
        help="Also run each question with its "
        "reference solution taken out of what retrieval returns (a case never "
        "seen), reported under leave_one_out.",
    ),
    out: Optional[Path] = typer.Option(
        None, dir_okay=False, help="One JSON line per question (query_id, suggestion, top1_text, reference, citations)."
    ),
) -> None:
    """Suggestion quality against DellQA's accepted answers, next to showing the top retrieved solution as it is;
    uses PRS_LLM_NODES when set, else starts a bundled node. The last stdout line is one JSON object."""
    from bench.suggestions_dell import run_dell_suggestions_bench

    settings = _settings()
    result = asyncio.run(
        run_dell_suggestions_bench(
            settings,
            kb_path=kb,
            queries_path=queries,
            limit=limit,
            leave_one_out=leave_one_out,
            out_path=out,
            start_node="llm_nodes" not in settings.model_fields_set,
        )
    )
    sys.stdout.write(json.dumps(result) + "\n")


@bench_suggestions_app.command("rescore")
def bench_suggestions_rescore(
    out: Path = typer.Option(..., exists=True, dir_okay=False, help="An --out file of `prs bench suggestions`."),
    queries: Path = typer.Option(..., exists=True, dir_okay=False, help="dellqa_questions.jsonl"),
) -> None:
    """Every score of an --out file computed again from its texts (a run cut short, or older definitions);
    the last stdout line is one JSON object."""
    from bench.suggestions_dell import rescore_lines

    sys.stdout.write(json.dumps(rescore_lines(out, queries)) + "\n")


audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    anchors: bool = typer.Option(
        False,
        "--anchors",
        help="Also check every audit anchor in PRS_BACKUP_ANCHOR_BUCKET; names the first that no longer matches.",
    ),
) -> None:
    """Check the audit log's hash chain; print the first broken link (exit 1) or the head hash (exit 0)."""
    from backend.audit.service import verify_chain
    from backend.db import create_pool

    settings = _settings()
    if anchors:
        from backups.cli import audit_verify_with_anchors

        anchored = audit_verify_with_anchors(settings)
        typer.echo(json.dumps(anchored))
        if not anchored["ok"]:
            raise typer.Exit(1)
        return

    async def run() -> dict:
        pool = await create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            return await verify_chain(pool)
        finally:
            await pool.close()

    report = asyncio.run(run())
    typer.echo(json.dumps(report))
    if not report["ok"]:
        raise typer.Exit(1)


keys_app = typer.Typer(help="JWT signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new JWT signing key; the old one verifies until its tokens have expired (no one is signed out)."""
    from backend.context import system_context

    _print_json(lambda c: c.auth.signing_keys.rotate(system_context("cli")))


@keys_app.command("list")
def keys_list() -> None:
    """Print the JWT signing keys of this PRS_JWT_SECRET and their state (never a secret)."""
    _print_json(lambda c: c.auth.signing_keys.list())


sla_app = typer.Typer(help="SLAs, escalation and maintenance (normally run by the workers).", no_args_is_help=True)
app.add_typer(sla_app, name="sla")


@sla_app.command("sweep")
def sla_sweep() -> None:
    """Run one SLA sweep now (record crossed warnings/breaches, apply escalation rules) and print what it did."""

    async def sweep(c: Container) -> dict[str, Any]:
        return (await c.sla.sweep()).as_dict()

    _print_json(sweep)


@sla_app.command("maintenance")
def sla_maintenance() -> None:
    """Run the maintenance job now (retention clean-up of old job and tick rows, ANALYZE) and print the report."""
    _print_json(lambda c: c.maintenance.run())


def _add_backup_commands() -> None:
    """`prs backup ...` and `prs bench backup` (backups/cli.py)."""
    from backups.cli import backup_app, bench_backup

    app.add_typer(backup_app, name="backup")
    bench_app.command("backup")(bench_backup)


_add_backup_commands()

if __name__ == "__main__":
    app()
