"""Put backups into a Container container: the service (when storage is configured), metrics and periodic jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backend.clock import Clock
from backend.config import Settings
from backend.jobs.scheduler import PeriodicTask
from backups.anchors import AnchorStore, anchor_audit_head
from backups.metrics import BackupMetrics
from backups.service import BackupService
from backups.storage import ObjectStore

log = logging.getLogger(__name__)
BACKUP_TASK = "backup.run"
ANCHOR_TASK = "audit.anchor"
SCHEDULE_INTERVAL = timedelta(hours=1)


@dataclass
class Backups:
    """The backup subsystem of one process: `service` is None when PRS_BACKUP_S3_ENDPOINT is empty."""

    metrics: BackupMetrics
    service: BackupService | None
    anchors: AnchorStore | None


def build_backup_service(settings: Settings, *, pool: Any, clock: Clock, vector_store: Any,
                         metrics: BackupMetrics | None) -> BackupService:
    """The backup service of configured storage (BackupsNotConfigured without an endpoint)."""
    store = ObjectStore.from_settings(settings)
    anchors = AnchorStore.from_settings(settings, store, clock) if settings.backup_anchor_bucket else None
    return BackupService(settings=settings, pool=pool, clock=clock, store=store, vector_store=vector_store,
                         metrics=metrics, anchors=anchors)


def install_backups(services: Any) -> None:
    """Metrics always; with storage configured, the hourly backup job and the hourly audit anchor."""
    settings = services.settings
    metrics = BackupMetrics(services.metrics.registry)
    services.worker_loops.append(lambda stop: metrics.refresh_forever(services.pool, stop))
    if not settings.backup_s3_endpoint:
        services.backups = Backups(metrics=metrics, service=None, anchors=None)
        return
    service = build_backup_service(settings, pool=services.pool, clock=services.clock,
                                   vector_store=services.vector_store, metrics=metrics)
    services.backups = Backups(metrics=metrics, service=service, anchors=service.anchors)
    services.scheduler.register(PeriodicTask(BACKUP_TASK, SCHEDULE_INTERVAL, service.scheduled_run))
    if service.anchors is not None:
        anchors = service.anchors

        async def anchor(_tick: datetime) -> dict[str, Any]:
            return await anchor_audit_head(services.pool, anchors, reason="hourly")

        services.scheduler.register(PeriodicTask(ANCHOR_TASK, SCHEDULE_INTERVAL, anchor))
