"""The service container: built once per process from Settings, shared by the API and the worker."""

from __future__ import annotations

import os
from datetime import timedelta
import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import asyncpg

from agent.embeddings import Encoder
from agent.llm import LLMCluster
from agent.store import ChromaVectorStore
from backend.alerting.service import AlertService
from backend.apikeys.service import ApiKeyService
from backend.auth.service import AuthService
from backend.auth.wiring import build_auth, register_auth_tasks
from backend.clock import Clock, SystemClock
from backend.config import Settings
from backend.db import create_pool
from backend.events import EventBus
from backend.scheduler.service import PeriodicScheduler, PeriodicTask
from backend.incidents.service import IncidentService
from backend.knowledge.service import KnowledgeService
from backend.notify.wiring import build_notify, register_notify
from backend.observability.db_gauges import DatabaseGauges
from backend.observability.metrics import Metrics, PoolCollector
from backend.sla.wiring import install_sla
from backend.suggestions.service import SuggestionService, suggester_for
from backups.wiring import install_backups


@dataclass
class Services:
    """Everything with state that handlers and jobs use."""

    settings: Settings
    clock: Clock
    pool: asyncpg.Pool
    metrics: Metrics
    encoder: Encoder
    vector_store: Any
    llm: LLMCluster
    knowledge: KnowledgeService
    auth: AuthService
    incidents: IncidentService
    suggestions: SuggestionService
    events: EventBus
    scheduler: PeriodicScheduler
    # Extra long-running loops the worker runs beside the job queue, e.g. outbox delivery: fn(stop_event).
    worker_loops: list[Callable[[asyncio.Event], Awaitable[None]]] = field(default_factory=list)
    # API keys of external systems: administration and the per-request check (backend/apikeys).
    api_keys: ApiKeyService | None = None
    # Notifications: endpoints admin, outbox listener and delivery worker (backend/notify).
    notify: Any = None
    # SLAs: policies, clocks, sweeps, escalation (backend/sla); metrics; periodic maintenance.
    sla: Any = None
    sla_metrics: Any = None
    maintenance: Any = None
    # Backups to S3-compatible storage and audit anchors (backups/): metrics, service (None when unconfigured).
    backups: Any = None
    # Gauges read from the database when /metrics is scraped (backend/observability).
    db_gauges: DatabaseGauges | None = None
    # Alertmanager alerts that become incidents (backend/alerting).
    alerts: Any = None

    async def aclose(self) -> None:
        """Release connections."""
        await self.llm.aclose()
        await self.pool.close()


def build_vector_store(settings: Settings) -> Any:
    """Chroma over HTTP when a server URL is configured, else embedded in the data folder."""
    if settings.chroma_url:
        return ChromaVectorStore.http(settings.chroma_url, settings.chroma_collection)
    return ChromaVectorStore.persistent(settings.ensure_data_dir() / "chroma", settings.chroma_collection)


async def build_services(settings: Settings, *, clock: Clock | None = None, encoder: Encoder | None = None,
                         metrics: Metrics | None = None) -> Services:
    """Open the pool and wire every service; tests pass a clock or a shared encoder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    clock = clock or SystemClock()
    pool = await create_pool(settings.database_url, min_size=settings.database_pool_min,
                             max_size=settings.database_pool_max)
    encoder = encoder or Encoder(settings.embedding_model, batch_size=settings.embedding_batch_size)
    vector_store = build_vector_store(settings)
    llm = LLMCluster(settings.llm_node_urls, settings.llm_model, timeout_s=settings.llm_timeout_s,
                     connect_timeout_s=settings.llm_connect_timeout_s, cooldown_s=settings.llm_node_cooldown_s,
                     prompt_style=settings.llm_prompt_style)
    knowledge = KnowledgeService(settings, pool, encoder, vector_store, clock)
    metrics = metrics or Metrics()
    events = EventBus()
    suggester = suggester_for(settings, llm)
    services = Services(
        settings=settings, clock=clock, pool=pool, metrics=metrics, encoder=encoder,
        vector_store=vector_store, llm=llm, knowledge=knowledge,
        auth=build_auth(settings, pool=pool, clock=clock, events=events),
        incidents=IncidentService(settings=settings, pool=pool, clock=clock, knowledge=knowledge, metrics=metrics,
                                  events=events),
        suggestions=SuggestionService(settings=settings, pool=pool, clock=clock, knowledge=knowledge,
                                      suggester=suggester, events=events, metrics=metrics),
        events=events,
        scheduler=PeriodicScheduler(pool=pool, clock=clock),
    )
    register_foundation_tasks(services)
    register_auth_tasks(services)
    services.api_keys = ApiKeyService(settings=settings, pool=pool, clock=clock)
    services.notify = build_notify(settings, pool=pool, clock=clock, registry=metrics.registry)
    register_notify(services)
    install_sla(services)
    install_backups(services)
    install_observability(services)
    services.alerts = AlertService(settings=settings, pool=pool, clock=clock, incidents=services.incidents,
                                   metrics=metrics)
    return services


def install_observability(services: Services) -> None:
    """Scrape-time database gauges, pool usage and the LLM node gauge of every configured node."""
    settings = services.settings
    services.db_gauges = DatabaseGauges(pool=services.pool, clock=services.clock, cache_s=settings.metrics_cache_s,
                                        timeout_s=settings.metrics_db_timeout_s)
    services.metrics.registry.register(services.db_gauges)
    services.metrics.registry.register(PoolCollector(services.pool))
    services.metrics.track_llm_nodes(settings.llm_node_urls)


def register_foundation_tasks(services: Services) -> None:
    """Periodic upkeep of the foundation: vector-index sync (suggestion recovery is the dispatcher's)."""

    async def sync_vectors(_tick: object) -> int:
        return await services.knowledge.sync_pending_vectors()

    services.scheduler.register(PeriodicTask("knowledge.sync_vectors", timedelta(seconds=30), sync_vectors))
