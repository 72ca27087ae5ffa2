"""Bad input and faults: corrupted and truncated objects, a wrong key, storage down, half-written backups and
schema levels. Every case is a clear error, and nothing half-done is listed or restored."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import asyncpg
import pytest

from backend.db import connect, drop_database, ensure_database, migration_files, with_database
from backups.catalog import ENCRYPTED_SUFFIX, MANIFEST, BackupNotFound
from backups.crypto import EncryptionKeyMissing, WrongEncryptionKey
from backups.manifest import DATABASE_OBJECT, VECTORS_OBJECT, Manifest
from backups.metrics import BackupMetrics
from backups.restore import RestoreRefused, RestoreTarget, code_schema_level, restore_backup
from backups.storage import StorageError
from backups.wiring import build_backup_service
from tests.fixtures.backups import BackupWorld, run_prs, seed_incidents
from tests.fixtures.database import POSTGRES_URL
from tests.fixtures.processes import free_port


def _service(world: BackupWorld):
    return world.services.backups.service


async def _database_exists(url: str) -> bool:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.rsplit("/", 1)[1]))
    finally:
        await conn.close()


async def test_verify_names_a_corrupted_object_and_the_command_exits_1(backup_world: BackupWorld):
    service = _service(backup_world)
    await seed_incidents(backup_world, count=2)
    manifest = await service.create(tier="daily")
    name = service.catalog.object_name(manifest.backup_id, DATABASE_OBJECT + ENCRYPTED_SUFFIX)
    data = bytearray(service.store.read_bytes(service.catalog.bucket, name))
    data[len(data) // 2] ^= 0xFF
    service.store.upload_bytes(service.catalog.bucket, name, bytes(data), content_type="application/octet-stream")

    result = await asyncio.to_thread(run_prs, backup_world.settings, "backup", "verify", manifest.backup_id)

    assert result.returncode == 1
    assert f"{DATABASE_OBJECT}: SHA-256 does not match" in result.stderr
    listed = await asyncio.to_thread(run_prs, backup_world.settings, "backup", "list")
    assert [json.loads(line)["verified"] for line in listed.stdout.splitlines()] == [False]


async def test_verify_names_a_truncated_object(backup_world: BackupWorld):
    service = _service(backup_world)
    await seed_incidents(backup_world, count=1)
    manifest = await service.create(tier="daily")
    name = service.catalog.object_name(manifest.backup_id, VECTORS_OBJECT + ENCRYPTED_SUFFIX)
    data = service.store.read_bytes(service.catalog.bucket, name)
    service.store.upload_bytes(service.catalog.bucket, name, data[: len(data) // 2])

    report = await service.verify(manifest.backup_id)

    assert not report["ok"]
    assert report["problems"] == [
        f"{VECTORS_OBJECT}: stored size {len(data) // 2} bytes, manifest says {len(data)} (truncated?)"
    ]


async def test_wrong_key_is_refused_before_the_target_database_is_created(backup_world: BackupWorld):
    service = _service(backup_world)
    manifest = await service.create(tier="daily")
    other = backup_world.settings_with(backup_encryption_key="another passphrase, also long enough 42")
    target = with_database(backup_world.database_url, backup_world.database_url.rsplit("/", 1)[1] + "_wrongkey")

    with pytest.raises(WrongEncryptionKey, match="does not open this backup"):
        await restore_backup(
            other, service.catalog, manifest.backup_id, RestoreTarget(database_url=target), work_dir=service.work_dir()
        )

    assert not await _database_exists(target)
    result = await asyncio.to_thread(run_prs, other, "backup", "verify", manifest.backup_id)
    assert result.returncode == 1 and "does not open this backup" in result.stderr


async def test_create_refuses_to_run_without_a_long_enough_key(backup_world: BackupWorld):
    result = await asyncio.to_thread(
        run_prs, backup_world.settings_with(backup_encryption_key="too short"), "backup", "create"
    )
    assert result.returncode == 1
    assert "PRS_BACKUP_ENCRYPTION_KEY must be a passphrase of at least 32 characters" in result.stderr
    assert await _service(backup_world).list_backups() == []
    # A scheduled run without a key is a failed run at once (no retries), counted for the alert.
    metrics = BackupMetrics(None)
    keyless = build_backup_service(
        backup_world.settings_with(backup_encryption_key=""),
        pool=backup_world.services.pool,
        clock=backup_world.clock,
        vector_store=None,
        metrics=metrics,
    )
    with pytest.raises(EncryptionKeyMissing):
        await keyless.create(tier="hourly", attempts=3, trigger="schedule")
    runs = await keyless.recent_runs(5)
    # The command line's refusal above was recorded too.
    assert [(r["operation"], r["status"], r["attempts"]) for r in runs] == [("create", "failed", 1)] * 2
    assert metrics.failures.labels("hourly")._value.get() == 1


async def test_storage_down_is_retried_with_backoff_recorded_as_failed_audited_and_counted(backup_world: BackupWorld):
    settings = backup_world.settings_with(
        backup_s3_endpoint=f"127.0.0.1:{free_port()}", backup_retry_base_s=0.5, backup_s3_timeout_s=1.0
    )
    metrics = BackupMetrics(None)
    down = build_backup_service(
        settings,
        pool=backup_world.services.pool,
        clock=backup_world.clock,
        vector_store=backup_world.services.vector_store,
        metrics=metrics,
    )
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    down.sleep = record_sleep
    with pytest.raises(StorageError, match="unreachable"):
        await down.create(tier="daily", attempts=3, trigger="schedule")

    assert slept == [0.5, 1.0]
    run = (await down.recent_runs(1))[0]
    assert (run["operation"], run["status"], run["attempts"]) == ("create", "failed", 3)
    assert "unreachable" in run["error"]
    async with backup_world.services.pool.acquire() as conn:
        audited = await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'backup.failed'")
    assert audited == 1
    assert metrics.failures.labels("daily")._value.get() == 1
    assert await _service(backup_world).list_backups() == []


async def test_wrong_credentials_are_a_clear_error_and_a_failed_run(
    backup_world: BackupWorld, s3_server_checking_credentials
):
    settings = backup_world.settings_with(backup_s3_endpoint=s3_server_checking_credentials.endpoint)
    result = await asyncio.to_thread(run_prs, settings, "backup", "create")

    assert result.returncode == 1
    assert (
        f"backup storage {s3_server_checking_credentials.endpoint}: create bucket prs-backups failed: "
        "AccessDenied" in result.stderr
    )
    runs = await _service(backup_world).recent_runs(1)
    assert (runs[0]["status"], runs[0]["error"].startswith("StorageError")) == ("failed", True)


async def test_a_backup_without_its_manifest_is_never_listed_and_prune_removes_the_leftovers(backup_world: BackupWorld):
    service = _service(backup_world)
    kept = await service.create(tier="daily")
    assert (await service.verify(kept.backup_id))["ok"]  # the newest verified daily: kept whatever its age
    half = await service.create(tier="hourly")
    service.store.remove(service.catalog.bucket, [service.catalog.object_name(half.backup_id, MANIFEST)])

    assert [b.backup_id for b in await service.list_backups()] == [kept.backup_id]
    with pytest.raises(BackupNotFound):
        service.catalog.manifest(half.backup_id)
    report = await service.prune()
    assert report["leftovers_removed"] == []  # younger than a day: may still be uploading

    backup_world.clock.advance(seconds=(datetime.now(timezone.utc) - backup_world.clock.now()).total_seconds())
    backup_world.clock.advance(days=2)
    report = await service.prune()
    assert report["leftovers_removed"] == [half.backup_id] and report["deleted"] == []
    assert set(service.catalog.objects_by_backup()) == {kept.backup_id}


async def test_restore_refuses_a_backup_from_a_newer_schema_naming_both_levels(backup_world: BackupWorld):
    service = _service(backup_world)
    manifest = await service.create(tier="daily")
    newer = Manifest.from_json(manifest.to_json())
    newer.schema_level = 999
    service.store.upload_bytes(
        service.catalog.bucket, service.catalog.object_name(manifest.backup_id, MANIFEST), newer.to_json()
    )
    target = backup_world.database_url + "_newer"

    with pytest.raises(RestoreRefused, match=f"schema level 999, newer than this release's {code_schema_level()}"):
        await restore_backup(
            backup_world.settings,
            service.catalog,
            manifest.backup_id,
            RestoreTarget(database_url=target),
            work_dir=service.work_dir(),
        )
    assert not await _database_exists(target)


async def test_a_backup_from_an_older_schema_taken_from_a_standby_is_migrated_forward(backup_world: BackupWorld):
    old = backup_world.database_url + "_old"
    target = backup_world.database_url + "_forward"
    await ensure_database(old)
    conn = await connect(old)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, name, sql in migration_files()[:3]:
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
    finally:
        await conn.close()
    settings = backup_world.settings_with(backup_source_database_url=old)
    service = build_backup_service(
        settings, pool=backup_world.services.pool, clock=backup_world.clock, vector_store=None, metrics=None
    )
    try:
        manifest = await service.create(tier="daily")
        assert (manifest.schema_level, manifest.source) == (3, "standby")

        report = await restore_backup(
            settings,
            service.catalog,
            manifest.backup_id,
            RestoreTarget(database_url=target),
            work_dir=service.work_dir(),
        )

        assert report["ok"], report["problems"]
        assert report["schema_level"] == {"backup": 3, "restored": code_schema_level()}
        assert report["migrated"][0].startswith("0004")
    finally:
        await drop_database(old)
        await drop_database(target)


async def test_restore_refuses_a_database_with_tables_unless_forced(backup_world: BackupWorld):
    service = _service(backup_world)
    await seed_incidents(backup_world, count=1)
    manifest = await service.create(tier="daily")
    target = backup_world.database_url + "_busy"
    await ensure_database(target)
    conn = await connect(target)
    await conn.execute("CREATE TABLE precious (id int)")
    await conn.close()
    try:
        with pytest.raises(RestoreRefused, match="not empty"):
            await restore_backup(
                backup_world.settings,
                service.catalog,
                manifest.backup_id,
                RestoreTarget(database_url=target),
                work_dir=service.work_dir(),
            )
        report = await restore_backup(
            backup_world.settings,
            service.catalog,
            "latest",
            RestoreTarget(database_url=target, force=True),
            work_dir=service.work_dir(),
        )
        assert report["ok"] and report["backup_id"] == manifest.backup_id
        conn = await connect(target)
        try:
            assert await conn.fetchval("SELECT to_regclass('precious')") is None
        finally:
            await conn.close()
    finally:
        await drop_database(target)


async def test_a_scheduled_run_with_storage_down_is_a_failed_and_counted_run(backup_world: BackupWorld):
    settings = backup_world.settings_with(backup_s3_endpoint=f"127.0.0.1:{free_port()}", backup_s3_timeout_s=1.0)
    metrics = BackupMetrics(None)
    down = build_backup_service(
        settings, pool=backup_world.services.pool, clock=backup_world.clock, vector_store=None, metrics=metrics
    )

    with pytest.raises(StorageError):
        await down.scheduled_run(backup_world.clock.now())

    run = (await down.recent_runs(1))[0]
    assert (run["operation"], run["status"], run["trigger"]) == ("create", "failed", "schedule")
    assert metrics.failures.labels("hourly")._value.get() == 1
