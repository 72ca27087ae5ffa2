"""Adapting the encoder to the knowledge base on a real Postgres, Chroma folder and model, and what a
process whose encoder differs from the index's does: lexical only, no vector written, nothing lost."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import pytest

from agent.adapt import AdaptationParams
from agent.embeddings import Encoder
from agent.retrieve import FusionParams
from agent.store import EncoderMismatch
from backend.errors import ValidationFailed
from backend.knowledge.schemas import ConfirmedMatch
from backend.knowledge.service import ENCODER_RECHECK_S, KnowledgeService
from tests.fixtures.knowledge import run_prs
from tests.unit.test_adapt import corpus

QUICK = AdaptationParams(epochs=2, max_steps=3, batch_size=16, learning_rate=5e-5, warmup_steps=1, max_tokens=64)


async def ingest_corpus(knowledge, texts: list[str]) -> list[int]:
    """The texts as documents 'Note <n>'; their ids in order."""
    documents = await knowledge.service.ingest_documents(
        [{"title": f"Note {n}", "filename": f"note-{n}.txt", "text": text} for n, text in enumerate(texts)]
    )
    return [document["id"] for document in documents]


async def index_encoder(knowledge) -> str | None:
    return await knowledge.fetchval("SELECT encoder FROM vector_index_state")


async def test_adapting_switches_the_service_and_rebuilds_the_index_with_the_adapted_encoder(knowledge, tmp_path):
    texts = corpus(40)
    await ingest_corpus(knowledge, texts)
    assert await index_encoder(knowledge) == knowledge.service.encoder.identity  # recorded by the first sync

    report = await knowledge.service.adapt_encoder(tmp_path / "adapted", QUICK)

    assert report["steps"] == 3 and report["texts"] == 40
    assert report["encoder"].startswith("adapted:") and knowledge.service.encoder.identity == report["encoder"]
    assert await index_encoder(knowledge) == report["encoder"]
    assert report["reindex"]["vectors"] == 40
    assert await knowledge.fetchval("SELECT count(*) FROM knowledge_entries WHERE NOT vector_synced") == 0
    hits = await knowledge.service.search(query=texts[7].split(". ")[0], area=None, limit=1, kinds=("document",))
    assert hits[0].title == "Note 7"


async def test_a_process_with_another_encoder_answers_lexically_writes_no_vector_and_loses_nothing(
    knowledge, tmp_path, encoder
):
    texts = corpus(40)
    await ingest_corpus(knowledge, texts)
    await knowledge.service.adapt_encoder(tmp_path / "adapted", QUICK)
    # A replica still running the base encoder (not restarted with PRS_EMBEDDING_MODEL yet).
    stale = KnowledgeService(
        knowledge.settings, knowledge.pool, encoder, knowledge.service.vector_store, knowledge.clock
    )

    state = await stale.check_encoder()
    assert state["matches"] is False and state["index_encoder"] == knowledge.service.encoder.identity
    assert stale.retriever.dense_paused
    code = texts[12].split()[3]
    assert (await stale.search(query=code, area=None, limit=1, kinds=("document",)))[0].title == "Note 12"

    # Its new document is kept in Postgres, and no vector of the wrong encoder reaches the store.
    before = await asyncio.to_thread(stale.vector_store.count)
    added = await stale.ingest_document(
        title="Late note", filename="late.txt", text=texts[0].replace("Cell 0", "Cell 99")
    )
    assert added["id"]
    with pytest.raises(EncoderMismatch):
        await stale.sync_pending_vectors()
    assert await knowledge.fetchval("SELECT count(*) FROM knowledge_entries WHERE NOT vector_synced") == 1
    assert await asyncio.to_thread(stale.vector_store.count) == before

    # The adapted process syncs it; a process with the adapted encoder agrees with the index.
    assert await knowledge.service.sync_pending_vectors() == 1
    restarted = KnowledgeService(
        knowledge.settings,
        knowledge.pool,
        Encoder(str(tmp_path / "adapted")),
        knowledge.service.vector_store,
        knowledge.clock,
    )
    assert (await restarted.check_encoder())["matches"] is True and restarted.retriever.dense_paused is None


async def test_a_running_process_notices_on_its_next_search_that_another_one_adapted_the_index(
    knowledge, tmp_path, encoder
):
    texts = corpus(40)
    await ingest_corpus(knowledge, texts)
    running = KnowledgeService(
        knowledge.settings, knowledge.pool, encoder, knowledge.service.vector_store, knowledge.clock
    )
    await running.search(query="press overcurrent", area=None, limit=3, kinds=("document",))
    assert running.retriever.dense_paused is None

    await knowledge.service.adapt_encoder(tmp_path / "adapted", QUICK)

    code = texts[5].split()[3]
    await running.search(query=code, area=None, limit=1, kinds=("document",))
    assert running.retriever.dense_paused is None  # looked less than ENCODER_RECHECK_S ago
    knowledge.clock.advance(seconds=ENCODER_RECHECK_S)
    hits = await running.search(query=code, area=None, limit=1, kinds=("document",))
    assert running.retriever.dense_paused and hits[0].title == "Note 5"


async def test_reindexing_with_the_base_encoder_rolls_the_adaptation_back(knowledge, tmp_path, encoder):
    await ingest_corpus(knowledge, corpus(40))
    await knowledge.service.adapt_encoder(tmp_path / "adapted", QUICK)
    base = KnowledgeService(
        knowledge.settings, knowledge.pool, encoder, knowledge.service.vector_store, knowledge.clock
    )
    assert (await base.check_encoder())["matches"] is False

    await base.reindex()

    assert await index_encoder(knowledge) == encoder.identity
    assert (await base.check_encoder())["matches"] is True and base.retriever.dense_paused is None
    assert (await knowledge.service.check_encoder())["matches"] is False


async def test_a_knowledge_base_too_small_to_adapt_is_refused_naming_it(knowledge, tmp_path):
    await ingest_corpus(knowledge, corpus(10))
    with pytest.raises(ValidationFailed) as refused:
        await knowledge.service.adapt_encoder(tmp_path / "adapted", QUICK)
    assert refused.value.field == "knowledge_base"
    assert not (tmp_path / "adapted").exists()
    assert await index_encoder(knowledge) == knowledge.service.encoder.identity


async def accept_suggestion(knowledge, report: str, *, documents: list[int], incidents: list[int]) -> None:
    """A reported incident whose suggestion, citing those documents and incidents, was accepted."""
    now = knowledge.clock.now()
    async with knowledge.pool.acquire() as conn:
        incident_id = await conn.fetchval(
            """INSERT INTO incidents (title, description, area, priority, status, created_at, updated_at)
               VALUES ($1, $2, 'maintenance', 'medium', 'in_progress', $3, $3) RETURNING id""",
            report.split(". ")[0],
            report,
            now,
        )
        await conn.execute(
            """INSERT INTO suggestions (incident_id, status, language, text, citations, document_citations,
                                        feedback, feedback_at, created_at, updated_at)
               VALUES ($1, 'ready', 'en', 'Check the feeder.', $2, $3, 'accepted', $4, $4, $4)""",
            incident_id,
            incidents,
            documents,
            now,
        )


async def test_adapting_learns_the_given_matches_and_the_accepted_suggestions_skipping_deleted_citations(
    knowledge, tmp_path
):
    documents = await ingest_corpus(knowledge, corpus(40))
    fixed = await knowledge.add_resolved_incident(
        title="Labeller skips labels",
        description="Labels skipped at speed",
        area="maintenance",
        resolution="New sensor",
    )
    await accept_suggestion(knowledge, "The filler doses short", documents=[documents[3], 999_999], incidents=[fixed])
    await accept_suggestion(knowledge, "Oven door alarm", documents=[], incidents=[])  # cites nothing: no pair
    given = [ConfirmedMatch(query="Cell 5 keeps stopping", document_id=documents[5])]

    report = await knowledge.service.adapt_encoder(tmp_path / "adapted", QUICK, matches=given)

    # The given match, then the accepted suggestion's document and incident; the deleted document is skipped.
    assert report["pairs"] == 3 and report["pairs_from_feedback"] == 2
    assert report["pair_steps"] == QUICK.pair_epochs and report["steps"] == QUICK.max_steps + QUICK.pair_epochs
    assert report["reindex"]["vectors"] == 41 and await index_encoder(knowledge) == report["encoder"]
    # The retriever ranks for an encoder that learned three matches: a little towards the learned weights.
    assert knowledge.service.retriever.params.weights == FusionParams().for_encoder(3).weights
    assert knowledge.service.retriever.params.weights != FusionParams().weights

    without_feedback = await knowledge.service.adapt_encoder(
        tmp_path / "adapted-again", QUICK, matches=given, from_feedback=False
    )
    assert without_feedback["pairs"] == 1 and without_feedback["pair_steps"] == 0  # one pair: nothing to contrast
    assert knowledge.service.retriever.params.weights == FusionParams().weights


async def test_a_confirmed_match_naming_a_missing_entry_is_refused_naming_it_and_nothing_changes(knowledge, tmp_path):
    documents = await ingest_corpus(knowledge, corpus(40))
    recorded = await index_encoder(knowledge)
    given = [
        ConfirmedMatch(query="Cell 5 keeps stopping", document_id=documents[5]),
        ConfirmedMatch(query="Cell 6 keeps stopping", incident_id=424_242),
    ]

    with pytest.raises(ValidationFailed) as refused:
        await knowledge.service.adapt_encoder(tmp_path / "adapted", QUICK, matches=given)

    assert refused.value.field == "matches[1].incident_id" and "424242" in refused.value.detail
    assert not (tmp_path / "adapted").exists() and await index_encoder(knowledge) == recorded

    too_many = AdaptationParams(**{**asdict(QUICK), "max_pairs": 1})
    with pytest.raises(ValidationFailed) as refused:
        await knowledge.service.adapt_encoder(tmp_path / "adapted", too_many, matches=given)
    assert refused.value.field == "matches" and "2 confirmed matches given; at most 1" in refused.value.detail
    assert not (tmp_path / "adapted").exists() and await index_encoder(knowledge) == recorded


async def test_prs_knowledge_adapt_adapts_reindexes_and_says_what_to_roll_out(knowledge, tmp_path):
    documents = await ingest_corpus(knowledge, corpus(70))
    out = tmp_path / "encoder"
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        json.dumps({"query": "Cell 5 keeps stopping", "document_id": documents[5]})
        + "\n\n"
        + json.dumps({"query": "Cell 9 jams every shift", "document_id": documents[9]})
        + "\n"
    )

    done = await run_prs(
        knowledge.settings,
        tmp_path / "data",
        "knowledge",
        "adapt",
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--pairs",
        str(pairs),
        "--pair-epochs",
        "1",
    )

    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # Two steps of 32 read a sample of 64 entries, then one step of the two pairs; the index is rebuilt whole.
    assert report["steps"] == 3 and report["texts"] == 64 and report["reindex"]["vectors"] == 70
    assert report["pairs"] == 2 and report["pair_steps"] == 1
    assert report["encoder"] == Encoder(str(out)).identity == await index_encoder(knowledge)
    assert f"PRS_EMBEDDING_MODEL={out}" in done.stderr


async def test_prs_knowledge_adapt_on_a_small_knowledge_base_exits_2_and_changes_nothing(knowledge, tmp_path):
    await ingest_corpus(knowledge, corpus(10))
    recorded = await index_encoder(knowledge)

    done = await run_prs(
        knowledge.settings, tmp_path / "data", "knowledge", "adapt", "--out", str(tmp_path / "encoder")
    )

    assert done.returncode == 2 and "error: adaptation needs at least 64 entries of 10 words" in done.stderr
    assert not (tmp_path / "encoder").exists() and await index_encoder(knowledge) == recorded


async def test_prs_knowledge_adapt_with_a_bad_pairs_line_exits_2_naming_the_line_and_field(knowledge, tmp_path):
    await ingest_corpus(knowledge, corpus(70))
    recorded = await index_encoder(knowledge)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        '{"query": "Cell 5 keeps stopping", "document_id": 1}\n{"query": "Cell 9", "document_id": "nine"}\n'
    )

    done = await run_prs(
        knowledge.settings,
        tmp_path / "data",
        "knowledge",
        "adapt",
        "--out",
        str(tmp_path / "out"),
        "--pairs",
        str(pairs),
    )

    assert done.returncode == 2 and "error: pairs.jsonl line 2: document_id:" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists() and await index_encoder(knowledge) == recorded


async def test_prs_knowledge_adapt_to_a_folder_it_cannot_write_exits_2_and_changes_nothing(knowledge, tmp_path):
    await ingest_corpus(knowledge, corpus(70))
    recorded = await index_encoder(knowledge)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    done = await run_prs(
        knowledge.settings,
        tmp_path / "data",
        "knowledge",
        "adapt",
        "--out",
        str(blocker / "encoder"),
        "--max-steps",
        "1",
    )

    assert done.returncode == 2 and "error: adapting the encoder failed, nothing changed" in done.stderr
    assert "Traceback" not in done.stderr
    assert await index_encoder(knowledge) == recorded
