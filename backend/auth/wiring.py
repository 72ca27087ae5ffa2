"""The auth domain's typed constructor: the auth service with the signing-key ring of this process."""

from __future__ import annotations

import asyncpg

from backend.auth.service import AuthService
from backend.auth.signing_keys import SigningKeyRing
from backend.auth.tokens import resolve_jwt_secret
from backend.clock import Clock
from backend.config import Settings
from backend.events import EventBus


def build_auth(settings: Settings, *, pool: asyncpg.Pool, clock: Clock, events: EventBus) -> AuthService:
    """The auth service with the signing keys of this process's PRS_JWT_SECRET."""
    ring = SigningKeyRing(settings=settings, pool=pool, clock=clock, master_secret=resolve_jwt_secret(settings))
    return AuthService(settings=settings, pool=pool, clock=clock, signing_keys=ring, events=events)
