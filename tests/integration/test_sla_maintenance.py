"""Periodic maintenance on the real Postgres: retention by age, extra steps, ANALYZE, one runner at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.db import connect
from backend.jobs.maintenance import MaintenanceService
from backend.jobs.maintenance_repository import MAINTENANCE_LOCK_KEY

pytestmark = pytest.mark.asyncio


async def seed_ticks(sla, label: str, count: int, *, age: timedelta) -> None:
    """`count` finished ticks of a test task, the newest `age` old."""
    newest = sla.clock.now() - age
    async with sla.services.pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO periodic_ticks (task, tick, claimed_by, claimed_at, finished_at)
               SELECT $1, $2::timestamptz - g * interval '1 minute', 'test', $2, $2 FROM generate_series(0, $3 - 1) g""",
            f"test.{label}",
            newest,
            count,
        )


async def seed_old_and_new_rows(sla) -> None:
    await seed_ticks(sla, "old", 30, age=timedelta(days=45))
    await seed_ticks(sla, "recent", 30, age=timedelta(hours=1))


async def remaining(sla, label: str) -> int:
    return await sla.count(f"SELECT count(*) FROM periodic_ticks WHERE task = 'test.{label}'")


class TestMaintenance:
    async def test_rows_past_retention_are_deleted_and_recent_ones_kept(self, sla):
        await seed_old_and_new_rows(sla)
        report = await sla.services.maintenance.run()
        assert report["removed"]["periodic_ticks"] == 30
        assert await remaining(sla, "old") == 0
        assert await remaining(sla, "recent") == 30
        assert {"incidents", "sla_clocks", "sla_events", "periodic_ticks"} <= set(report["analyzed"])
        analyzed = await sla.count(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'sla_clocks' AND last_analyze IS NOT NULL"
        )
        assert analyzed == 1
        again = await sla.services.maintenance.run()
        assert again["removed"]["periodic_ticks"] == 0

    async def test_deletes_in_batches_until_done(self, sla):
        await seed_ticks(sla, "ancient", 12000, age=timedelta(days=90))
        report = await sla.services.maintenance.run()
        assert report["removed"]["periodic_ticks"] == 12000
        assert await remaining(sla, "ancient") == 0

    async def test_a_second_replica_steps_aside_while_one_runs(self, sla):
        await seed_old_and_new_rows(sla)
        holder = await connect(sla.services.settings.database_url)
        try:
            assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", MAINTENANCE_LOCK_KEY)
            report = await sla.services.maintenance.run()
            assert report == {"skipped": True}
            assert await remaining(sla, "old") == 30
        finally:
            await holder.close()
        assert (await sla.services.maintenance.run())["removed"]["periodic_ticks"] == 30

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
