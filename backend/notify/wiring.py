"""The notification domain's typed constructor: the admin service with its outbox listener and delivery worker."""

from __future__ import annotations

import asyncpg
from prometheus_client import CollectorRegistry

from backend.clock import Clock
from backend.config import Settings
from backend.notify.crypto import SecretBox, resolve_notify_key
from backend.notify.delivery import DeliveryWorker, EscalationMessages, NotifyMetrics
from backend.notify.service import NotifyService
from backend.notify.ssrf import OutboundPolicy


def build_notify(
    settings: Settings,
    *,
    pool: asyncpg.Pool,
    clock: Clock,
    registry: CollectorRegistry | None,
    worker_name: str | None = None,
    escalation_messages: EscalationMessages | None = None,
) -> NotifyService:
    """The admin service with its outbox listener and its delivery worker."""
    if settings.notify_lease_s <= settings.notify_timeout_s:
        # A lease shorter than an attempt would let a second worker send a delivery that is still in flight.
        raise ValueError("PRS_NOTIFY_LEASE_S must be longer than PRS_NOTIFY_TIMEOUT_S")
    secret_box = SecretBox(resolve_notify_key(settings))
    policy = OutboundPolicy.from_settings(settings)
    delivery = DeliveryWorker(
        settings=settings,
        pool=pool,
        clock=clock,
        secret_box=secret_box,
        policy=policy,
        metrics=NotifyMetrics(registry) if registry is not None else None,
        worker_name=worker_name,
        escalation_messages=escalation_messages,
    )
    return NotifyService(
        settings=settings, pool=pool, clock=clock, secret_box=secret_box, policy=policy, delivery=delivery
    )
