"""The typed container: every service of one process, built in one place from Settings and shared by the API and
the worker. Each domain exposes a typed constructor (`build_auth`, `build_notify`, `build_sla`, `build_backups`, or
its service's own constructor); this module is the only one that knows every domain, subscribes the listeners to
domain events and lists the background work (docs/jobs.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from agent.embeddings import Encoder
from agent.llm import LLMCluster
from agent.store import ChromaVectorStore
from backend.alerting.service import AlertService
from backend.apikeys.service import ApiKeyService
from backend.auth.service import AuthService
from backend.auth.wiring import build_auth
from backend.clock import Clock, SystemClock
from backend.config import Settings
from backend.db import create_pool
from backend.db_routing import ReadRouting, open_read_routing
from backend.events import EventBus
from backend.incidents.service import IncidentService
from backend.jobs.maintenance import MaintenanceService
from backend.jobs.scheduler import PeriodicScheduler, PeriodicTask, WorkerLoop
from backend.knowledge.service import KnowledgeService
from backend.live.hub import LiveHub, LivePublisher
from backend.notify.service import NotifyService
from backend.notify.wiring import build_notify
from backend.observability.db_gauges import DatabaseGauges
from backend.observability.metrics import Metrics, PoolCollector
from backend.sla.dashboard import DashboardService
from backend.sla.reports import SlaReportService
from backend.sla.service import EscalationMessageReader, SlaService
from backend.sla.wiring import SWEEP_TASK, build_sla
from backend.suggestions.service import SuggestionService, suggester_for
from backend.vector_store_lock import lock_embedded_vector_store, release_embedded_vector_store
from backups.anchors import anchor_audit_head
from backups.wiring import ANCHOR_TASK, BACKUP_TASK, Backups, build_backups

MAINTENANCE_TASK = "maintenance.run"
VECTOR_SYNC_TASK = "knowledge.sync_vectors"
SIGNING_KEY_TASK = "auth.destroy_retired_signing_keys"
NOTIFY_PURGE_TASK = "notify.purge_log"
IDEMPOTENCY_PURGE_TASK = "idempotency.purge_expired"


@dataclass
class Container:
    """Everything with state that handlers and background work use."""

    settings: Settings
    clock: Clock
    pool: asyncpg.Pool
    # Reads that may come from a standby (PRS_DATABASE_READ_URL), the primary as fallback (backend/db_routing.py).
    reads: ReadRouting
    metrics: Metrics
    encoder: Encoder
    vector_store: ChromaVectorStore
    llm: LLMCluster
    events: EventBus
    knowledge: KnowledgeService
    auth: AuthService
    api_keys: ApiKeyService
    incidents: IncidentService
    suggestions: SuggestionService
    sla: SlaService
    sla_reports: SlaReportService
    dashboard: DashboardService
    # Live incident changes for the web pages' SSE streams: one LISTEN connection per process (backend/live).
    live: LiveHub
    notify: NotifyService
    alerts: AlertService
    backups: Backups
    db_gauges: DatabaseGauges
    maintenance: MaintenanceService
    # Background work (run by `prs worker` / the embedded worker): periodic tasks and long-running loops.
    scheduler: PeriodicScheduler
    worker_loops: list[WorkerLoop] = field(default_factory=list)

    async def aclose(self) -> None:
        """Release connections."""
        await self.llm.aclose()
        await self.live.aclose()
        await self.reads.close()
        await self.pool.close()
        if not self.settings.chroma_url:
            release_embedded_vector_store(self.settings.chroma_path)


def build_vector_store(settings: Settings) -> ChromaVectorStore:
    """Chroma over HTTP when a server URL is configured, else embedded in the data folder."""
    if settings.chroma_url:
        return ChromaVectorStore.http(settings.chroma_url, settings.chroma_collection)
    folder = settings.ensure_data_dir() / "chroma"
    # One process per embedded folder: a second one refuses to start, naming PRS_CHROMA_URL.
    return ChromaVectorStore.persistent(
        folder, settings.chroma_collection, before_open=lambda: lock_embedded_vector_store(folder)
    )


async def build_container(
    settings: Settings, *, clock: Clock | None = None, encoder: Encoder | None = None, metrics: Metrics | None = None
) -> Container:
    """Open the pool and wire every service; tests pass a clock, a shared encoder or their own metrics."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    pool = await create_pool(
        settings.database_url,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        connect_timeout_s=settings.database_connect_timeout_s,
    )
    reads = await open_read_routing(
        pool,
        read_url=settings.database_read_url,
        cooldown_s=settings.database_read_cooldown_s,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        connect_timeout_s=settings.database_connect_timeout_s,
    )
    encoder = encoder or Encoder(settings.embedding_model, batch_size=settings.embedding_batch_size)
    vector_store = build_vector_store(settings)
    llm = LLMCluster(
        settings.llm_node_urls,
        settings.llm_model,
        timeout_s=settings.llm_timeout_s,
        connect_timeout_s=settings.llm_connect_timeout_s,
        cooldown_s=settings.llm_node_cooldown_s,
        prompt_style=settings.llm_prompt_style,
    )
    events = EventBus()
    knowledge = KnowledgeService(settings, pool, encoder, vector_store, clock)
    incidents = IncidentService(
        settings=settings, pool=pool, clock=clock, knowledge=knowledge, metrics=metrics, events=events, reads=reads
    )
    suggester = suggester_for(settings, llm)
    sla = build_sla(settings, pool=pool, reads=reads, clock=clock, events=events, incidents=incidents)
    notify = build_notify(
        settings, pool=pool, clock=clock, registry=metrics.registry, escalation_messages=EscalationMessageReader(pool)
    )
    container = Container(
        settings=settings,
        clock=clock,
        pool=pool,
        reads=reads,
        metrics=metrics,
        encoder=encoder,
        vector_store=vector_store,
        llm=llm,
        events=events,
        knowledge=knowledge,
        auth=build_auth(settings, pool=pool, clock=clock, events=events),
        api_keys=ApiKeyService(settings=settings, pool=pool, clock=clock),
        incidents=incidents,
        suggestions=SuggestionService(
            settings=settings,
            pool=pool,
            clock=clock,
            knowledge=knowledge,
            suggester=suggester,
            events=events,
            metrics=metrics,
        ),
        sla=sla.service,
        sla_reports=sla.reports,
        notify=notify,
        dashboard=DashboardService(pool=reads, clock=clock, encoder=encoder),
        live=LiveHub(settings.database_url),
        alerts=AlertService(settings=settings, pool=pool, clock=clock, incidents=incidents, metrics=metrics),
        backups=build_backups(settings, pool=pool, clock=clock, vector_store=vector_store, registry=metrics.registry),
        db_gauges=DatabaseGauges(
            pool=reads, clock=clock, cache_s=settings.metrics_cache_s, timeout_s=settings.metrics_db_timeout_s
        ),
        maintenance=MaintenanceService(pool=pool, clock=clock, settings=settings),
        scheduler=PeriodicScheduler(pool=pool, clock=clock),
    )
    # Listeners of domain events, called inside the transaction that publishes them.
    events.subscribe(notify.outbox)
    events.subscribe(sla.timers)
    events.subscribe(LivePublisher())
    # Scrape-time gauges: the database, the pool and every configured LLM node.
    metrics.registry.register(container.db_gauges)
    metrics.registry.register(PoolCollector(pool))
    metrics.track_llm_nodes(settings.llm_node_urls)
    _register_background_work(container)
    return container


def _register_background_work(c: Container) -> None:
    """Every periodic task and long-running loop a worker runs, in one list (docs/jobs.md). Suggestion generation
    is not here: the worker runs the suggestion dispatcher itself (backend/suggestions/dispatcher.py)."""
    settings = c.settings

    async def sync_vectors(_tick: datetime) -> int:
        await c.knowledge.recover_abandoned_bulk_import()
        return await c.knowledge.sync_pending_vectors()

    async def destroy_retired_signing_keys(_tick: datetime) -> int:
        return await c.auth.signing_keys.destroy_expired()

    async def purge_idempotency_keys(_tick: datetime) -> int:
        return await c.incidents.idempotency.purge_expired()

    async def sweep(_tick: datetime) -> dict[str, Any]:
        return (await c.sla.sweep()).as_dict()

    async def maintain(_tick: datetime) -> dict[str, Any]:
        return await c.maintenance.run()

    c.scheduler.register(PeriodicTask(VECTOR_SYNC_TASK, timedelta(seconds=30), sync_vectors))
    c.scheduler.register(PeriodicTask(SIGNING_KEY_TASK, timedelta(minutes=5), destroy_retired_signing_keys))
    c.scheduler.register(PeriodicTask(NOTIFY_PURGE_TASK, timedelta(hours=1), c.notify.purge_old_log))
    c.scheduler.register(PeriodicTask(IDEMPOTENCY_PURGE_TASK, timedelta(hours=1), purge_idempotency_keys))
    c.scheduler.register(PeriodicTask(SWEEP_TASK, timedelta(seconds=settings.sla_sweep_interval_s), sweep))
    c.scheduler.register(PeriodicTask(MAINTENANCE_TASK, timedelta(seconds=settings.maintenance_interval_s), maintain))
    c.worker_loops.append(c.notify.delivery.run)
    c.worker_loops.append(lambda stop: c.backups.metrics.refresh_forever(c.pool, stop))
    backups = c.backups.service
    if backups is None:
        return
    c.scheduler.register(PeriodicTask(BACKUP_TASK, timedelta(hours=1), backups.scheduled_run))
    anchors = backups.anchors
    if anchors is not None:

        async def anchor(_tick: datetime) -> dict[str, Any]:
            return await anchor_audit_head(c.pool, anchors, reason="hourly")

        c.scheduler.register(PeriodicTask(ANCHOR_TASK, timedelta(hours=1), anchor))
