"""Build the notification subsystem from Settings and plug it into the service container."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry

from backend.clock import Clock
from backend.config import Settings
from backend.notify.crypto import SecretBox, resolve_notify_key
from backend.notify.delivery import DeliveryWorker, NotifyMetrics
from backend.notify.service import NotifyService
from backend.notify.ssrf import OutboundPolicy
from backend.jobs.scheduler import PeriodicTask

RETENTION_INTERVAL = timedelta(hours=1)


def build_notify(settings: Settings, *, pool: asyncpg.Pool, clock: Clock, registry: CollectorRegistry | None,
                 worker_name: str | None = None) -> NotifyService:
    """The admin service with its outbox listener and its delivery worker."""
    if settings.notify_lease_s <= settings.notify_timeout_s:
        # A lease shorter than an attempt would let a second worker send a delivery that is still in flight.
        raise ValueError("PRS_NOTIFY_LEASE_S must be longer than PRS_NOTIFY_TIMEOUT_S")
    secret_box = SecretBox(resolve_notify_key(settings))
    policy = OutboundPolicy.from_settings(settings)
    delivery = DeliveryWorker(settings=settings, pool=pool, clock=clock, secret_box=secret_box, policy=policy,
                              metrics=NotifyMetrics(registry) if registry is not None else None,
                              worker_name=worker_name)
    return NotifyService(settings=settings, pool=pool, clock=clock, secret_box=secret_box, policy=policy,
                         delivery=delivery)


def register_notify(services: Any) -> None:
    """Subscribe the outbox to domain events, add the delivery loop to the worker, schedule log retention."""
    notify: NotifyService = services.notify
    services.events.subscribe(notify.outbox)
    services.worker_loops.append(notify.delivery.run)
    services.scheduler.register(PeriodicTask("notify.purge_log", RETENTION_INTERVAL, notify.purge_old_log))
