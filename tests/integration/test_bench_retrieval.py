"""`prs bench retrieval`, short: tiny files in the evaluation formats, through the product's own path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import asyncpg

from agent.adapt import AdaptationParams
from backend.config import Settings
from bench.retrieval import run_retrieval_bench
from tests.unit.test_adapt import corpus

FAULTS = (
    (
        "NameNode runs out of heap during block report",
        "GC overhead limit exceeded in the NameNode after a full block report.",
    ),
    ("DataNode volume failure is not detected", "A failed disk stays in service and writes to it time out."),
    ("Balancer moves blocks to a decommissioning node", "The balancer picks targets that are being decommissioned."),
)


def write_jsonl(path: Path, rows: list[dict], *, compress: bool = False) -> Path:
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as out:
            out.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jira_files(folder: Path) -> tuple[Path, Path]:
    records, queries = [], []
    for family, (summary, description) in enumerate(FAULTS):
        for report in range(3):
            key = f"HDFS-{family * 10 + report}"
            records.append(
                {
                    "key": key,
                    "project": "HDFS",
                    "created": f"201{family}-0{report + 1}-05T10:00:00.000+0000",
                    "resolved": f"201{family}-0{report + 1}-06T10:00:00.000+0000",
                    "priority": "Major",
                    "resolution": "Duplicate",
                    "components": ["namenode"],
                    "summary": summary if report == 0 else f"{summary} (seen again, report {report})",
                    "description": description,
                    "environment": "",
                    "resolution_text": "Fixed by the patch on the original report.",
                }
            )
        queries.append(
            {"query_key": f"HDFS-{family * 10 + 2}", "project": "HDFS", "created": "", "gold": [f"HDFS-{family * 10}"]}
        )
    return write_jsonl(folder / "kb.jsonl.gz", records, compress=True), write_jsonl(folder / "queries.jsonl", queries)


def dell_files(folder: Path) -> tuple[Path, Path]:
    answers = [
        "Update the iDRAC firmware first, then the BIOS; the server needs a cold boot afterwards.",
        "The PERC H310 does not support this drive: use a drive from the compatibility list.",
        "ESXi needs the Dell customised ISO to see the storage controller of the VRTX chassis.",
    ]
    questions = [
        "After a BIOS update the iDRAC firmware shows an error, what order should updates go in?",
        "My new SAS drive is not seen by the PERC H310 controller",
        "ESXi 6.5 on VRTX does not show the shared storage",
    ]
    solutions = [{"doc_id": f"doc_{n}", "text": text} for n, text in enumerate(answers)]
    asked = [{"query_id": f"q_{n}", "question": text, "gold": [f"doc_{n}"]} for n, text in enumerate(questions)]
    return write_jsonl(folder / "sol.jsonl.gz", solutions, compress=True), write_jsonl(folder / "q.jsonl", asked)


def plant_files(folder: Path) -> tuple[Path, list[dict]]:
    """A knowledge base large enough to adapt (70 plant notes) and 10 questions in the DellQA format:
    each the middle sentence of its answer, reworded around the part code."""
    texts = corpus(70)
    solutions = write_jsonl(
        folder / "sol.jsonl", [{"doc_id": f"doc_{n}", "text": text} for n, text in enumerate(texts)]
    )
    asked = [
        {"query_id": f"q_{n}", "question": f"Why does {texts[n].split('. ')[1].lower()}?", "gold": [f"doc_{n}"]}
        for n in range(0, 70, 7)
    ]
    return solutions, asked


async def scratch_databases(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return {
            r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'prs_bench_%'")
        }
    finally:
        await conn.close()


async def test_the_jira_bench_finds_each_duplicate_reports_both_settings_and_fits_on_halves(database_url, tmp_path):
    kb, queries = jira_files(tmp_path)
    before = await scratch_databases(database_url)
    result = await run_retrieval_bench(
        Settings(database_url=database_url, data_dir=tmp_path / "data"), "jira", kb, queries, fit=True, adapt=False
    )
    assert result["kb_size"] == 6  # the three query reports stay out of the knowledge base
    assert result["n"] == 3 and result["recall@10"] == 1.0
    assert result["all_areas"]["recall@10"] == 1.0
    fit = result["fit"]
    assert fit["kind"] == "incident"
    assert fit["product_weights"] == {"lexical": 1.04, "length": 0.44, "age": 1.26}
    assert fit["fit_even_scored_on_odd"]["fitted"]["n"] + fit["fit_odd_scored_on_even"]["fitted"]["n"] == 3
    assert set(fit["fit_on_all"]) == {"lexical", "length", "age"}
    assert await scratch_databases(database_url) <= before


async def test_the_dell_bench_answers_each_question_with_its_document(database_url, tmp_path):
    kb, queries = dell_files(tmp_path)
    result = await run_retrieval_bench(
        Settings(database_url=database_url, data_dir=tmp_path / "data"), "dell", kb, queries, fit=True, adapt=False
    )
    assert "unadapted" not in result and "adapt_s" not in result
    assert result["kb_size"] == 3 and result["n"] == 3
    assert result["recall@1"] == 1.0
    assert result["fit"]["kind"] == "document"
    assert result["ingest_per_s"] > 0 and result["encoder_per_s"] > 0


async def test_the_bench_adapts_the_encoder_after_the_ingest_and_reports_the_base_figures_beside(
    database_url, tmp_path
):
    solutions, asked = plant_files(tmp_path)
    questions = write_jsonl(tmp_path / "q.jsonl", asked)
    quick = AdaptationParams(max_steps=2)

    result = await run_retrieval_bench(
        Settings(database_url=database_url, data_dir=tmp_path / "data"), "dell", solutions, questions, adaptation=quick
    )

    assert result["adapt_steps"] == 2 and result["adapt_texts"] == 64 and result["adapt_s"] >= result["adapt_train_s"]
    assert result["n"] == 10 and result["unadapted"]["recall@10"] == 1.0 and result["recall@10"] == 1.0
    assert set(result["unadapted"]) >= {"recall@1", "recall@5", "recall@10", "mrr@10", "even_half", "odd_half"}


async def test_learning_scores_each_half_of_the_questions_with_an_encoder_adapted_on_the_other_halfs_matches(
    database_url, tmp_path
):
    solutions, asked = plant_files(tmp_path)
    asked.append({"query_id": "q_blank", "question": " ", "gold": ["doc_1"]})  # DellQA has one: nothing to learn
    questions = write_jsonl(tmp_path / "q.jsonl", asked)
    quick = AdaptationParams(max_steps=1, pair_epochs=1)

    result = await run_retrieval_bench(
        Settings(database_url=database_url, data_dir=tmp_path / "data"),
        "dell",
        solutions,
        questions,
        adapt=False,
        learn=True,
        fit=True,
        adaptation=quick,
    )

    # The even-numbered questions (6, one blank) are scored by the encoder that learned the 5 odd ones, and back.
    runs = result["learn"]["runs"]
    assert result["learn"]["folds"] == 2 and [run["pairs"] for run in runs] == [5, 5]
    assert all(run["adapt_steps"] == 2 and run["adapt_s"] >= run["adapt_train_s"] for run in runs)
    assert result["n"] == 11 and result["even_half"]["n"] == 6 and result["odd_half"]["n"] == 5
    assert result["recall@10"] == round(10 / 11, 4)  # every question but the blank one finds its answer
    assert "unsupervised" not in result and "p95_ms" in result
    # With fit, the ranking weights are also fit on each half's held-out scores and judged on the other
    # half's, beside the weights the product uses for an encoder that learned five matches.
    learned_fit = result["learn"]["fit"]
    assert learned_fit["fit_even_scored_on_odd"]["fitted"]["n"] == 5
    assert learned_fit["fit_odd_scored_on_even"]["fitted"]["n"] == 6
    assert learned_fit["product_weights"]["lexical"] < result["fit"]["product_weights"]["lexical"] == 0.8


async def test_learning_on_the_jira_task_uses_the_duplicates_of_the_other_half_in_both_settings(database_url, tmp_path):
    kb, queries = jira_files(tmp_path)
    tiny = AdaptationParams(max_steps=1, batch_size=2, warmup_steps=1, pair_epochs=1)

    result = await run_retrieval_bench(
        Settings(database_url=database_url, data_dir=tmp_path / "data"),
        "jira",
        kb,
        queries,
        adapt=True,
        learn=True,
        adaptation=tiny,
    )

    # Queries 0 and 2 are scored after learning query 1's duplicate, query 1 after learning theirs.
    assert [run["pairs"] for run in result["learn"]["runs"]] == [1, 2]
    assert result["n"] == 3 and result["all_areas"]["n"] == 3 and result["recall@10"] == 1.0
    assert result["unsupervised"]["recall@10"] == 1.0 and result["unadapted"]["recall@10"] == 1.0
