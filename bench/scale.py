"""`prs bench scale`: retrieval latency over a knowledge base of a million incidents, built in a scratch database.

The knowledge base is synthetic but made of real material: every entry takes the title, description,
area and solution of one incident of a JIRA-format JSONL file, prefixed with the title of another, so
the vocabulary, text lengths and area sizes are the file's. Its vector is derived, not encoded (the
encoder would take days on two cores): the real encoder embeds every record's title once, and an
entry's vector is its own record's title vector plus half of the other's, plus a little noise,
normalised. Vectors thus cluster like real ones and near-duplicates exist, as in a real backlog.

The entries go through the product's own import path (`KnowledgeService.ingest_incident_records`:
incidents, entries, postings by COPY, statistics, the vector sync into the partitioned vector store),
in batches, inside one `bulk_import()` block as `prs ingest incidents --bulk` does: the ordered BM25
indexes are built once at the end and the tables vacuumed; build_s includes both. Then queries made from records of the same file
(title and description, the query vector encoded for real beforehand) are timed through the
product's lexical index, vector store and retriever, with and without an area filter, in rotating
order so the machine's load weighs on all alike.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

import numpy as np

from agent.embeddings import Encoder
from agent.lexical import tokenize
from agent.store import ChromaVectorStore
from backend.clock import SystemClock
from backend.config import Settings
from backend.db import create_pool, drop_database, ensure_database, migrate, with_database
from backend.knowledge.ingest import incident_from_jira
from backend.knowledge.service import KnowledgeService, PostgresLexicalIndex
from bench.intake import resident_mb
from bench.retrieval import _read_jsonl, latency_figures

log = logging.getLogger(__name__)

CANDIDATES = 100  # what the retriever asks each index for (FusionParams.candidates)
TOP_K = 10
WARM_UP = 10
# How far an entry's vector sits from its record's title vector.
PARTNER_WEIGHT = 0.5
NOISE = 0.1
TITLE_TOKENS = 32
EVERY_POSTING = 2**31 - 1  # postings_per_term that reads every posting
KNOWLEDGE_TABLES = ("incidents", "knowledge_entries", "knowledge_postings", "knowledge_term_stats")


class DerivedVectors(Encoder):
    """The bench's stand-in for the encoder during the build and the timed queries.

    It returns vectors registered beforehand for exact texts (entries' embedding texts, queries),
    so that the build measures everything but the model, and a timed query measures retrieval
    without its encoding (timed apart, with the real encoder, as `encode_*`).
    """

    def __init__(self, dimension: int) -> None:
        super().__init__("derived-vectors")
        self._dimension = dimension
        self._vectors: dict[str, np.ndarray] = {}

    @property
    def dimension(self) -> int:
        return self._dimension

    def load(self) -> None:
        """Nothing to load."""

    def register(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        for text, vector in zip(texts, vectors):
            self._vectors[text] = vector

    def forget(self) -> None:
        self._vectors.clear()

    def encode(self, texts: Sequence[str], *, max_tokens: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return np.stack([self._vectors[text] for text in texts]).astype(np.float32)

    async def encode_async(self, texts: Sequence[str], *, max_tokens: int | None = None) -> np.ndarray:
        return self.encode(texts, max_tokens=max_tokens)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def synthetic_batch(
    base: list[dict[str, Any]], title_vectors: np.ndarray, start: int, count: int, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], list[str], np.ndarray]:
    """Import records start .. start + count - 1, their embedding texts and derived vectors.

    Entry i takes record i mod len(base) (every record once per round) and a partner drawn at
    random; its description starts with the partner's title.
    """
    own = np.arange(start, start + count) % len(base)
    partners = rng.integers(0, len(base), size=count)
    noise = rng.standard_normal((count, title_vectors.shape[1])).astype(np.float32) / np.sqrt(title_vectors.shape[1])
    vectors = _normalised(title_vectors[own] + PARTNER_WEIGHT * title_vectors[partners] + NOISE * noise)
    origin = datetime(2020, 1, 1, tzinfo=timezone.utc)
    records, texts = [], []
    for offset, (mine, partner) in enumerate(zip(own.tolist(), partners.tolist())):
        record, other = base[mine], base[partner]
        description = f"{other['title']}\n{record['description']}".strip()
        created = origin + timedelta(minutes=start + offset)
        records.append(
            record
            | {
                "external_ref": f"SCALE-{start + offset}",
                "description": description,
                "created_at": created,
                "resolved_at": created,
            }
        )
        texts.append(f"{record['title']}\n{description}")  # backend.knowledge.entries.embedding_text
    return records, texts, vectors


def _percentiles(seconds: list[float], prefix: str) -> dict[str, float]:
    figures = latency_figures(seconds)
    return {f"{prefix}_p50_ms": figures["p50_ms"], f"{prefix}_p95_ms": figures["p95_ms"]}


def _folder_mb(path: Path) -> float:
    total = sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return round(total / 2**20, 1)


async def _table_mb(service: KnowledgeService) -> dict[str, float]:
    async with service.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT relname, pg_total_relation_size(oid) AS bytes FROM pg_class WHERE relname = ANY($1::text[])",
            list(KNOWLEDGE_TABLES),
        )
    return {row["relname"]: round(row["bytes"] / 2**20, 1) for row in rows}


async def _time(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def _timed_queries(
    service: KnowledgeService, store: ChromaVectorStore, queries: list[dict[str, Any]]
) -> dict[str, float]:
    """p50/p95 of lexical, dense and fused retrieval, each with and without the query's area."""
    kinds = ("incident",)

    def lexical(query: dict[str, Any], area: str | None) -> Callable[[], Awaitable[Any]]:
        return lambda: service.lexical_index.search(query["terms"], k=CANDIDATES, area=area, kinds=kinds)

    def dense(query: dict[str, Any], area: str | None) -> Callable[[], Awaitable[Any]]:
        where: dict[str, Any] = {"kind": list(kinds)} | ({"area": [area, ""]} if area else {})
        return lambda: asyncio.to_thread(store.query, query["vector"], CANDIDATES, where)

    def fused(query: dict[str, Any], area: str | None) -> Callable[[], Awaitable[Any]]:
        return lambda: service.retriever.search(query["text"], area=area, k=TOP_K, kinds=kinds)

    kinds_of_call = {"lexical": lexical, "dense": dense, "fused": fused}
    timings: dict[str, list[float]] = {}
    for number, query in enumerate(queries):
        names = list(kinds_of_call)
        names = names[number % 3 :] + names[: number % 3]  # rotate which goes first
        for name in names:
            for area, suffix in ((None, ""), (query["area"], "_area")):
                seconds = await _time(kinds_of_call[name](query, area))
                if number >= WARM_UP:
                    timings.setdefault(f"{name}{suffix}", []).append(seconds)
    figures: dict[str, float] = {}
    for name, samples in sorted(timings.items()):
        figures |= _percentiles(samples, name)
    return figures


async def _exhaustive_lexical(service: KnowledgeService, queries: list[dict[str, Any]]) -> dict[str, float]:
    """The design before impact ordering, side by side: BM25 over every posting of every query term.

    Reports its latency and how many of the capped index's top 10 it shares (the cut's cost in ranking).
    """
    exhaustive = PostgresLexicalIndex(service.pool, postings_per_term=EVERY_POSTING)
    seconds, overlaps = [], []
    for query in queries:
        started = time.perf_counter()
        everything = await exhaustive.search(query["terms"], k=TOP_K, area=None, kinds=("incident",))
        seconds.append(time.perf_counter() - started)
        capped = await service.lexical_index.search(query["terms"], k=TOP_K, area=None, kinds=("incident",))
        best = {entry_id for entry_id, _ in everything}
        if best:
            overlaps.append(len(best & {entry_id for entry_id, _ in capped}) / len(best))
    return _percentiles(seconds, "lexical_exhaustive") | {
        "lexical_top10_shared_with_exhaustive": round(statistics.mean(overlaps), 3) if overlaps else 0.0,
        "exhaustive_queries": len(seconds),
    }


def _queries(base: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    step = max(1, len(base) // max(1, count))
    chosen = [base[index] for index in range(0, len(base), step)][:count]
    return [
        {"text": f"{record['title']}\n{record['description']}", "area": record["area"]}
        | {"terms": tokenize(f"{record['title']}\n{record['description']}")}
        for record in chosen
    ]


async def run_scale_bench(
    settings: Settings,
    kb_path: Path,
    *,
    entries: int,
    queries: int = 200,
    batch: int = 50_000,
    seed: int = 7,
    exhaustive_queries: int = 20,
) -> dict[str, Any]:
    """Build `entries` synthetic incidents from the file in a scratch database, time queries, drop it."""
    base = [incident_from_jira(record, number) for number, record in enumerate(_read_jsonl(kb_path), start=1)]
    if not base:
        raise ValueError(f"{kb_path} holds no incidents")
    encoder = Encoder(settings.embedding_model, batch_size=settings.embedding_batch_size)
    started = time.perf_counter()
    title_vectors = await encoder.encode_async([record["title"] for record in base], max_tokens=TITLE_TOKENS)
    base_encode_s = time.perf_counter() - started
    asked = _queries(base, queries + WARM_UP)
    # The real cost of the encoding a query adds to the figures below (FusionParams.query_max_tokens for incidents).
    encode_seconds = []
    for query in asked:
        started = time.perf_counter()
        query["vector"] = (await encoder.encode_async([query["text"]], max_tokens=128))[0]
        encode_seconds.append(time.perf_counter() - started)

    dsn = with_database(settings.database_url, f"prs_bench_scale_{uuid.uuid4().hex[:12]}")
    await ensure_database(dsn)
    work_dir = Path(tempfile.mkdtemp(prefix="prs-bench-scale-"))
    try:
        await migrate(dsn)
        bench_settings = settings.model_copy(update={"database_url": dsn, "data_dir": work_dir})
        pool = await create_pool(dsn, min_size=1, max_size=4)
        try:
            vectors = DerivedVectors(title_vectors.shape[1])
            store = ChromaVectorStore.persistent(str(work_dir / "chroma"), settings.chroma_collection)
            service = KnowledgeService(bench_settings, pool, vectors, store, SystemClock())
            rng = np.random.default_rng(seed)
            started = time.perf_counter()
            async with service.bulk_import():  # as `prs ingest incidents --bulk`
                for start in range(0, entries, batch):
                    count = min(batch, entries - start)
                    records, texts, derived = await asyncio.to_thread(
                        synthetic_batch, base, title_vectors, start, count, rng
                    )
                    vectors.register(texts, derived)
                    report = await service.ingest_incident_records(records, vacuum=False)
                    vectors.forget()
                    log.info("scale bench: %d entries in %.0f s", start + count, time.perf_counter() - started)
                    if report["vectors_synced"] != count:
                        raise RuntimeError(f"only {report['vectors_synced']} of {count} vectors were synced")
            build_s = time.perf_counter() - started
            status = await service.status()
            tables = await _table_mb(service)
            chroma_mb = _folder_mb(work_dir / "chroma")
            vectors.register([query["text"] for query in asked], np.stack([query["vector"] for query in asked]))
            figures = await _timed_queries(service, store, asked)
            if exhaustive_queries:
                figures |= await _exhaustive_lexical(service, asked[WARM_UP:][:exhaustive_queries])
        finally:
            await pool.close()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
        await drop_database(dsn)
    disk_mb = round(sum(tables.values()) + chroma_mb, 1)
    per_million = 1_000_000 / max(1, status["incidents"])
    return {
        "entries": status["incidents"],
        "base_records": len(base),
        "queries": len(asked) - WARM_UP,
        **figures,
        "encode_p50_ms": round(statistics.median(encode_seconds[WARM_UP:] or encode_seconds) * 1000, 1),
        "build_s": round(build_s, 1),
        "build_per_s": round(status["incidents"] / build_s, 1),
        "base_encode_s": round(base_encode_s, 1),
        "disk_mb": disk_mb,
        "disk_mb_per_million": round(disk_mb * per_million, 1),
        "postgres_mb": tables,
        "chroma_mb": chroma_mb,
        "rss_mb": resident_mb(),
        "cpus": os.cpu_count(),
    }
