"""Periodic maintenance: retention of old scheduler tick rows (plus steps other subsystems register), ANALYZE.

Safe on any replica: the periodic task runs once per tick across workers, and a session advisory lock makes a run
that overlaps a slow previous one step aside. Every step is idempotent.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

import asyncpg

from backend.clock import Clock
from backend.config import Settings
from backend.db import Connection
from backend.jobs import maintenance_repository as repo

log = logging.getLogger(__name__)

ANALYZE_TABLES = (
    "incidents",
    "incident_comments",
    "suggestions",
    "audit_log",
    "periodic_ticks",
    "sla_status_spans",
    "sla_clocks",
    "sla_events",
    "sla_escalations",
    "sla_incidents",
    "llm_slots",
)
DELETE_BATCH = 5000

# A retention step of another subsystem (e.g. notification delivery rows): fn(conn, now) -> rows removed.
RetentionStep = Callable[[Connection, datetime], Awaitable[int]]


class MaintenanceService:
    """Runs the maintenance steps; `run` is the body of the periodic task `maintenance.run`."""

    def __init__(self, *, pool: asyncpg.Pool, clock: Clock, settings: Settings):
        self.pool = pool
        self.clock = clock
        self.settings = settings
        self.retention_steps: list[tuple[str, RetentionStep]] = []
        self.analyze_tables: list[str] = list(ANALYZE_TABLES)

    def register_retention(self, name: str, step: RetentionStep, *, analyze_table: str | None = None) -> None:
        """Add another subsystem's clean-up (at startup), and optionally a table to ANALYZE afterwards."""
        if any(existing == name for existing, _ in self.retention_steps):
            raise ValueError(f"retention step {name} registered twice")
        self.retention_steps.append((name, step))
        if analyze_table and analyze_table not in self.analyze_tables:
            self.analyze_tables.append(analyze_table)

    async def run(self) -> dict[str, Any]:
        """Delete rows past their retention and refresh planner statistics; returns what was done."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            if not await repo.try_lock(conn):
                log.info("maintenance skipped: another replica holds the lock")
                return {"skipped": True}
            try:
                report = await self._run_locked(conn, now)
            finally:
                await repo.unlock(conn)
        log.info("maintenance finished", extra=report)
        return report

    async def _run_locked(self, conn: Connection, now: datetime) -> dict[str, Any]:
        removed: dict[str, int] = {}
        tick_cutoff = now - timedelta(days=self.settings.maintenance_tick_retention_days)
        removed["periodic_ticks"] = await repo.delete_older_than(
            conn, "periodic_ticks", before=tick_cutoff, batch=DELETE_BATCH
        )
        for name, step in self.retention_steps:
            removed[name] = await step(conn, now)
        analyzed = []
        for table in self.analyze_tables:
            if await repo.table_exists(conn, table):
                await repo.analyze(conn, table)
                analyzed.append(table)
        return {"skipped": False, "removed": removed, "analyzed": analyzed}
