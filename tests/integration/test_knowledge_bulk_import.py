"""Bulk imports: the ordered BM25 indexes are dropped for the load and built once at its end, even after a crash."""

from __future__ import annotations

import asyncio
import json

import pytest

from backend.errors import Conflict
from backend.knowledge import repository
from tests.fixtures.knowledge import run_prs
from tests.integration.test_knowledge_import import write_jsonl

ORDERED = ["knowledge_postings_area_impact_idx", "knowledge_postings_impact_idx"]
RECORDS = [
    {
        "key": f"LOAD-{n}",
        "title": f"Press {n % 3} hydraulic pressure drops",
        "description": f"Pressure falls from 200 to {150 - n} bar on press {n % 3} during the shift.",
        "area": ("production", "maintenance")[n % 2],
        "resolution": f"Replaced seal kit {n} of the main cylinder.",
        "created_at": "2024-05-02T10:00:00Z",
    }
    for n in range(12)
]


async def index_definitions(knowledge) -> dict[str, str]:
    async with knowledge.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'knowledge_postings' ORDER BY indexname"
        )
    return {row["indexname"]: row["indexdef"] for row in rows}


@pytest.fixture
async def bulk(knowledge):
    """The knowledge base; whatever a test leaves deferred is built again, so later tests see every index."""
    before = await index_definitions(knowledge)
    assert set(ORDERED) <= set(before)
    yield knowledge
    async with knowledge.pool.acquire() as conn:
        async with conn.transaction():
            await repository.build_deferred_indexes(conn)
    assert await index_definitions(knowledge) == before


async def search(knowledge, text: str, area: str | None = None) -> list[tuple[int, float]]:
    found = await knowledge.service.similar_incidents(text=text, area=area, limit=5)
    return [(item.incident_id, item.score) for item in found]


async def test_a_bulk_import_loads_without_the_ordered_indexes_and_builds_them_once_at_its_end(bulk, tmp_path):
    before = await index_definitions(bulk)
    async with bulk.service.bulk_import():
        during = await index_definitions(bulk)
        async with bulk.pool.acquire() as conn:
            assert await repository.deferred_index_names(conn) == ORDERED
        report = await bulk.service.ingest_incidents_jsonl(write_jsonl(tmp_path / "load.jsonl", RECORDS), vacuum=False)
        assert report["inserted"] == 12 and report["vectors_synced"] == 12
        # Searching still works without them, only slower.
        assert (await search(bulk, "hydraulic pressure drops on press 1"))[0][1] > 0
    assert set(ORDERED).isdisjoint(during)
    assert await index_definitions(bulk) == before
    async with bulk.pool.acquire() as conn:
        assert await repository.deferred_index_names(conn) == []


async def test_what_is_found_after_a_bulk_rebuild_is_what_was_found_before(bulk, tmp_path):
    await bulk.service.ingest_incidents_jsonl(write_jsonl(tmp_path / "plain.jsonl", RECORDS))
    queries = [("seal kit main cylinder", None), ("press 2 pressure falls", "production")]
    plain = [await search(bulk, text, area) for text, area in queries]
    async with bulk.service.bulk_import():
        await bulk.service.reindex()  # every posting written again, without the ordered indexes
    assert [await search(bulk, text, area) for text, area in queries] == plain
    assert all(plain)


async def test_a_failing_bulk_import_still_builds_the_indexes(bulk, tmp_path):
    before = await index_definitions(bulk)
    with pytest.raises(RuntimeError):
        async with bulk.service.bulk_import():
            raise RuntimeError("the load failed")
    assert await index_definitions(bulk) == before


async def test_only_one_bulk_import_runs_at_a_time(bulk):
    async with bulk.service.bulk_import():
        with pytest.raises(Conflict):
            async with bulk.service.bulk_import():
                pass


async def test_the_worker_builds_the_indexes_of_a_bulk_import_that_died_but_not_of_one_still_running(bulk):
    before = await index_definitions(bulk)
    # A bulk import whose process died: its definitions were saved and the indexes dropped, no lock is held.
    async with bulk.pool.acquire() as conn:
        async with conn.transaction():
            assert sorted(await repository.defer_postings_indexes(conn, bulk.clock.now())) == ORDERED
    running = await bulk.pool.acquire()
    try:
        assert await repository.try_lock_bulk_import(running)  # as if it were still running
        assert await bulk.service.recover_abandoned_bulk_import() == []
        assert set(ORDERED).isdisjoint(await index_definitions(bulk))
        await repository.unlock_bulk_import(running)
    finally:
        await bulk.pool.release(running)
    assert await bulk.service.recover_abandoned_bulk_import() == ORDERED
    assert await index_definitions(bulk) == before
    assert await bulk.service.recover_abandoned_bulk_import() == []  # nothing left to do


async def test_concurrent_searches_during_a_bulk_import_get_answers(bulk, tmp_path):
    await bulk.service.ingest_incidents_jsonl(write_jsonl(tmp_path / "first.jsonl", RECORDS[:6]))
    async with bulk.service.bulk_import():
        load = asyncio.ensure_future(
            bulk.service.ingest_incidents_jsonl(write_jsonl(tmp_path / "more.jsonl", RECORDS[6:]), vacuum=False)
        )
        found = await search(bulk, "replaced seal kit")
        await load
    assert found and all(score > 0 for _, score in found)


async def test_prs_ingest_incidents_bulk_imports_through_the_cli_and_leaves_every_index(bulk, tmp_path):
    before = await index_definitions(bulk)
    path = write_jsonl(tmp_path / "cli.jsonl", RECORDS)
    done = await run_prs(bulk.settings, tmp_path / "data", "ingest", "incidents", str(path), "--bulk", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["inserted"] == 12 and report["vectors_synced"] == 12
    assert await index_definitions(bulk) == before
    async with bulk.pool.acquire() as conn:
        assert await repository.deferred_index_names(conn) == []
