"""Wiring of idempotency keys into the service container: the hourly purge of expired keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from backend.scheduler.service import PeriodicTask


def register_idempotency_tasks(services: Any) -> None:
    """Delete expired idempotency keys once an hour (once across all workers)."""

    async def purge(_tick: object) -> int:
        return await services.incidents.idempotency.purge_expired()

    services.scheduler.register(PeriodicTask("idempotency.purge_expired", timedelta(hours=1), purge))
