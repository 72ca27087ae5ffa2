"""Rate limits (slowapi's limiter and storage): failed logins and rejected API keys per client IP, and each
API key's own requests per minute. One instance per app; replicas share limits through a shared storage
URI (redis://...), the embedded default keeps them in memory."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Callable, TypeVar

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from redis.exceptions import RedisError
from slowapi import Limiter

from backend.config import Settings
from backend.errors import AppError

log = logging.getLogger(__name__)
T = TypeVar("T")


class TooManyRequests(AppError):
    """429 with a Retry-After header telling the client when to come back."""

    status_code = 429

    def __init__(self, detail: str, *, retry_after_s: int, reason: str):
        super().__init__(detail, extra={"reason": reason, "retry_after": retry_after_s})
        self.headers = {"Retry-After": str(retry_after_s)}


class RateLimits:
    """The limits PR-System enforces itself, on slowapi's Limiter (its storage and moving-window strategy)."""

    def __init__(self, settings: Settings):
        # Failed logins are counted after the password check, which slowapi's route decorator (it counts
        # every request before the handler runs) cannot do; so the Limiter's strategy is used directly.
        self._slowapi = Limiter(
            key_func=lambda: "",
            storage_uri=settings.rate_limit_storage_uri,
            strategy="moving-window",
            key_prefix=settings.rate_limit_key_prefix,
        )
        self._prefix = settings.rate_limit_key_prefix
        self._blocking_io = not settings.rate_limit_storage_uri.startswith("memory://")
        self._fallback = MovingWindowRateLimiter(MemoryStorage())
        self.login_limit: RateLimitItem = parse(settings.login_rate_limit)
        self.key_failure_limit: RateLimitItem = parse(settings.api_key_failure_rate_limit)

    async def ensure_login_allowed(self, client_ip: str | None) -> None:
        """429 when this client IP has used up its failed logins in the current window."""
        identifiers = ("login", client_ip or "unknown")
        if not await self._run(lambda s: s.test(self.login_limit, self._prefix, *identifiers)):
            raise TooManyRequests(
                f"too many failed logins from this address; at most {self.login_limit.amount} per "
                f"{self._window_text(self.login_limit)}",
                retry_after_s=await self._retry_after(self.login_limit, identifiers),
                reason="login_rate_limited",
            )

    async def count_failed_login(self, client_ip: str | None) -> None:
        """Spend one failed login of this client IP."""
        await self._run(lambda s: s.hit(self.login_limit, self._prefix, "login", client_ip or "unknown"))

    async def ensure_key_attempts_allowed(self, client_ip: str | None) -> None:
        """429 when this client IP has presented too many rejected API keys in the current window."""
        identifiers = ("api-key-failures", client_ip or "unknown")
        if not await self._run(lambda s: s.test(self.key_failure_limit, self._prefix, *identifiers)):
            raise TooManyRequests(
                "too many rejected API keys from this address",
                reason="api_key_attempts_rate_limited",
                retry_after_s=await self._retry_after(self.key_failure_limit, identifiers),
            )

    async def count_rejected_key(self, client_ip: str | None) -> None:
        """Spend one rejected-key attempt of this client IP."""
        await self._run(
            lambda s: s.hit(self.key_failure_limit, self._prefix, "api-key-failures", client_ip or "unknown")
        )

    async def spend_api_key_request(self, key_id: int, key_name: str, per_minute: int) -> None:
        """Count one request of an API key; 429 with Retry-After once its per-minute budget is spent."""
        item = RateLimitItemPerMinute(per_minute)
        identifiers = ("api-key", str(key_id))
        if not await self._run(lambda s: s.hit(item, self._prefix, *identifiers)):
            raise TooManyRequests(
                f"API key '{key_name}' is limited to {per_minute} requests per minute",
                retry_after_s=await self._retry_after(item, identifiers),
                reason="api_key_rate_limited",
            )

    async def _retry_after(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> int:
        stats = await self._run(lambda s: s.get_window_stats(item, self._prefix, *identifiers))
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def _run(self, call: Callable[[RateLimiter], T]) -> T:
        strategy = self._slowapi.limiter
        try:
            if self._blocking_io:
                return await asyncio.to_thread(call, strategy)
            return call(strategy)
        except (RedisError, StorageError, OSError):  # storage unreachable: keep limiting in this process
            log.exception("rate-limit storage failed; using this process's in-memory limits until it recovers")
            return call(self._fallback)

    @staticmethod
    def _window_text(item: RateLimitItem) -> str:
        unit = item.GRANULARITY.name
        return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
