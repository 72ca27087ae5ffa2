"""Prometheus metrics of backups, in the process's registry; refreshed from backup_runs so every process agrees."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge

from backups import repository
from backups.manifest import TIERS

log = logging.getLogger(__name__)
REFRESH_S = 60.0


class BackupMetrics:
    """Last success, duration, size and failures per tier; the last verify result."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self._newest: dict[str, float] = {}
        self.last_success = Gauge(
            "prs_backup_last_success_timestamp_seconds",
            "Unix time of the newest successful backup of this tier or a higher one (a daily "
            "backup is also the hour's restore point).",
            ["tier"],
            registry=registry,
        )
        self.duration = Gauge(
            "prs_backup_duration_seconds",
            "Duration of the newest successful backup, per tier.",
            ["tier"],
            registry=registry,
        )
        self.size = Gauge(
            "prs_backup_size_bytes",
            "Stored (encrypted) size of the newest successful backup, per tier.",
            ["tier"],
            registry=registry,
        )
        self.failures = Counter(
            "prs_backup_failures_total",
            "Backup runs that failed after every retry, per tier.",
            ["tier"],
            registry=registry,
        )
        self.last_verify_success = Gauge(
            "prs_backup_last_verify_success",
            "1 when the newest backup verification passed, 0 when it failed.",
            registry=registry,
        )
        self.last_verify_time = Gauge(
            "prs_backup_last_verify_timestamp_seconds",
            "Unix time of the newest backup verification.",
            registry=registry,
        )

    def backup_succeeded(self, tier: str, *, finished_at: float, duration_s: float, size_bytes: int) -> None:
        """Record a successful backup; it is the newest restore point of its tier and of every lower tier."""
        for covered in TIERS[: TIERS.index(tier) + 1]:
            self._newest[covered] = max(finished_at, self._newest.get(covered, 0.0))
            self.last_success.labels(covered).set(self._newest[covered])
        self.duration.labels(tier).set(duration_s)
        self.size.labels(tier).set(size_bytes)

    def backup_failed(self, tier: str) -> None:
        """Count a backup run that failed."""
        self.failures.labels(tier).inc()

    def verified(self, *, ok: bool, at: float) -> None:
        """Record a verification result."""
        self.last_verify_success.set(1 if ok else 0)
        self.last_verify_time.set(at)

    async def refresh(self, pool: asyncpg.Pool) -> None:
        """Set the gauges from the runs recorded by any process (another worker may have taken the backup)."""
        async with pool.acquire() as conn:
            rows = await repository.last_success_per_tier(conn)
            verify = await repository.last_verify(conn)
        # Lower tiers first, so a tier's own duration and size are what remain set.
        for row in sorted(rows, key=lambda r: TIERS.index(r["tier"])):
            self.backup_succeeded(
                row["tier"],
                finished_at=row["finished_at"].timestamp(),
                duration_s=float(row["duration_s"] or 0.0),
                size_bytes=int(row["size_bytes"] or 0),
            )
        if verify is not None:
            self.verified(ok=verify["status"] == "succeeded", at=verify["finished_at"].timestamp())

    async def refresh_forever(self, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        """Refresh every minute until stopped; a database outage only delays it."""
        while not stop.is_set():
            try:
                await self.refresh(pool)
            except (asyncpg.PostgresError, OSError):
                log.warning("backup metrics refresh failed; retrying", exc_info=True)
            try:
                await asyncio.wait_for(stop.wait(), timeout=REFRESH_S)
            except asyncio.TimeoutError:
                pass
