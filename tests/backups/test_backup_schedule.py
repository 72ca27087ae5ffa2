"""The hourly backup job runs once per tick across workers, takes the tier that is due, verifies all but hourly
backups, anchors the audit head, and its metrics agree in every process."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from backend.jobs.scheduler import PeriodicScheduler
from backups.metrics import BackupMetrics
from backups.wiring import ANCHOR_TASK, BACKUP_TASK
from tests.fixtures.backups import BackupWorld, seed_incidents


def _workers(world: BackupWorld, count: int) -> list[PeriodicScheduler]:
    tasks = [task for task in world.services.scheduler.tasks if task.name in (BACKUP_TASK, ANCHOR_TASK)]
    workers = []
    for n in range(count):
        scheduler = PeriodicScheduler(pool=world.services.pool, clock=world.clock, worker_name=f"worker-{n}")
        for task in tasks:
            scheduler.register(task)
        workers.append(scheduler)
    return workers


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _count(world: BackupWorld, sql: str) -> int:
    async with world.services.pool.acquire() as conn:
        return int(await conn.fetchval(sql))


async def test_three_workers_take_one_backup_per_hour_of_the_due_tier_and_verify_all_but_hourly(
    backup_world: BackupWorld,
):
    world = backup_world
    await seed_incidents(world, count=1)
    workers = _workers(world, 3)

    ran = await asyncio.gather(*(worker.run_due() for worker in workers))
    assert sorted(name for names in ran for name in names) == sorted([ANCHOR_TASK, BACKUP_TASK])
    world.clock.advance(hours=1)
    await asyncio.gather(*(worker.run_due() for worker in workers))

    backups = await world.services.backups.service.list_backups()
    assert [(b.tier, b.verified) for b in backups] == [("monthly", True), ("hourly", None)]  # 1 March: monthly
    assert await _count(world, "SELECT count(*) FROM audit_log WHERE action = 'backup.created'") == 2
    assert await _count(world, "SELECT count(*) FROM audit_log WHERE action = 'backup.verified'") == 1
    # Two anchors from the hourly task and two with the backups.
    assert len(world.services.backups.anchors.read_all()) == 4


async def test_metrics_show_last_success_size_and_verify_result_and_every_process_reads_them_from_the_runs(
    backup_world: BackupWorld,
):
    world = backup_world
    service = world.services.backups.service
    manifest = await service.create(tier="daily")
    await service.verify(manifest.backup_id)
    exposed = _samples(generate_latest(world.services.metrics.registry).decode())
    expected_time = world.clock.now().timestamp()
    assert exposed[("prs_backup_last_success_timestamp_seconds", (("tier", "daily"),))] == expected_time
    # A daily backup is also the newest hourly restore point (no "no backup for 2 hours" alert at midnight).
    assert exposed[("prs_backup_last_success_timestamp_seconds", (("tier", "hourly"),))] == expected_time
    assert ("prs_backup_last_success_timestamp_seconds", (("tier", "weekly"),)) not in exposed
    assert exposed[("prs_backup_size_bytes", (("tier", "daily"),))] == manifest.size_bytes
    assert exposed[("prs_backup_duration_seconds", (("tier", "daily"),))] > 0
    assert exposed[("prs_backup_last_verify_success", ())] == 1
    assert exposed[("prs_backup_last_verify_timestamp_seconds", ())] == expected_time

    other_process = BackupMetrics(CollectorRegistry())
    await other_process.refresh(world.services.pool)
    assert other_process.last_success.labels("daily")._value.get() == expected_time
    assert other_process.last_success.labels("hourly")._value.get() == expected_time
    assert other_process.size.labels("daily")._value.get() == manifest.size_bytes
    assert other_process.last_verify_success._value.get() == 1
    assert other_process.last_verify_time._value.get() == expected_time


async def test_prune_deletes_expired_backups_from_storage_and_keeps_a_tiers_newest_verified_one(
    backup_world: BackupWorld,
):
    world = backup_world
    service = world.services.backups.service
    old_verified = await service.create(tier="daily")
    assert (await service.verify(old_verified.backup_id))["ok"]
    world.clock.advance(hours=1)
    old_unverified = await service.create(tier="daily")
    hourly = await service.create(tier="hourly")
    world.clock.advance(days=31)
    fresh = await service.create(tier="hourly")

    report = await service.prune()

    assert report["deleted"] == sorted([old_unverified.backup_id, hourly.backup_id])
    remaining = {b.backup_id for b in await service.list_backups()}
    assert remaining == {old_verified.backup_id, fresh.backup_id}
    assert set(service.catalog.objects_by_backup()) == remaining
    assert await _count(world, "SELECT count(*) FROM audit_log WHERE action = 'backup.pruned'") == 1
