"""The backup subsystem's typed constructor: metrics, and the service and audit anchors when storage is configured."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg
from prometheus_client import CollectorRegistry

from agent.store import ChromaVectorStore
from backend.clock import Clock
from backend.config import Settings
from backups.anchors import AnchorStore
from backups.metrics import BackupMetrics
from backups.service import BackupService
from backups.storage import ObjectStore

log = logging.getLogger(__name__)
BACKUP_TASK = "backup.run"
ANCHOR_TASK = "audit.anchor"


@dataclass
class Backups:
    """The backup subsystem of one process: `service` is None when PRS_BACKUP_S3_ENDPOINT is empty."""

    metrics: BackupMetrics
    service: BackupService | None
    anchors: AnchorStore | None


def build_backup_service(
    settings: Settings,
    *,
    pool: asyncpg.Pool,
    clock: Clock,
    vector_store: ChromaVectorStore | None,
    metrics: BackupMetrics | None,
) -> BackupService:
    """The backup service of configured storage (BackupsNotConfigured without an endpoint)."""
    store = ObjectStore.from_settings(settings)
    anchors = AnchorStore.from_settings(settings, store, clock) if settings.backup_anchor_bucket else None
    return BackupService(
        settings=settings,
        pool=pool,
        clock=clock,
        store=store,
        vector_store=vector_store,
        metrics=metrics,
        anchors=anchors,
    )


def build_backups(
    settings: Settings,
    *,
    pool: asyncpg.Pool,
    clock: Clock,
    vector_store: ChromaVectorStore,
    registry: CollectorRegistry,
) -> Backups:
    """Metrics always; the service and the anchors only when storage is configured."""
    metrics = BackupMetrics(registry)
    if not settings.backup_s3_endpoint:
        return Backups(metrics=metrics, service=None, anchors=None)
    service = build_backup_service(settings, pool=pool, clock=clock, vector_store=vector_store, metrics=metrics)
    return Backups(metrics=metrics, service=service, anchors=service.anchors)
