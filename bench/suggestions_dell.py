"""`prs bench suggestions dell`: suggestion quality against the accepted answers of DellQA (shared/eval/README.md).

In a scratch database: ingest the solutions as knowledge documents with the product's importer, then for each
question run the product's retrieval and suggestion path on an LLM node (PRS_LLM_NODES when set, else a bundled
node this bench starts) and score the suggestion against the accepted solution (the reference), next to the
baseline "show the top retrieved solution as it is". With `leave_one_out` each question is also run with its
reference document taken out of what retrieval returns, as if the case had never been seen (reported nested under
"leave_one_out"; the standard setting stays at the top level).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.embeddings import Encoder
from agent.llm import LLMCluster
from agent.store import ChromaVectorStore
from agent.suggest import Suggester
from agent.types import CaseForPrompt
from backend.clock import SystemClock
from backend.config import Settings
from backend.db import create_pool, drop_database, ensure_database, migrate, with_database
from backend.knowledge.service import KnowledgeService
from backend.suggestions.service import suggester_for, suggestion_language
from bench import suggestion_metrics as metrics
from bench.retrieval import _read_jsonl
from bench.suggestions_load import NodeRun, _free_port

AREA = "dell"


class BulkLoadingKnowledge(KnowledgeService):
    """The product's knowledge service, embedding documents when asked rather than one by one as each is stored
    (the same entries and vectors; a bulk load is minutes faster)."""

    deferred = False

    async def _sync_best_effort(self, *, while_staging: asyncio.Future[Any] | None = None) -> int:
        return 0 if self.deferred else await super()._sync_best_effort(while_staging=while_staging)


@dataclass
class Scored:
    """One question's outcome."""

    query_id: str
    suggestion: str
    top1_text: str
    reference: str
    citations: list[Any]
    scores: dict[str, float]
    unsupported: int
    numbers: int
    ttft_s: float | None
    total_s: float


def _retrieved_refs(cases: list[CaseForPrompt]) -> list[Any]:
    """What a suggestion may cite, one per case in order: the incident id, or "D" and the document id."""
    return [c.incident_id if c.incident_id is not None else f"D{getattr(c, 'document_id', None)}" for c in cases]


def _cited_refs(suggestion: Any) -> list[Any]:
    return list(suggestion.citations) + [f"D{d}" for d in getattr(suggestion, "document_citations", [])]


def _case_text(title: str, problem: str | None, solution: str) -> str:
    return f"{title}\n{problem or ''}\n{solution}"


def score_texts(
    *,
    text: str,
    report: str,
    reference: str,
    top1: str,
    cited: list[Any],
    retrieved: list[Any],
    cited_texts: list[str],
    language: str | None,
) -> tuple[dict[str, float], int, int]:
    """(scores, unsupported numbers, numbers) of one suggestion; the sources are the report and the cited cases."""
    sources = [report, *cited_texts]
    unsupported, found = metrics.unsupported_numbers(text, sources)
    scores = {
        "token_f1": metrics.token_f1(text, reference),
        "rouge_l": metrics.rouge_l(text, reference),
        "baseline_top1_f1": metrics.token_f1(top1, reference),
        "baseline_top1_rouge_l": metrics.rouge_l(top1, reference),
        "citation_valid": metrics.citation_valid(cited, retrieved),
        "support": metrics.support(text, sources),
        "artifacts": float(metrics.artifacts(text) > 0),
        "language_match": float(metrics.language_match(text, report, expected=language)),
    }
    return scores, unsupported, found


def score_one(
    *,
    query_id: str,
    report: str,
    reference: str,
    suggestion: Any,
    cases: list[CaseForPrompt],
    language: str | None,
    ttft_s: float | None,
    total_s: float,
) -> Scored:
    """Every score of one suggestion (pure apart from the objects passed in)."""
    cited = _cited_refs(suggestion)
    retrieved = _retrieved_refs(cases)
    cited_texts = [_case_text(c.title, c.problem, c.solution) for ref, c in zip(retrieved, cases) if ref in cited]
    top1 = cases[0].solution if cases else ""
    scores, unsupported, found = score_texts(
        text=suggestion.text,
        report=report,
        reference=reference,
        top1=top1,
        cited=cited,
        retrieved=retrieved,
        cited_texts=cited_texts,
        language=language,
    )
    return Scored(
        query_id=query_id,
        suggestion=suggestion.text,
        top1_text=top1,
        reference=reference,
        citations=cited,
        scores=scores,
        unsupported=unsupported,
        numbers=found,
        ttft_s=ttft_s,
        total_s=total_s,
    )


def summarise(results: list[Scored]) -> dict[str, Any]:
    """Means of the per-question scores; unsupported_numbers over all numbers; p50 latencies."""
    if not results:
        return {"n": 0}
    summary: dict[str, Any] = {"n": len(results)}
    for name in results[0].scores:
        summary[name] = round(statistics.fmean(r.scores[name] for r in results), 4)
    found = sum(r.numbers for r in results)
    summary["unsupported_numbers"] = round(sum(r.unsupported for r in results) / found, 4) if found else 0.0
    firsts = [r.ttft_s for r in results if r.ttft_s is not None]
    summary["ttft_p50_ms"] = round(statistics.median(firsts) * 1000, 1) if firsts else None
    summary["total_p50_ms"] = round(statistics.median(r.total_s for r in results) * 1000, 1)
    return summary


async def _retrieve(
    knowledge: KnowledgeService, settings: Settings, text: str, excluded_title: str | None
) -> list[CaseForPrompt]:
    """The product's retrieval; in leave-one-out the reference document's chunks are dropped."""
    if excluded_title is None:
        return await knowledge.retrieve_cases(text=text, area=None, limit=settings.suggestion_cases)
    wider = await knowledge.retrieve_cases(text=text, area=None, limit=settings.suggestion_cases + 4)
    return [c for c in wider if c.document_title != excluded_title][: settings.suggestion_cases]


async def _suggest_one(
    knowledge: KnowledgeService,
    suggester: Suggester,
    settings: Settings,
    question: dict[str, Any],
    reference: str,
    excluded: str | None,
) -> tuple[Scored, list[CaseForPrompt]]:
    report = question["question"]
    title, _, _ = report.partition(". ")
    first_token: list[float] = []

    async def on_progress(_: str) -> None:
        if not first_token:
            first_token.append(time.perf_counter())

    started = time.perf_counter()
    cases = await _retrieve(knowledge, settings, report, excluded)
    # What the service does for a new incident (backend/suggestions/service.py): same language rule, same call.
    language = suggestion_language(settings, requested=None, report=report)
    suggestion = await suggester.suggest(
        title=title[:200], description=report, area=AREA, cases=cases, language=language, on_progress=on_progress
    )
    finished = time.perf_counter()
    scored = score_one(
        query_id=question["query_id"],
        report=report,
        reference=reference,
        suggestion=suggestion,
        cases=cases,
        language=None,
        ttft_s=first_token[0] - started if first_token else None,
        total_s=finished - started,
    )
    return scored, cases


def _line(scored: Scored, setting: str, cases: list[CaseForPrompt]) -> str:
    """One --out line: what the scores are computed from, the scores, and the retrieved cases."""
    return (
        json.dumps(
            {
                "query_id": scored.query_id,
                "setting": setting,
                "suggestion": scored.suggestion,
                "top1_text": scored.top1_text,
                "reference": scored.reference,
                "citations": scored.citations,
                "scores": scored.scores,
                "unsupported": scored.unsupported,
                "numbers": scored.numbers,
                "ttft_s": scored.ttft_s,
                "total_s": scored.total_s,
                "retrieved": [
                    {
                        "ref": ref,
                        "title": c.title,
                        "problem": c.problem,
                        "solution": c.solution,
                        "score": round(c.score, 4),
                    }
                    for ref, c in zip(_retrieved_refs(cases), cases)
                ],
            },
            ensure_ascii=False,
        )
        + "\n"
    )


def rescore_lines(path: Path, queries_path: Path) -> dict[str, Any]:
    """The summary of a (possibly unfinished) --out file, every score computed again from its texts: what a run
    cut short had measured, or an older run scored with the current definitions."""
    reports = {q["query_id"]: q["question"] for q in _read_jsonl(Path(queries_path))}
    by_setting: dict[str, list[Scored]] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        row = json.loads(raw)
        retrieved = [item["ref"] for item in row["retrieved"]]
        cited_texts = [
            _case_text(item["title"], item.get("problem"), item["solution"])
            for item in row["retrieved"]
            if item["ref"] in row["citations"]
        ]
        scores, unsupported, found = score_texts(
            text=row["suggestion"],
            report=reports[row["query_id"]],
            reference=row["reference"],
            top1=row["top1_text"],
            cited=row["citations"],
            retrieved=retrieved,
            cited_texts=cited_texts,
            language=None,
        )
        by_setting.setdefault(row["setting"], []).append(
            Scored(
                query_id=row["query_id"],
                suggestion=row["suggestion"],
                top1_text=row["top1_text"],
                reference=row["reference"],
                citations=row["citations"],
                scores=scores,
                unsupported=unsupported,
                numbers=found,
                ttft_s=row["ttft_s"],
                total_s=row["total_s"],
            )
        )
    summary = {"task": "dell", "setting": "standard"} | summarise(by_setting.get("standard", []))
    if "leave_one_out" in by_setting:
        summary["leave_one_out"] = summarise(by_setting["leave_one_out"])
    return summary


async def run_dell_suggestions_bench(
    settings: Settings,
    *,
    kb_path: Path,
    queries_path: Path,
    limit: int | None,
    leave_one_out: bool,
    out_path: Path | None,
    start_node: bool,
) -> dict[str, Any]:
    """Ingest the solutions, suggest for each question, return the summary (and write per-question lines)."""
    solutions = {row["doc_id"]: row["text"] for row in _read_jsonl(Path(kb_path))}
    questions = [q for q in _read_jsonl(Path(queries_path)) if q["gold"] and q["gold"][0] in solutions]
    questions = questions[:limit] if limit else questions
    settings_run = ("standard", "leave_one_out") if leave_one_out else ("standard",)
    dsn = with_database(settings.database_url, f"prs_bench_{uuid.uuid4().hex[:12]}")
    await ensure_database(dsn)
    node: NodeRun | None = None
    try:
        await migrate(dsn)
        with tempfile.TemporaryDirectory(prefix="prs-bench-dell-") as folder:
            work_dir = Path(folder)
            nodes = settings.llm_nodes
            if start_node:
                node = NodeRun(_free_port(), work_dir / "node", settings.ensure_data_dir())
                await node.start()
                nodes = node.url
            bench = settings.model_copy(update={"database_url": dsn, "data_dir": work_dir, "llm_nodes": nodes})
            pool = await create_pool(dsn, min_size=1, max_size=4)
            llm = LLMCluster(
                [u.strip() for u in nodes.split(",") if u.strip()],
                bench.llm_model,
                timeout_s=bench.llm_timeout_s,
                prompt_style=bench.llm_prompt_style,
            )
            try:
                encoder = Encoder(bench.embedding_model, batch_size=bench.embedding_batch_size)
                encoder.load()
                store = ChromaVectorStore.persistent(str(work_dir / "chroma"), bench.chroma_collection)
                knowledge = BulkLoadingKnowledge(bench, pool, encoder, store, SystemClock())
                ingest_started = time.perf_counter()
                knowledge.deferred = True
                for doc_id, text in solutions.items():
                    await knowledge.ingest_document(title=doc_id, filename=f"{doc_id}.txt", text=text)
                knowledge.deferred = False
                await knowledge._sync_best_effort()
                ingest_s = time.perf_counter() - ingest_started
                suggester = suggester_for(bench, llm)
                results: dict[str, list[Scored]] = {setting: [] for setting in settings_run}
                out = Path(out_path).open("w", encoding="utf-8") if out_path is not None else None
                try:
                    # Settings interleaved per question: a run cut short has the same questions in both.
                    for question in questions:
                        gold = question["gold"][0]
                        for setting in settings_run:
                            excluded = gold if setting == "leave_one_out" else None
                            scored, cases = await _suggest_one(
                                knowledge, suggester, bench, question, solutions[gold], excluded
                            )
                            results[setting].append(scored)
                            if out is not None:
                                out.write(_line(scored, setting, cases))
                                out.flush()
                finally:
                    if out is not None:
                        out.close()
            finally:
                await llm.aclose()
                await pool.close()
    finally:
        if node is not None:
            node.stop()
        await drop_database(dsn)
    summary = {"task": "dell", "setting": "standard"} | summarise(results["standard"])
    if leave_one_out:
        summary["leave_one_out"] = summarise(results["leave_one_out"])
    return summary | {"kb_size": len(solutions), "ingest_s": round(ingest_s, 1), "model": settings.llm_model}
