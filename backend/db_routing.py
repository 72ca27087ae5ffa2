"""Database failover seen from the app: which errors mean "the database is switching over" (answered 503 with
Retry-After, never 500), and the read pool that serves lists and reports from a standby with the primary as
fallback (docs/deployment.md)."""

from __future__ import annotations

import logging
import socket
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import asyncpg
from asyncpg import exceptions as pg

from backend.db import Connection, create_pool

log = logging.getLogger(__name__)
T = TypeVar("T")

# Raised while a primary goes away, restarts, is demoted, or none is reachable yet: the request may be retried.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    pg.PostgresConnectionError,  # SQLSTATE class 08: the connection broke or could not be made
    pg.OperatorInterventionError,  # class 57: admin/crash shutdown, cannot connect now (QueryCanceled excluded)
    pg.ReadOnlySQLTransactionError,  # 25006: a write reached a server that is (now) a standby
    pg.InternalClientError,  # TargetServerAttributeNotMatched: no host is read-write right now
    pg.InterfaceError,  # "connection is closed" on a connection the server dropped
    ConnectionError,  # refused / reset
    socket.gaierror,  # a database host name that does not resolve (its container is gone)
)

# What makes the read pool step aside for its cooldown.
REPLICA_ERRORS: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, TimeoutError, OSError)


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database is (momentarily) unreachable or not writable, not a bug or bad input."""
    if isinstance(exc, pg.QueryCanceledError):
        return False
    if isinstance(exc, pg.InterfaceError):
        message = str(exc).lower()
        return any(sign in message for sign in ("connection is closed", "connection was closed", "connection lost"))
    return isinstance(exc, UNAVAILABLE_ERRORS)


async def heal_after(pool: Any, exc: BaseException) -> None:
    """After a write hit a demoted server, drop the pool's connections so the next ones find the new primary."""
    if isinstance(exc, pg.ReadOnlySQLTransactionError) and hasattr(pool, "expire_connections"):
        await pool.expire_connections()


class ReadRouting:
    """Reads that may come from a standby (PRS_DATABASE_READ_URL): the read pool while it answers, the primary
    otherwise and for `cooldown_s` after a failure. Writes and a person's own reads never come through here."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replica: asyncpg.Pool | None,
        *,
        cooldown_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.primary = primary
        self.replica = replica
        self.cooldown_s = cooldown_s
        self._monotonic = monotonic
        self._skip_replica_until = 0.0

    def _replica_usable(self) -> bool:
        return self.replica is not None and self._monotonic() >= self._skip_replica_until

    def _replica_failed(self, exc: BaseException) -> None:
        self._skip_replica_until = self._monotonic() + self.cooldown_s
        log.warning(
            "read pool unavailable; reading from the primary",
            extra={"error": type(exc).__name__, "cooldown_s": self.cooldown_s},
        )

    async def run(self, action: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a read-only `action(conn)` on the read pool; on a connection failure run it again on the primary."""
        if self._replica_usable():
            try:
                async with self.replica.acquire(timeout=self.cooldown_s) as conn:  # type: ignore[union-attr]
                    return await action(conn)
            except REPLICA_ERRORS as exc:
                self._replica_failed(exc)
        async with self.primary.acquire() as conn:
            return await action(conn)

    @asynccontextmanager
    async def acquire(self, timeout: float | None = None) -> AsyncIterator[Connection]:
        """A read connection (the pool interface of report services): the standby's, else the primary's."""
        if self._replica_usable():
            try:
                cm = self.replica.acquire(timeout=timeout or self.cooldown_s)  # type: ignore[union-attr]
                conn = await cm.__aenter__()
            except REPLICA_ERRORS as exc:
                self._replica_failed(exc)
            else:
                try:
                    yield conn
                except BaseException as exc:
                    if database_unavailable(exc):
                        self._replica_failed(exc)
                    await cm.__aexit__(type(exc), exc, exc.__traceback__)
                    raise
                else:
                    await cm.__aexit__(None, None, None)
                return
        async with self.primary.acquire(timeout=timeout) as conn:
            yield conn

    async def close(self) -> None:
        """Close the read pool (the primary belongs to the container)."""
        if self.replica is not None:
            await self.replica.close()


async def open_read_routing(
    primary: asyncpg.Pool,
    *,
    read_url: str,
    cooldown_s: float,
    min_size: int,
    max_size: int,
    connect_timeout_s: float = 60.0,
) -> ReadRouting:
    """The read routing of PRS_DATABASE_READ_URL; a standby that is down at start is retried lazily."""
    if not read_url:
        return ReadRouting(primary, None, cooldown_s=cooldown_s)
    # min_size=0: the pool opens even while the standby is down; connections are made on first use.
    replica = await create_pool(read_url, min_size=0, max_size=max_size, connect_timeout_s=connect_timeout_s)
    return ReadRouting(primary, replica, cooldown_s=cooldown_s)
