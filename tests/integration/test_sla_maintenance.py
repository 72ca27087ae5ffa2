"""Periodic maintenance on the real Postgres: retention by age, extra steps, ANALYZE, one runner at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.db import connect
from backend.jobs.maintenance import MaintenanceService
from backend.jobs.maintenance_repository import MAINTENANCE_LOCK_KEY

pytestmark = pytest.mark.asyncio


async def seed_old_and_new_rows(sla) -> None:
    now = sla.clock.now()
    old, recent = now - timedelta(days=45), now - timedelta(hours=1)
    async with sla.services.pool.acquire() as conn:
        for moment, label in ((old, "old"), (recent, "recent")):
            await conn.execute(
                "INSERT INTO periodic_ticks (task, tick, claimed_by, claimed_at) VALUES ($1, $2, $3, $2)",
                f"test.{label}", moment, "test")
            await conn.execute(
                """INSERT INTO pgqueuer_log (created, job_id, status, priority, entrypoint)
                   SELECT $1, g, 'successful', 0, 'suggestion.generate' FROM generate_series(1, 30) g""", moment)
            await conn.execute(
                """INSERT INTO pgqueuer_statistics (created, count, priority, status, entrypoint)
                   VALUES ($1, 7, 0, 'successful', 'suggestion.generate')""", moment)


async def remaining(sla, table: str) -> int:
    return await sla.count(f"SELECT count(*) FROM {table} WHERE entrypoint = 'suggestion.generate'"
                           if table.startswith("pgqueuer") else f"SELECT count(*) FROM {table}")


class TestMaintenance:
    async def test_rows_past_retention_are_deleted_and_recent_ones_kept(self, sla):
        await seed_old_and_new_rows(sla)
        report = await sla.services.maintenance.run()
        assert report["removed"]["periodic_ticks"] == 1
        assert report["removed"]["pgqueuer_log"] == 30
        assert report["removed"]["pgqueuer_statistics"] == 1
        assert await sla.count("SELECT count(*) FROM periodic_ticks WHERE task = 'test.recent'") == 1
        assert await remaining(sla, "pgqueuer_log") == 30
        assert await remaining(sla, "pgqueuer_statistics") == 1
        assert {"incidents", "sla_clocks", "sla_events", "pgqueuer_log"} <= set(report["analyzed"])
        analyzed = await sla.count("SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'sla_clocks' "
                                   "AND last_analyze IS NOT NULL")
        assert analyzed == 1
        again = await sla.services.maintenance.run()
        assert again["removed"]["pgqueuer_log"] == 0 and again["removed"]["periodic_ticks"] == 0

    async def test_deletes_in_batches_until_done(self, sla):
        now = sla.clock.now()
        async with sla.services.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO pgqueuer_log (created, job_id, status, priority, entrypoint)
                   SELECT $1, g, 'exception', 0, 'suggestion.generate' FROM generate_series(1, 12000) g""",
                now - timedelta(days=90))
        report = await sla.services.maintenance.run()
        assert report["removed"]["pgqueuer_log"] == 12000
        assert await remaining(sla, "pgqueuer_log") == 0

    async def test_a_second_replica_steps_aside_while_one_runs(self, sla):
        await seed_old_and_new_rows(sla)
        holder = await connect(sla.services.settings.database_url)
        try:
            assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", MAINTENANCE_LOCK_KEY)
            report = await sla.services.maintenance.run()
            assert report == {"skipped": True}
            assert await remaining(sla, "pgqueuer_log") == 60
        finally:
            await holder.close()
        assert (await sla.services.maintenance.run())["removed"]["pgqueuer_log"] == 30

    async def test_other_subsystems_add_retention_steps(self, sla):
        service = MaintenanceService(pool=sla.services.pool, clock=sla.clock, settings=sla.services.settings)
        seen = []

        async def purge(conn, now):
            seen.append(now)
            return await conn.fetchval("SELECT 3")

        service.register_retention("notify_deliveries", purge, analyze_table="notify_deliveries")
        with pytest.raises(ValueError):
            service.register_retention("notify_deliveries", purge)
        report = await service.run()
        assert report["removed"]["notify_deliveries"] == 3 and seen == [sla.clock.now()]
        assert "notify_deliveries" in report["analyzed"]

    async def test_sweep_and_maintenance_are_periodic_tasks_with_configured_intervals(self, sla):
        settings = sla.services.settings
        tasks = {t.name: t.interval for t in sla.services.scheduler.tasks}
        assert tasks["sla.sweep"] == timedelta(seconds=settings.sla_sweep_interval_s)
        assert tasks["maintenance.run"] == timedelta(seconds=settings.maintenance_interval_s)
