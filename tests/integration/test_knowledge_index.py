"""The derived indexes: vector sync, rebuild from Postgres, degraded mode, BM25 in SQL."""

from __future__ import annotations

import asyncio
import math
import shutil
from collections import Counter

import chromadb
import pytest

from agent.lexical import document_tokens, tokenize
from agent.store import ChromaVectorStore, VectorStoreUnavailable
from backend.knowledge import repository
from backend.knowledge.service import KnowledgeService

INCIDENTS = [
    (
        "production",
        "Conveyor motor overheating on line 3",
        "Alarm E-4021, belt stops every 20 minutes.",
        "Cleaned the blocked fan grille.",
    ),
    (
        "production",
        "Conveyor belt slipping on line 1",
        "Belt slips under load after the format change.",
        "Tensioned the belt and fixed the recipe speed.",
    ),
    (
        "maintenance",
        "Compressed air leak near press PN-04",
        "Pressure drops from 7 to 5.2 bar during the shift.",
        "Replaced the quick coupling and a cracked hose.",
    ),
    (
        "it",
        "MES to ERP order sync fails",
        "Orders stay pending; the interface log shows HTTP 401 from the ERP.",
        "Rotated the expired service account password.",
    ),
    (
        "production",
        "Label printer prints blank labels",
        "Zebra ZT230 ribbon sensor error after the roll change.",
        "Recalibrated the ribbon sensor.",
    ),
]
QUERIES = ["motor overheating alarm", "air pressure drop press", "printer blank labels ribbon", "ERP sync 401"]


async def seed(knowledge) -> list[int]:
    return [
        await knowledge.add_resolved_incident(area=area, title=title, description=description, resolution=resolution)
        for area, title, description, resolution in INCIDENTS
    ]


async def bm25(conn, terms, *, area, max_terms, k1, b, cap):
    """repository.bm25_search over incidents, top 10."""
    return await repository.bm25_search(
        conn, terms, area=area, kinds=["incident"], limit=10, max_terms=max_terms, k1=k1, b=b, postings_per_term=cap
    )


async def ranking(service: KnowledgeService) -> list[list[tuple[int, float]]]:
    results = []
    for text in QUERIES:
        similar = await service.similar_incidents(text=text, area=None, limit=5)
        results.append([(s.incident_id, round(s.score, 4)) for s in similar])
    return results


async def test_sync_is_idempotent_and_marks_every_entry(knowledge):
    await seed(knowledge)
    assert await knowledge.service.sync_pending_vectors() == 0
    assert await knowledge.fetchval("SELECT count(*) FROM knowledge_entries WHERE NOT vector_synced") == 0
    assert await asyncio.to_thread(knowledge.service.vector_store.count) == len(INCIDENTS)


async def test_reindex_after_losing_the_chroma_folder_gives_identical_results(knowledge, encoder):
    await seed(knowledge)
    before = await ranking(knowledge.service)

    shutil.rmtree(knowledge.chroma_path)
    # A new process would open a fresh client; drop the one this process cached for the folder.
    chromadb.api.client.SharedSystemClient.clear_system_cache()
    store = ChromaVectorStore.persistent(str(knowledge.chroma_path), "prs_knowledge")
    rebuilt = KnowledgeService(knowledge.settings, knowledge.pool, encoder, store, knowledge.clock)
    report = await rebuilt.reindex()

    assert report["entries"] == report["vectors"] == len(INCIDENTS)
    assert await asyncio.to_thread(store.count) == len(INCIDENTS)
    assert await ranking(rebuilt) == before


async def test_reindex_rebuilds_the_postings_identically(knowledge):
    await seed(knowledge)
    query = "SELECT term, entry_id, tf, doc_length FROM knowledge_postings ORDER BY term, entry_id"
    async with knowledge.pool.acquire() as conn:
        before = [tuple(row) for row in await conn.fetch(query)]
        await knowledge.service.reindex()
        after = [tuple(row) for row in await conn.fetch(query)]
    assert before and after == before


async def test_with_chroma_unreachable_lexical_retrieval_still_answers(knowledge, encoder):
    ids = await seed(knowledge)
    dead_store = ChromaVectorStore.http("http://127.0.0.1:9", "prs_knowledge")  # nothing listens on port 9
    degraded = KnowledgeService(knowledge.settings, knowledge.pool, encoder, dead_store, knowledge.clock)

    similar = await degraded.similar_incidents(text="E-4021 motor overheating", area="production", limit=3)
    assert similar[0].incident_id == ids[0]
    hits = await degraded.search(query="E-4021 motor overheating", area="production", limit=3)
    assert hits[0].dense_score is None and hits[0].lexical_score == pytest.approx(1.0)


async def test_entries_staged_while_chroma_is_down_are_synced_when_it_is_back(knowledge, encoder):
    dead_store = ChromaVectorStore.http("http://127.0.0.1:9", "prs_knowledge")
    degraded = KnowledgeService(knowledge.settings, knowledge.pool, encoder, dead_store, knowledge.clock)
    async with knowledge.pool.acquire() as conn:
        async with conn.transaction():
            incident_id = await conn.fetchval(
                """INSERT INTO incidents (title, description, area, priority, status, resolution, created_at,
                                          updated_at) VALUES ('Hydraulic unit noisy', 'Pump whines at start', 'maintenance',
                                          'low', 'resolved', 'Bled the air from the circuit', now(), now()) RETURNING id"""
            )
            await degraded.stage_incident(
                conn,
                incident_id=incident_id,
                title="Hydraulic unit noisy",
                description="Pump whines at start",
                area="maintenance",
                category=None,
                resolution="Bled the air from the circuit",
                created_at=knowledge.clock.now(),
            )
    with pytest.raises(VectorStoreUnavailable):
        await degraded.sync_pending_vectors()
    assert await knowledge.fetchval("SELECT count(*) FROM knowledge_entries WHERE NOT vector_synced") == 1

    assert await knowledge.service.sync_pending_vectors() == 1  # the store is reachable again
    hits = await knowledge.service.search(query="pump whining noise", area="maintenance", limit=1)
    assert hits[0].incident_id == incident_id and hits[0].dense_score is not None


def python_bm25(corpus: list[list[str]], query: list[str], k1: float, b: float) -> list[float]:
    """Textbook Okapi BM25 (Lucene idf), for comparison with the SQL."""
    n = len(corpus)
    average = sum(len(doc) for doc in corpus) / n
    frequencies = [Counter(doc) for doc in corpus]
    scores = []
    for doc, tf in zip(corpus, frequencies):
        score = 0.0
        for term, qtf in Counter(query).items():
            df = sum(1 for f in frequencies if term in f)
            if not df or term not in tf:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += qtf * idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(doc) / average))
        scores.append(score)
    return scores


@pytest.mark.parametrize("k1, b", [(1.2, 0.75), (1.2, 0.9), (2.0, 0.3)])
async def test_bm25_in_sql_agrees_with_a_straightforward_python_bm25(knowledge, k1, b):
    ids = await seed(knowledge)
    corpus = [document_tokens(title, f"{description}\n{resolution}") for _, title, description, resolution in INCIDENTS]
    query = tokenize("conveyor belt motor overheating conveyor line 3 E-4021")
    expected = python_bm25(corpus, query, k1, b)
    async with knowledge.pool.acquire() as conn:
        rows = await bm25(conn, query, area=None, max_terms=100, k1=k1, b=b, cap=1000)
    got = {vector_id: score for vector_id, score, _ in rows}
    want = {f"inc:{incident_id}": score for incident_id, score in zip(ids, expected) if score > 0}
    assert got.keys() == want.keys()
    for vector_id, score in want.items():
        assert got[vector_id] == pytest.approx(score, rel=1e-9)
    assert [vector_id for vector_id, _, _ in rows] == sorted(want, key=lambda v: -want[v])


async def test_bm25_area_filter_keeps_global_statistics(knowledge):
    ids = await seed(knowledge)
    async with knowledge.pool.acquire() as conn:
        everywhere = await bm25(conn, ["conveyor"], area=None, max_terms=10, k1=1.2, b=0.75, cap=1000)
        production = await bm25(conn, ["conveyor"], area="production", max_terms=10, k1=1.2, b=0.75, cap=1000)
        maintenance = await bm25(conn, ["pressure"], area="production", max_terms=10, k1=1.2, b=0.75, cap=1000)
    assert production == everywhere
    assert {v for v, _, _ in production} == {f"inc:{ids[0]}", f"inc:{ids[1]}"}
    assert maintenance == []


async def test_bm25_reads_each_terms_best_postings_first_and_stops_at_the_cap(knowledge):
    ids = await seed(knowledge)
    corpus = [document_tokens(title, f"{description}\n{resolution}") for _, title, description, resolution in INCIDENTS]

    def impact(doc: list[str], term: str) -> float:
        tf = doc.count(term)
        return tf / (tf + 1.2 * (0.1 + 0.9 * len(doc) / 200.0)) if tf else 0.0

    having = [(impact(doc, "belt"), -incident_id) for doc, incident_id in zip(corpus, ids) if "belt" in doc]
    assert len(having) == 2  # both conveyor incidents mention the belt
    best = -max(having)[1]
    exact = {}
    async with knowledge.pool.acquire() as conn:
        for cap in (1, 1000):
            rows = await bm25(conn, ["belt"], area=None, max_terms=10, k1=1.2, b=0.9, cap=cap)
            exact[cap] = {vector_id: score for vector_id, score, _ in rows}
        in_area = await bm25(conn, ["belt"], area="production", max_terms=10, k1=1.2, b=0.9, cap=1)
    assert len(exact[1000]) == 2
    assert exact[1] == {f"inc:{best}": exact[1000][f"inc:{best}"]}  # the best one, scored exactly
    assert [vector_id for vector_id, _, _ in in_area] == [f"inc:{best}"]


async def test_bm25_statistics_stay_equal_to_a_recount_through_every_change(knowledge):
    ids = await seed(knowledge)
    await knowledge.reopen(ids[1])
    async with knowledge.pool.acquire() as conn:
        async with conn.transaction():
            await knowledge.service.stage_incident(
                conn,
                incident_id=ids[0],
                title="Conveyor motor fan replaced",
                description="New text",
                area="production",
                category=None,
                resolution="Replaced the fan",
                created_at=knowledge.clock.now(),
            )
    document = await knowledge.service.ingest_document(
        title="Belt runbook", filename="belt.md", text="# Belt\n\nTension the conveyor belt to 1.5 percent."
    )
    await knowledge.service.ingest_document(title="Other", filename="other.md", text="Conveyor guides at 96 mm.")
    await knowledge.service.delete_document(document["id"])

    terms_query = "SELECT term, kind, df FROM knowledge_term_stats WHERE df <> 0 ORDER BY term, kind"
    kinds_query = "SELECT kind, entries, total_length FROM knowledge_kind_stats ORDER BY kind"
    async with knowledge.pool.acquire() as conn:
        kept_terms = [tuple(r) for r in await conn.fetch(terms_query)]
        kept_kinds = [tuple(r) for r in await conn.fetch(kinds_query)]
        async with conn.transaction():
            await repository.recompute_statistics(conn)
        assert [tuple(r) for r in await conn.fetch(terms_query)] == kept_terms
        assert [tuple(r) for r in await conn.fetch(kinds_query)] == kept_kinds
        orphans = await conn.fetchval(
            """SELECT count(*) FROM knowledge_postings p
               WHERE NOT EXISTS (SELECT 1 FROM knowledge_entries e WHERE e.id = p.entry_id)"""
        )
    assert orphans == 0  # reopening and deleting removed the postings with their entries
    assert ("conveyor", "document", 1) in kept_terms
    assert [(kind, entries) for kind, entries, _ in kept_kinds] == [("document", 1), ("incident", 4)]
