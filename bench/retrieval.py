"""Retrieval benchmark on the evaluation data (shared/eval/README.md), through the product's own code.

Each run builds a fresh database and a temporary data folder, ingests the knowledge base with
the product's importers, queries it with the product's retrieval calls and drops everything.
"""

from __future__ import annotations

import gzip
import json
import logging
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Literal

from agent.adapt import AdaptationParams
from agent.chunking import chunk_document
from agent.embeddings import Encoder
from agent.retrieve import group_key, ranking_features
from agent.store import ChromaVectorStore, document_chunk_vector_id, incident_vector_id
from backend.clock import SystemClock
from backend.config import Settings
from backend.db import create_pool, drop_database, ensure_database, migrate, with_database
from backend.knowledge.entries import embedding_text
from backend.knowledge.ingest import incident_from_jira
from backend.knowledge.schemas import ConfirmedMatch
from backend.knowledge.service import SYNC_BATCH, KnowledgeService
from bench.ranking_fit import Sample, cross_validate

log = logging.getLogger(__name__)
Task = Literal["jira", "dell"]
TOP_K = 10
# Texts the raw encoder is timed on (evenly spread over the knowledge base).
ENCODER_SAMPLE = 1024


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def ranking_metrics(rankings: Iterable[tuple[list[Any], set[Any]]]) -> dict[str, float]:
    """recall@1/5/10 (share of the relevant items found) and MRR@10 over (ranked, relevant) pairs."""
    totals = {"recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "mrr@10": 0.0}
    count = 0
    for ranked, relevant in rankings:
        count += 1
        for cutoff in (1, 5, 10):
            totals[f"recall@{cutoff}"] += len(relevant & set(ranked[:cutoff])) / len(relevant)
        rank = next((position for position, item in enumerate(ranked[:TOP_K], start=1) if item in relevant), None)
        totals["mrr@10"] += 1.0 / rank if rank else 0.0
    return {name: round(value / count, 4) if count else 0.0 for name, value in totals.items()} | {"n": count}


def latency_figures(seconds: list[float]) -> dict[str, float]:
    """p50 and p95 of per-query latencies, in milliseconds."""
    ordered = sorted(seconds)
    p95_index = min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1), "p95_ms": round(ordered[p95_index] * 1000, 1)}


async def _timed(call) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await call
    return result, time.perf_counter() - started


async def _bench_jira(
    service: KnowledgeService,
    work_dir: Path,
    kb_path: Path,
    queries_path: Path,
    *,
    limit: int | None,
    fit: bool,
    adapt: AdaptationParams | None,
    learn: AdaptationParams | None,
) -> dict[str, Any]:
    records = _read_jsonl(kb_path)
    all_queries = _read_jsonl(queries_path)
    query_keys = {query["query_key"] for query in all_queries}  # every query stays out of the knowledge base
    queries = _subset(all_queries, limit)
    by_key = {record["key"]: record for record in records}
    kb_file = work_dir / "kb.jsonl"
    with kb_file.open("w", encoding="utf-8") as out:
        for record in records:
            if record["key"] not in query_keys:
                out.write(json.dumps(record) + "\n")
    kb_texts = [
        embedding_text({"kind": "incident", "title": i["title"], "body": i["description"]})
        for i in (incident_from_jira(record, n) for n, record in enumerate(records, start=1))
        if i["external_ref"] not in query_keys
    ]
    report, rates = await timed_ingest(
        service,
        kb_texts,
        len(kb_texts),
        lambda: service.ingest_incidents_jsonl(kb_file, create_areas=True, mapping="jira"),
    )
    async with service.pool.acquire() as conn:
        rows = await conn.fetch("SELECT external_ref, id FROM incidents WHERE source = 'import'")
        ids_by_key: dict[str, int] = {row["external_ref"]: row["id"] for row in rows}

    # Each scored query as reported: its text, area and time, and its duplicates in the knowledge base.
    cases = []
    for number, query in enumerate(queries, start=1):
        relevant = {ids_by_key[key] for key in query["gold"] if key in ids_by_key}
        if relevant:
            new_incident = incident_from_jira(by_key[query["query_key"]], number)
            cases.append((new_incident, f"{new_incident['title']}\n{new_incident['description']}", relevant))

    results: dict[str, Any] = {"kb_size": report["inserted"]} | rates
    if adapt:
        results["unadapted"] = _headline(await _score_jira(service, cases))
        results |= await _adapted(service, work_dir, adapt)

    async def samples(part: Iterable[int]) -> list[Sample]:
        return [
            await _sample(
                service,
                cases[index][1],
                cases[index][0]["area"],
                ("incident",),
                cases[index][0]["created_at"],
                frozenset(incident_vector_id(incident_id) for incident_id in cases[index][2]),
            )
            for index in part
        ]

    if fit:
        results["fit"] = _fit(service, await samples(range(len(cases))), "incident")
    if not learn:
        return results | await _score_jira(service, cases)
    if adapt:
        results["unsupervised"] = _headline(await _score_jira(service, cases))

    async def score(part: list[int]) -> Rankings:
        return {
            setting: await _jira_rankings(service, [cases[index] for index in part], setting)
            for setting in ("same_area", "all_areas")
        }

    def matches(part: list[int]) -> list[ConfirmedMatch]:
        return [
            ConfirmedMatch(query=cases[index][1], incident_id=incident_id)
            for index in part
            for incident_id in sorted(cases[index][2])
            if cases[index][1].strip()
        ]

    learned = await _cross_fitted(service, work_dir, learn, len(cases), matches, score, samples if fit else None)
    if fit:
        learned["learn"]["fit"] = _fit(service, learned["samples"], "incident")
    return (
        results
        | learned["figures"]["same_area"]
        | {"all_areas": learned["figures"]["all_areas"], "learn": learned["learn"]}
    )


async def _jira_rankings(
    service: KnowledgeService, cases: list[tuple[dict[str, Any], str, set[int]]], setting: str
) -> tuple[list[tuple[list[Any], set[Any]]], list[float]]:
    """The ranking of each case (same_area or all_areas) and the time each took."""
    rankings, latencies = [], []
    for new_incident, text, relevant in cases:
        area = new_incident["area"] if setting == "same_area" else None
        # Replayed as reported: at the query's creation time (the age prior measures from it).
        similar, seconds = await _timed(
            service.similar_incidents(text=text, area=area, limit=TOP_K, reported_at=new_incident["created_at"])
        )
        rankings.append(([item.incident_id for item in similar], relevant))
        latencies.append(seconds)
    return rankings, latencies


def _figures(rankings: list[tuple[list[Any], set[Any]]], latencies: list[float]) -> dict[str, Any]:
    return ranking_metrics(rankings) | halves(rankings) | latency_figures(latencies)


async def _score_jira(service: KnowledgeService, cases: list[tuple[dict[str, Any], str, set[int]]]) -> dict[str, Any]:
    """Same-area figures at the top level, every-area figures under all_areas."""
    same_area = _figures(*await _jira_rankings(service, cases, "same_area"))
    return same_area | {"all_areas": _figures(*await _jira_rankings(service, cases, "all_areas"))}


# Per setting: the ranking of each query of a part, and the time each took.
Rankings = dict[str, tuple[list[tuple[list[Any], set[Any]]], list[float]]]


async def _cross_fitted(
    service: KnowledgeService,
    work_dir: Path,
    params: AdaptationParams,
    count: int,
    matches: Callable[[list[int]], list[ConfirmedMatch]],
    score: Callable[[list[int]], Awaitable[Rankings]],
    sample: Callable[[list[int]], Awaitable[list[Sample]]] | None = None,
) -> dict[str, Any]:
    """Learning from confirmed matches, judged on queries it never saw (two-fold cross-fitting).

    The queries are split into even- and odd-numbered ones. For each part, the encoder is adapted
    as `prs knowledge adapt --pairs` does, with the knowledge base and the confirmed matches (query,
    relevant entries) of the other part only, the index rebuilt, and this part's queries scored.
    Every query is therefore ranked by an encoder that did not learn from it; the figures are over
    all queries, each from its own part's run.
    With `sample`, each part's ranking features are collected from its own run too (in query order,
    so the even/odd halves of `cross_validate` are the two parts): weights fit on one part's
    held-out scores are judged on the other part's.
    """
    parts = [list(range(0, count, 2)), list(range(1, count, 2))]
    per_setting: dict[str, tuple[list[Any], list[float]]] = {}
    held_samples: list[Sample | None] = [None] * count
    runs = []
    for number, part in enumerate(parts):
        other = parts[1 - number]
        started = time.perf_counter()
        report = await service.adapt_encoder(
            work_dir / f"learned-encoder-{number}", params, matches=matches(other), from_feedback=False
        )
        runs.append(
            {
                "pairs": report["pairs"],
                "adapt_s": round(time.perf_counter() - started, 1),
                "adapt_train_s": report["seconds"],
                "adapt_steps": report["steps"],
            }
        )
        for setting, (rankings, latencies) in (await score(part)).items():
            held_rankings, held_latencies = per_setting.setdefault(setting, ([None] * count, []))
            for index, ranking in zip(part, rankings):
                held_rankings[index] = ranking
            held_latencies.extend(latencies)
        if sample:
            for index, found in zip(part, await sample(part)):
                held_samples[index] = found
    return {
        "figures": {setting: _figures(rankings, latencies) for setting, (rankings, latencies) in per_setting.items()},
        "learn": {"folds": len(parts), "runs": runs},
        "samples": [found for found in held_samples if found is not None],
    }


def _headline(figures: dict[str, Any]) -> dict[str, Any]:
    """The quality figures of a run (for side-by-side comparison with another setting)."""
    keep = ("recall@1", "recall@5", "recall@10", "mrr@10", "even_half", "odd_half", "all_areas")
    return {
        key: ({k: v for k, v in value.items() if not k.endswith("_ms")} if isinstance(value, dict) else value)
        for key, value in figures.items()
        if key in keep
    }


async def _adapted(service: KnowledgeService, work_dir: Path, params: AdaptationParams) -> dict[str, Any]:
    """Adapt the encoder to the ingested knowledge base and rebuild the index, as `prs knowledge adapt` does."""
    started = time.perf_counter()
    report = await service.adapt_encoder(work_dir / "adapted-encoder", params)
    return {
        "adapt_s": round(time.perf_counter() - started, 1),
        "adapt_train_s": report["seconds"],
        "adapt_steps": report["steps"],
        "adapt_texts": report["texts"],
    }


async def _bench_dell(
    service: KnowledgeService,
    work_dir: Path,
    kb_path: Path,
    queries_path: Path,
    *,
    limit: int | None,
    fit: bool,
    adapt: AdaptationParams | None,
    learn: AdaptationParams | None,
) -> dict[str, Any]:
    solutions = _read_jsonl(kb_path)
    questions = _subset(_read_jsonl(queries_path), limit)
    settings = service.settings
    texts = [
        embedding_text({"kind": "document", "heading": chunk.heading, "body": chunk.text})
        for s in solutions
        for chunk in chunk_document(
            s["text"], chunk_words=settings.chunk_words, overlap_words=settings.chunk_overlap_words
        )
    ]
    documents, rates = await timed_ingest(
        service,
        texts,
        len(solutions),
        lambda: service.ingest_documents(
            [{"title": s["doc_id"], "filename": f"{s['doc_id']}.txt", "text": s["text"]} for s in solutions]
        ),
    )
    doc_ids = {document["id"]: solution["doc_id"] for document, solution in zip(documents, solutions)}
    ids_by_doc = {solution["doc_id"]: document["id"] for document, solution in zip(documents, solutions)}
    results: dict[str, Any] = {"kb_size": len(solutions)} | rates
    if adapt:
        results["unadapted"] = _headline(await _score_dell(service, questions, doc_ids))
        results |= await _adapted(service, work_dir, adapt)

    async def samples(part: Iterable[int]) -> list[Sample]:
        return [
            await _sample(
                service,
                questions[index]["question"],
                None,
                ("document",),
                None,
                frozenset(
                    group_key(document_chunk_vector_id(ids_by_doc[gold], 0)) for gold in questions[index]["gold"]
                ),
            )
            for index in part
        ]

    if fit:
        results["fit"] = _fit(service, await samples(range(len(questions))), "document")
    if not learn:
        return results | await _score_dell(service, questions, doc_ids)
    if adapt:
        results["unsupervised"] = _headline(await _score_dell(service, questions, doc_ids))

    async def score(part: list[int]) -> Rankings:
        return {"all": await _dell_rankings(service, [questions[index] for index in part], doc_ids)}

    def matches(part: list[int]) -> list[ConfirmedMatch]:
        return [
            ConfirmedMatch(query=questions[index]["question"], document_id=ids_by_doc[gold])
            for index in part
            for gold in questions[index]["gold"]
            if gold in ids_by_doc and questions[index]["question"].strip()  # one question of the file is blank
        ]

    learned = await _cross_fitted(service, work_dir, learn, len(questions), matches, score, samples if fit else None)
    if fit:
        learned["learn"]["fit"] = _fit(service, learned["samples"], "document")
    return results | learned["figures"]["all"] | {"learn": learned["learn"]}


async def _dell_rankings(
    service: KnowledgeService, questions: list[dict[str, Any]], doc_ids: dict[int, str]
) -> tuple[list[tuple[list[Any], set[Any]]], list[float]]:
    rankings, latencies = [], []
    for question in questions:
        hits, seconds = await _timed(
            service.search(query=question["question"], area=None, limit=TOP_K, kinds=("document",))
        )
        rankings.append(([doc_ids[hit.document_id] for hit in hits], set(question["gold"])))
        latencies.append(seconds)
    return rankings, latencies


async def _score_dell(
    service: KnowledgeService, questions: list[dict[str, Any]], doc_ids: dict[int, str]
) -> dict[str, Any]:
    return _figures(*await _dell_rankings(service, questions, doc_ids))


def _fit(service: KnowledgeService, samples: list[Sample], kind: str) -> dict[str, Any]:
    """Ranking weights fit on each half of the samples and scored on the other (bench/ranking_fit.py)."""
    return cross_validate(samples, kind=kind, product=service.retriever.params.weights[kind])


async def _sample(
    service: KnowledgeService,
    text: str,
    area: str | None,
    kinds: tuple[str, ...],
    at: datetime | None,
    relevant: frozenset[str],
) -> Sample:
    """One query's candidates through the product's retriever, with the features its ranking weighs."""
    params = service.retriever.params
    found = await service.retriever.candidates(text, area=area, kinds=kinds)
    features = ranking_features(found.dense, found.lexical, candidates=params.candidates, facts=found.facts, at=at)
    return Sample(features=features, relevant=relevant)


def _subset(queries: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """Every query, or `limit` of them spread evenly over the file (quick runs while iterating)."""
    if not limit or limit >= len(queries):
        return queries
    step = len(queries) / limit
    return [queries[int(index * step)] for index in range(limit)]


def halves(rankings: list[tuple[list[Any], set[Any]]]) -> dict[str, Any]:
    """recall@10 and MRR@10 of the even- and odd-numbered queries: anything fit on one half is judged on the other."""
    figures = {}
    for name, part in (("even", rankings[0::2]), ("odd", rankings[1::2])):
        metrics = ranking_metrics(part)
        figures[f"{name}_half"] = {"recall@10": metrics["recall@10"], "mrr@10": metrics["mrr@10"], "n": metrics["n"]}
    return figures


async def _encoder_entries_per_s(service: KnowledgeService, texts: list[str]) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), SYNC_BATCH):
        await service.encoder.encode_async(texts[start : start + SYNC_BATCH])
    return len(texts) / (time.perf_counter() - started)


def _even_sample(texts: list[str], sample: int) -> list[str]:
    return texts[:: max(1, len(texts) // sample)]


async def timed_ingest(service: KnowledgeService, texts: list[str], kb_size: int, ingest) -> tuple[Any, dict[str, Any]]:
    """Run `ingest` (a coroutine function) with the raw encoder timed just before and just after it.

    The encoder runs alone on an even sample of the texts ingest will embed, with the batch size
    ingest uses; the mean of the two timings brackets the ingest, so a change in the machine's load
    during the run weighs on both figures. Rates are in knowledge-base items (documents or
    incidents) per second: a document may have several chunks.
    """
    sample = _even_sample(texts, ENCODER_SAMPLE // 2)
    before = await _encoder_entries_per_s(service, sample)
    started = time.perf_counter()
    result = await ingest()
    seconds = time.perf_counter() - started
    after = await _encoder_entries_per_s(service, sample)
    per_item = kb_size / max(1, len(texts))
    return result, {
        "ingest_per_s": round(kb_size / seconds, 1),
        "encoder_per_s": round((before + after) / 2 * per_item, 1),
        "encoder_before_after_per_s": [round(before * per_item, 1), round(after * per_item, 1)],
        "encoder_sample": len(sample),
    }


async def run_retrieval_bench(
    settings: Settings,
    task: Task,
    kb_path: Path,
    queries_path: Path,
    *,
    limit: int | None = None,
    fit: bool = False,
    adapt: bool = True,
    adaptation: AdaptationParams | None = None,
    learn: bool = False,
) -> dict[str, Any]:
    """Ingest the task's knowledge base into a fresh database, run its queries, return the figures.

    With adapt (the deployment docs/knowledge.md recommends), the queries run once with the base
    encoder (figures under `unadapted`), then the encoder is adapted to the knowledge base and the
    index rebuilt, as `prs knowledge adapt` does (with its defaults unless `adaptation` says otherwise),
    and the top-level figures are the adapted ones.
    With learn, the encoder also learns confirmed matches, as a deployment with a history of accepted
    suggestions does: the top-level figures are then cross-fitted (_cross_fitted: each query ranked
    by an encoder adapted with the other half's matches), the unsupervised ones under `unsupervised`.
    With fit, also the ranking weights fit on each half of the queries and scored on the other."""
    if task not in ("jira", "dell"):
        raise ValueError("task must be 'jira' or 'dell'")
    adapt_with = (adaptation or AdaptationParams()) if adapt else None
    learn_with = (adaptation or AdaptationParams()) if learn else None
    dsn = with_database(settings.database_url, f"prs_bench_{uuid.uuid4().hex[:12]}")
    await ensure_database(dsn)
    try:
        await migrate(dsn)
        with tempfile.TemporaryDirectory(prefix="prs-bench-") as folder:
            work_dir = Path(folder)
            bench_settings = settings.model_copy(
                update={"database_url": dsn, "data_dir": work_dir, "similar_min_score": 0.0}
            )
            pool = await create_pool(dsn, min_size=1, max_size=4)
            try:
                encoder = Encoder(settings.embedding_model, batch_size=settings.embedding_batch_size)
                encoder.load()
                store = ChromaVectorStore.persistent(str(work_dir / "chroma"), settings.chroma_collection)
                service = KnowledgeService(bench_settings, pool, encoder, store, SystemClock())
                bench_task = _bench_jira if task == "jira" else _bench_dell
                figures = await bench_task(
                    service,
                    work_dir,
                    Path(kb_path),
                    Path(queries_path),
                    limit=limit,
                    fit=fit,
                    adapt=adapt_with,
                    learn=learn_with,
                )
            finally:
                await pool.close()
    finally:
        await drop_database(dsn)
    return {"task": task} | figures
