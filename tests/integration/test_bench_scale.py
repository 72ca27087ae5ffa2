"""`prs bench scale`, short: a few hundred synthetic entries through the product's import path, then timed queries."""

from __future__ import annotations

import json
import os

import asyncpg
import numpy as np
import pytest

from backend.config import Settings
from bench.scale import DerivedVectors, run_scale_bench, synthetic_batch

PROJECTS = ("HDFS", "YARN")


def jira_records(count: int) -> list[dict]:
    return [
        {
            "key": f"{PROJECTS[n % 2]}-{n}",
            "project": PROJECTS[n % 2],
            "summary": f"DataNode {n} fails to report block {n * 7} after restart",
            "description": f"After a rolling restart node dn{n} logs IOException on volume /data/{n % 5}.",
            "resolution_text": f"Replaced disk {n % 5} and restarted the DataNode.",
            "priority": "Major",
            "components": ["datanode"],
            "created": "2014-01-02T10:00:00.000+0000",
            "resolved": "2014-01-03T10:00:00.000+0000",
        }
        for n in range(count)
    ]


def base_records(count: int) -> list[dict]:
    return [
        {"external_ref": r["key"], "title": r["summary"], "description": r["description"], "area": r["project"]}
        | {"priority": "medium", "category": None, "tags": [], "resolution": r["resolution_text"]}
        for r in jira_records(count)
    ]


def test_synthetic_entries_take_their_record_and_a_partners_title_with_unit_vectors():
    base = base_records(10)
    title_vectors = np.eye(10, 16, dtype=np.float32)
    records, texts, vectors = synthetic_batch(base, title_vectors, 25, 12, np.random.default_rng(3))
    again = synthetic_batch(base, title_vectors, 25, 12, np.random.default_rng(3))
    assert [r["external_ref"] for r in records] == [f"SCALE-{n}" for n in range(25, 37)]
    assert records == again[0] and texts == again[1] and np.array_equal(vectors, again[2])
    for offset, (record, text, vector) in enumerate(zip(records, texts, vectors)):
        own = base[(25 + offset) % 10]
        assert (record["title"], record["area"], record["resolution"]) == (own["title"], own["area"], own["resolution"])
        assert record["description"].endswith(own["description"])
        partner_title = record["description"].split("\n")[0]
        assert partner_title in {b["title"] for b in base}
        assert text == f"{record['title']}\n{record['description']}"
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
        assert int(np.argmax(vector)) == (25 + offset) % 10  # closest to its own record's title vector


def test_derived_vectors_answer_only_for_registered_texts():
    vectors = DerivedVectors(3)
    vectors.register(["a", "b"], np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    assert vectors.encode(["b", "a"]).tolist() == [[0, 1, 0], [1, 0, 0]]
    vectors.forget()
    with pytest.raises(KeyError):
        vectors.encode(["a"])


async def scratch_databases(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'prs_bench_scale_%'")
    finally:
        await conn.close()
    return {row["datname"] for row in rows}


@pytest.mark.asyncio
async def test_the_bench_builds_the_entries_times_every_kind_of_query_and_drops_its_database(database_url, tmp_path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text("".join(json.dumps(record) + "\n" for record in jira_records(60)), encoding="utf-8")
    before = await scratch_databases(database_url)
    result = await run_scale_bench(
        Settings(database_url=database_url, data_dir=tmp_path / "data"), kb, entries=700, queries=6, batch=300
    )
    assert result["entries"] == 700 and result["base_records"] == 60 and result["queries"] == 6
    for name in ("lexical", "lexical_area", "dense", "dense_area", "fused", "fused_area"):
        assert 0 < result[f"{name}_p50_ms"] <= result[f"{name}_p95_ms"]
    assert result["build_s"] > 0 and result["build_per_s"] > 0
    assert result["postgres_mb"]["knowledge_postings"] > 0 and result["chroma_mb"] > 0
    assert result["disk_mb"] == pytest.approx(sum(result["postgres_mb"].values()) + result["chroma_mb"], abs=0.2)
    # This process's resident memory in MiB: more than the encoder alone, less than the machine has. (The
    # pytest process also holds what earlier tests loaded and trained, so no tighter bound holds here.)
    physical_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    assert 100 < result["rss_mb"] < physical_mb
    # Under 2,000 postings per term nothing is cut: the capped index ranks as the exhaustive one.
    assert result["exhaustive_queries"] == 6 and result["lexical_top10_shared_with_exhaustive"] == 1.0
    assert 0 < result["lexical_exhaustive_p50_ms"] <= result["lexical_exhaustive_p95_ms"]
    assert await scratch_databases(database_url) <= before
