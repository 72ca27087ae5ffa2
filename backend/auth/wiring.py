"""Wiring of the auth domain into the service container: the signing-key ring and its periodic upkeep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from backend.auth.service import AuthService
from backend.auth.signing_keys import SigningKeyRing
from backend.auth.tokens import resolve_jwt_secret
from backend.clock import Clock
from backend.config import Settings
from backend.events import EventBus
from backend.jobs.scheduler import PeriodicTask

DESTROY_INTERVAL = timedelta(minutes=5)


def build_auth(settings: Settings, *, pool: asyncpg.Pool, clock: Clock, events: EventBus) -> AuthService:
    """The auth service with the signing keys of this process's PRS_JWT_SECRET."""
    ring = SigningKeyRing(settings=settings, pool=pool, clock=clock, master_secret=resolve_jwt_secret(settings))
    return AuthService(settings=settings, pool=pool, clock=clock, signing_keys=ring, events=events)


def register_auth_tasks(services: Any) -> None:
    """Destroy the secrets of retired signing keys once no token they signed can still be valid."""

    async def destroy_retired_keys(_tick: object) -> int:
        return await services.auth.signing_keys.destroy_expired()

    services.scheduler.register(PeriodicTask("auth.destroy_retired_signing_keys", DESTROY_INTERVAL,
                                             destroy_retired_keys))
