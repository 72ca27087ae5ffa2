"""A backup restores to the same system: row counts, audit head, a valid chain and the same similar incidents."""

from __future__ import annotations

import asyncio
import json

import pytest

from backend.audit.service import verify_chain
from backend.db import create_pool, drop_database
from backups.database import database_facts
from tests.fixtures.backups import BackupWorld, run_prs, seed_incidents

QUERIES = [
    "conveyor motor overheating",
    "alarm E-4021 belt stops",
    "hydraulic press leaking oil",
    "label printer jams",
    "forklift battery does not charge",
    "network switch down in the warehouse",
    "PLC communication lost",
    "compressor pressure too low",
    "robot arm stops with a servo fault",
    "scale shows wrong weight",
    "cinta transportadora sobrecalentada",
    "fuga de aceite en la prensa",
    "impresora de etiquetas atascada",
    "pérdida de comunicación con el PLC",
    "sensor de temperatura no responde",
    "vibration in the pump bearing",
    "quality camera rejects good parts",
    "air conditioning failure in the server room",
    "barcode scanner offline",
    "welding robot misaligned",
]


async def similar_top10(world_services) -> list[list[tuple[int, float]]]:
    """Top-10 similar incidents (id, score) of each query."""
    results = []
    for query in QUERIES:
        found = await world_services.knowledge.similar_incidents(text=query, area=None, limit=10)
        results.append([(item.incident_id, round(item.score, 4)) for item in found])
    return results


async def test_create_drop_restore_gives_identical_counts_audit_head_chain_and_similar_incidents(
    backup_world: BackupWorld, encoder
):
    from backend.container import build_container

    world = backup_world
    await seed_incidents(world)
    await world.services.knowledge.sync_pending_vectors()
    before_facts = await database_facts(world.database_url)
    before_similar = await similar_top10(world.services)
    assert before_facts.audit_head["seq"] > 0 and before_facts.row_counts["incidents"] > 40
    assert all(len(result) == 10 for result in before_similar)

    # On embedded defaults one process holds the vector-store folder: this one gives it to `prs backup create`.
    await world.services.aclose()
    created = await asyncio.to_thread(run_prs, world.settings, "backup", "create", "--tier", "daily")
    assert created.returncode == 0, created.stderr
    backup_id = created.stdout.strip().splitlines()[-1]
    await drop_database(world.database_url)

    restore_dir = world.tmp_path / "restored"
    restored = await asyncio.to_thread(
        run_prs,
        world.settings,
        "backup",
        "restore",
        backup_id,
        "--database-url",
        world.database_url,
        "--data-dir",
        str(restore_dir),
    )
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["vectors"]["pending_rebuild"] == 0

    after_facts = await database_facts(world.database_url)
    assert after_facts.row_counts == before_facts.row_counts
    assert after_facts.audit_head == before_facts.audit_head
    verified = await asyncio.to_thread(run_prs, world.settings, "audit", "verify")
    assert verified.returncode == 0 and json.loads(verified.stdout)["head_hash"] == before_facts.audit_head["hash"]

    world.services = await build_container(
        world.settings_with(data_dir=restore_dir), clock=world.clock, encoder=encoder
    )
    assert await similar_top10(world.services) == before_similar


async def test_backup_taken_while_incidents_are_written_has_every_incident_with_its_audit_rows(
    backup_world: BackupWorld,
):
    from backend.context import system_context
    from backend.incidents.schemas import IncidentCreate

    world = backup_world
    service = world.services.backups.service
    stop = asyncio.Event()
    written = 0

    async def keep_writing() -> None:
        nonlocal written
        while not stop.is_set():
            await world.services.incidents.create(
                system_context("writer"),
                IncidentCreate(
                    title=f"Pump {written} vibrating",
                    description="Bearing noise at station 4.",
                    area="production",
                    priority="medium",
                ),
            )
            written += 1

    writer = asyncio.create_task(keep_writing())
    await asyncio.sleep(0.5)
    manifest = await service.create(tier="hourly")
    await asyncio.sleep(0.3)
    stop.set()
    await writer
    assert 0 < manifest.row_counts["incidents"] < written + 1

    report = await service.verify(manifest.backup_id)
    assert report["ok"], report["problems"]

    target = world.database_url + "_copy"
    from backups.restore import RestoreTarget, restore_backup

    restored = await restore_backup(
        world.settings,
        service.catalog,
        manifest.backup_id,
        RestoreTarget(database_url=target),
        work_dir=service.work_dir(),
    )
    try:
        assert restored["ok"], restored["problems"]
        pool = await create_pool(target, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                orphans = await conn.fetchval(
                    """SELECT count(*) FROM incidents i WHERE NOT EXISTS (
                           SELECT 1 FROM audit_log a WHERE a.resource_type = 'incident'
                              AND a.resource_id = i.id::text AND a.action = 'incident.created')"""
                )
                incidents = await conn.fetchval("SELECT count(*) FROM incidents")
            assert (await verify_chain(pool))["ok"]
        finally:
            await pool.close()
        assert orphans == 0 and incidents == manifest.row_counts["incidents"]
    finally:
        await drop_database(target)


async def test_restore_puts_the_vectors_into_a_named_chroma_server_and_refuses_a_non_empty_one(
    backup_world: BackupWorld, chroma_server_url
):
    from backups.restore import RestoreRefused, RestoreTarget, restore_backup

    world = backup_world
    await seed_incidents(world, count=2)
    await world.services.knowledge.sync_pending_vectors()
    service = world.services.backups.service
    manifest = await service.create(tier="daily")
    settings = world.settings_with(chroma_collection=f"restore_{manifest.backup_id[-6:]}")
    target = world.database_url + "_chroma"
    try:
        report = await restore_backup(
            settings,
            service.catalog,
            manifest.backup_id,
            RestoreTarget(database_url=target, chroma_url=chroma_server_url),
            work_dir=service.work_dir(),
        )
        assert report["ok"] and report["vectors"]["restored"] == manifest.vectors["count"] > 40
        assert report["vectors"]["pending_rebuild"] == 0
        with pytest.raises(RestoreRefused, match="vector store is not empty"):
            await restore_backup(
                settings,
                service.catalog,
                manifest.backup_id,
                RestoreTarget(database_url=target + "_again", chroma_url=chroma_server_url),
                work_dir=service.work_dir(),
            )
    finally:
        await drop_database(target)
