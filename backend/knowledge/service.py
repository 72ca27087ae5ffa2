"""Knowledge base rules: staging resolved incidents, documents, imports, vector sync and retrieval.

Postgres holds every entry and its BM25 postings; the vector store is derived from it. Entries
are written with vector_synced = false inside the caller's transaction, and
sync_pending_vectors (after the commit, and periodically from the worker) embeds them and
upserts their vectors. Vector ids that must disappear are kept as tombstones until applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Sequence

import asyncpg

from agent.adapt import AdaptationParams, TrainingPair, base_model_of
from agent.adapt import adapt_encoder as adapt
from agent.chunking import chunk_document
from agent.embeddings import Encoder
from agent.lexical import tokenize
from agent.retrieve import EntryFacts, Retriever
from agent.store import EncoderMismatch, VectorStore, VectorStoreUnavailable
from agent.types import CaseForPrompt, ScoredEntry
from backend.clock import Clock
from backend.config import Settings
from backend.db import Connection, transaction
from backend.errors import Conflict, NotFound, PayloadTooLarge, ServiceUnavailable, ValidationFailed
from backend.knowledge import repository
from backend.knowledge.entries import (
    IndexDelta,
    document_chunk_entry,
    embedding_text,
    incident_entry,
    postings_rows,
    vector_metadata,
)
from backend.knowledge.ingest import Mapping, read_incidents
from backend.knowledge.schemas import ALL_KINDS, ConfirmedMatch, KnowledgeHit, SimilarIncident

log = logging.getLogger(__name__)

# BM25 parameters, tuned on the evaluation corpora (docs/knowledge.md); b = 0.9 beat 0.75 on both.
BM25_K1 = 1.2
BM25_B = 0.9
MAX_QUERY_TERMS = 32
# Postings read per query term (and kind and area), best first: bounds a query's work at any
# knowledge-base size; a term found in fewer entries is scored on all of them (docs/performance.md).
POSTINGS_PER_TERM = 2000
IMPORT_BATCH = 5000
REINDEX_PAGE = 2000
# Entries per encode call: large enough that sorting by length keeps padding low.
SYNC_BATCH = 512
DOCUMENT_BATCH = 200
# How long a sync waits for a bulk import to commit its next page before looking again.
STAGING_POLL_S = 0.2
# How stale a process's view of the index's encoder may get: another process may rebuild the index
# with an adapted encoder (prs knowledge adapt) at any time.
ENCODER_RECHECK_S = 30.0
TITLE_MAX_CHARS = 200


class PostgresLexicalIndex:
    """The retriever's lexical index: BM25 over knowledge_postings, scores divided by the query's bound."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        k1: float = BM25_K1,
        b: float = BM25_B,
        max_terms: int = MAX_QUERY_TERMS,
        postings_per_term: int = POSTINGS_PER_TERM,
    ):
        self.pool = pool
        self.k1 = k1
        self.b = b
        self.max_terms = max_terms
        self.postings_per_term = postings_per_term

    async def search(
        self, terms: list[str], *, k: int, area: str | None, kinds: Sequence[str]
    ) -> list[tuple[str, float]]:
        """(vector_id, BM25 / the most this query could score) best first."""
        async with self.pool.acquire() as conn:
            rows = await repository.bm25_search(
                conn,
                terms,
                area=area,
                kinds=kinds,
                limit=k,
                max_terms=self.max_terms,
                k1=self.k1,
                b=self.b,
                postings_per_term=self.postings_per_term,
            )
        return [(vector_id, score / bound if bound > 0 else 0.0) for vector_id, score, bound in rows]


class PostgresEntryCatalog:
    """The retriever's entry facts (length, date) for its ranking priors, in one round trip."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def facts(self, entry_ids: Sequence[str]) -> dict[str, EntryFacts]:
        """Facts of the entries that exist, by vector id."""
        async with self.pool.acquire() as conn:
            rows = await repository.entry_facts(conn, entry_ids)
        return {
            row["vector_id"]: EntryFacts(length=row["doc_length"], created_at=row["source_created_at"]) for row in rows
        }


class KnowledgeService:
    """The knowledge base: what is in it, how it is kept in step, and how it is searched."""

    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, encoder: Encoder, vector_store: VectorStore, clock: Clock
    ):
        self.settings = settings
        self.pool = pool
        self.encoder = encoder
        self.vector_store = vector_store
        self.clock = clock
        self.lexical_index = PostgresLexicalIndex(pool)
        self.retriever = Retriever(encoder, vector_store, self.lexical_index, PostgresEntryCatalog(pool))
        self.encoder_recheck_s = ENCODER_RECHECK_S
        self._encoder_checked_at: datetime | None = None

    # --- retrieval -----------------------------------------------------------------------------

    async def _hydrate(self, found: list[ScoredEntry]) -> list[tuple[ScoredEntry, asyncpg.Record]]:
        """Pair results with their entry rows; vectors whose entry is gone are dropped."""
        if not found:
            return []
        async with self.pool.acquire() as conn:
            rows = await repository.entries_by_vector_ids(conn, [entry.entry_id for entry in found])
        by_id = {row["vector_id"]: row for row in rows}
        return [(entry, by_id[entry.entry_id]) for entry in found if entry.entry_id in by_id]

    async def similar_incidents(
        self,
        *,
        text: str,
        area: str | None,
        limit: int,
        exclude_incident_id: int | None = None,
        reported_at: datetime | None = None,
    ) -> list[SimilarIncident]:
        """Resolved incidents closest to a text, best first, none under settings.similar_min_score.

        reported_at is when the text was reported (now unless given): incidents reported close to it
        rank higher, other things equal (agent/retrieve.py)."""
        found = await self._search(
            text,
            area=area,
            k=limit + (1 if exclude_incident_id is not None else 0),
            kinds=("incident",),
            min_score=self.settings.similar_min_score,
            at=reported_at or self.clock.now(),
        )
        similar = [
            SimilarIncident(
                incident_id=row["incident_id"],
                score=entry.score,
                title=row["title"],
                resolution=row["resolution"] or None,
                area=row["area"],
            )
            for entry, row in await self._hydrate(found)
            if row["incident_id"] != exclude_incident_id
        ]
        return similar[:limit]

    async def _search(self, text: str, **options: Any) -> list[ScoredEntry]:
        """The retriever's search, after re-reading which encoder built the index when the last look is
        older than encoder_recheck_s (one small query, at most that often)."""
        now = self.clock.now()
        if (
            self._encoder_checked_at is None
            or (now - self._encoder_checked_at).total_seconds() >= self.encoder_recheck_s
        ):
            self._encoder_checked_at = now
            try:
                await self.check_encoder()
            except Exception:  # noqa: BLE001 - a database outage is the search's to report, not this check's
                log.warning("could not read which encoder built the vector index", exc_info=True)
        return await self.retriever.search(text, **options)

    async def check_encoder(self) -> dict[str, Any]:
        """Compare this process's encoder with the one that built the vector index.

        On a mismatch (an adapted encoder rolled out to some processes only) this process answers
        from the lexical index alone and writes no vectors, until its encoder and the index agree
        again: vectors of two encoders are not comparable.
        """
        async with self.pool.acquire() as conn:
            recorded = await repository.vector_index_encoder(conn)
        mine = self.encoder.identity
        matches = recorded is None or recorded == mine
        self._pause_dense_unless(matches, recorded)
        return {"encoder": mine, "index_encoder": recorded, "matches": matches}

    def _pause_dense_unless(self, matches: bool, recorded: str | None) -> None:
        if matches:
            if self.retriever.dense_paused:
                log.warning("encoder and vector index agree again; dense retrieval resumed")
            self.retriever.dense_paused = None
            return
        reason = f"the vector index was built by {recorded}, this process runs {self.encoder.identity}"
        if self.retriever.dense_paused != reason:
            log.error("dense retrieval paused, lexical only: %s (set PRS_EMBEDDING_MODEL to match)", reason)
        self.retriever.dense_paused = reason

    async def warm_up(self) -> float:
        """Load the embedding model, check it against the index's and open the indexes with one
        throw-away search, so that the first incident after a start answers as fast as the rest;
        returns the seconds it took. Never raises."""
        started = time.perf_counter()
        try:
            await self._search("warm-up", area=None, k=1, kinds=ALL_KINDS, min_score=1.0)
        except Exception:  # noqa: BLE001 - a store that is down now is reported by /health/ready, not here
            log.warning("knowledge warm-up failed; the first search will load what it needs", exc_info=True)
        return time.perf_counter() - started

    async def retrieve_cases(self, *, text: str, area: str | None, limit: int) -> list[CaseForPrompt]:
        """Incidents and document chunks to ground an LLM suggestion, best first."""
        found = await self._search(
            text, area=area, k=limit, kinds=ALL_KINDS, min_score=self.settings.similar_min_score, at=self.clock.now()
        )
        cases = []
        for entry, row in await self._hydrate(found):
            if row["kind"] == "incident":
                cases.append(
                    CaseForPrompt(
                        incident_id=row["incident_id"],
                        document_title=None,
                        title=row["title"],
                        problem=row["body"],
                        solution=row["resolution"],
                        score=entry.score,
                    )
                )
            else:
                cases.append(
                    CaseForPrompt(
                        incident_id=None,
                        document_title=row["document_title"],
                        title=row["heading"] or row["document_title"],
                        problem=row["heading"],
                        solution=row["body"],
                        score=entry.score,
                        document_id=row["document_id"],
                    )
                )
        return cases

    async def search(
        self, *, query: str, area: str | None, limit: int, kinds: Sequence[str] = ALL_KINDS, min_score: float = 0.0
    ) -> list[KnowledgeHit]:
        """Knowledge search for people: incidents and documents, best first."""
        unknown = set(kinds) - set(ALL_KINDS)
        if unknown or not kinds:
            raise ValidationFailed(f"kinds must be among {', '.join(ALL_KINDS)}", field="kinds")
        found = await self._search(
            query, area=area, k=limit, kinds=tuple(kinds), min_score=min_score, at=self.clock.now()
        )
        return [
            KnowledgeHit(
                kind=row["kind"],
                entry_id=entry.entry_id,
                score=entry.score,
                dense_score=entry.dense_score,
                lexical_score=entry.lexical_score,
                title=row["title"],
                text=row["body"],
                resolution=row["resolution"],
                area=row["area"],
                incident_id=row["incident_id"],
                document_id=row["document_id"],
                document_title=row["document_title"],
                chunk_index=row["chunk_index"],
                heading=row["heading"],
            )
            for entry, row in await self._hydrate(found)
        ]

    # --- resolved incidents --------------------------------------------------------------------

    async def stage_incident(
        self,
        conn: Connection,
        *,
        incident_id: int,
        title: str,
        description: str,
        area: str,
        category: str | None,
        resolution: str | None,
        created_at: Any,
    ) -> None:
        """Write a resolved incident's entry and postings in the caller's transaction (vector pending)."""
        delta = IndexDelta()
        previous = await repository.incident_entry_id(conn, incident_id)
        if previous is not None:  # resolved again: the new text replaces the old entry
            await self._remove_entries(conn, [previous], delta)
        entry = incident_entry(
            incident_id=incident_id,
            title=title,
            description=description,
            area=area,
            category=category,
            resolution=resolution,
            created_at=created_at,
            staged_at=self.clock.now(),
        )
        await self._add_entries(conn, [entry], delta)
        await repository.apply_statistics(conn, delta.term_deltas(), delta.kind_deltas())

    async def unstage_incident(self, conn: Connection, incident_id: int) -> None:
        """Take a reopened incident out of the knowledge base in the caller's transaction."""
        entry_id = await repository.incident_entry_id(conn, incident_id)
        if entry_id is None:
            return
        delta = IndexDelta()
        vector_ids = await self._remove_entries(conn, [entry_id], delta)
        await repository.apply_statistics(conn, delta.term_deltas(), delta.kind_deltas())
        await repository.add_tombstones(conn, vector_ids, self.clock.now())

    async def _add_entries(self, conn: Connection, entries: list[dict[str, Any]], delta: IndexDelta) -> None:
        entry_ids = await repository.insert_entries(conn, entries)
        rows = [row for entry_id, entry in zip(entry_ids, entries) for row in postings_rows(entry_id, entry)]
        # In index order: consecutive rows land on the same index pages, which a bulk import then
        # writes once instead of evicting and reading back (a third faster at 20,000 entries).
        rows.sort()
        await repository.copy_postings(conn, rows)
        for entry in entries:
            delta.add_entry(entry)

    async def _remove_entries(self, conn: Connection, entry_ids: list[int], delta: IndexDelta) -> list[str]:
        delta.remove(*await repository.statistics_of_entries(conn, entry_ids))
        return await repository.delete_entries(conn, entry_ids)

    # --- vector index --------------------------------------------------------------------------

    async def sync_pending_vectors(self, limit: int = 500) -> int:
        """Embed and upsert up to `limit` pending entries and apply tombstones; how many were upserted."""
        async with self.pool.acquire() as conn:
            pending = await repository.pending_vector_entries(conn, limit)
        return await self._write_vectors(pending, await self._encode_entries(pending))

    async def _encode_entries(self, pending: list[asyncpg.Record]) -> Any:
        return await self.encoder.encode_async([embedding_text(row) for row in pending]) if pending else None

    async def _write_vectors(self, pending: list[asyncpg.Record], vectors: Any) -> int:
        """Upsert encoded entries that are still unsynced and mark them; apply tombstones first."""
        async with transaction(self.pool) as conn:
            # One writer at a time: the store then always reflects a committed state of Postgres.
            await repository.lock_vector_sync(conn)
            recorded = await repository.claim_vector_index_encoder(conn, self.encoder.identity)
            self._pause_dense_unless(recorded == self.encoder.identity, recorded)
            if self.retriever.dense_paused:
                raise EncoderMismatch(self.retriever.dense_paused)
            await self._apply_tombstones(conn)
            if not pending or vectors is None:
                return 0
            live = set(await repository.lock_unsynced_entries(conn, [row["id"] for row in pending]))
            keep = [index for index, row in enumerate(pending) if row["id"] in live]
            if keep:
                rows = [pending[index] for index in keep]
                await asyncio.to_thread(
                    self.vector_store.upsert,
                    [row["vector_id"] for row in rows],
                    vectors[keep],
                    [vector_metadata(row) for row in rows],
                )
                await repository.mark_vectors_synced(conn, [row["id"] for row in rows])
            return len(keep)

    async def _apply_tombstones(self, conn: Connection) -> None:
        while tombstones := await repository.pending_tombstones(conn, 1000):
            # A vector id taken back by a live entry (re-resolved incident) is upserted, not deleted.
            gone = [row["vector_id"] for row in tombstones if not row["reused"]]
            if gone:
                await asyncio.to_thread(self.vector_store.delete, gone)
            await repository.delete_tombstones(conn, [row["id"] for row in tombstones])

    async def _sync_all(self, batch: int | None = None, *, while_staging: asyncio.Future | None = None) -> int:
        """Sync every pending entry, encoding the next page while the current one is written.

        Pages follow the entry id, so each entry is read once; the encoder (torch, off the GIL) and
        the writes (Postgres, the vector store) overlap instead of taking turns. With while_staging,
        pages are taken as a bulk import commits them, until it is done.
        """
        total = 0
        batch = batch or SYNC_BATCH
        pending = await self._pending_page(0, batch, while_staging)
        encoding = asyncio.ensure_future(self._encode_entries(pending))
        try:
            while pending:
                vectors = await encoding
                following = await self._pending_page(pending[-1]["id"], batch, while_staging)
                encoding = asyncio.ensure_future(self._encode_entries(following))
                total += await self._write_vectors(pending, vectors)
                pending = following
        finally:
            await asyncio.gather(encoding, return_exceptions=True)  # never leave an encoding thread behind
        if total == 0:  # nothing was pending: the tombstones still apply
            await self._write_vectors([], None)
        return total

    async def _pending_page(self, after_id: int, batch: int, staging: asyncio.Future | None) -> list[asyncpg.Record]:
        """The next page of pending entries; empty only when none is left and staging (if any) has finished."""
        while True:
            finished = staging is None or staging.done()
            async with self.pool.acquire() as conn:
                page = await repository.pending_vector_entries(conn, batch, after_id=after_id)
            if page or finished or staging is None:
                return page
            await asyncio.wait([staging], timeout=STAGING_POLL_S)

    async def _sync_best_effort(self, *, while_staging: asyncio.Future | None = None) -> int:
        try:
            return await self._sync_all(while_staging=while_staging)
        except VectorStoreUnavailable:
            log.warning("vector store unavailable; the worker will sync the pending entries later", exc_info=True)
            return 0

    def use_encoder(self, encoder: Encoder) -> None:
        """Embed and query with `encoder` from now on (this process only)."""
        self.encoder = encoder
        self.retriever.use_encoder(encoder)

    async def adapt_encoder(
        self,
        model_dir: Path,
        params: AdaptationParams | None = None,
        *,
        matches: Sequence[ConfirmedMatch] = (),
        from_feedback: bool = True,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> dict[str, Any]:
        """Adapt the base encoder to this knowledge base (agent/adapt.py), save it in model_dir, switch
        this process to it and rebuild the vector index with it.

        Besides the entries themselves it learns the confirmed matches: `matches` (e.g. imported from
        a previous ticketing system) and, with from_feedback, the accepted suggestions (the incident's
        report against each incident and document the suggestion cited), at most params.max_pairs,
        the given ones first, then the most recently accepted. More given matches than that, or one
        naming an entry that does not exist, is refused (ValidationFailed naming it) before anything
        runs; an accepted suggestion whose citation was deleted since is skipped.

        Adapting an adapted encoder starts again from its base model. Other processes keep their
        encoder until restarted with PRS_EMBEDDING_MODEL=model_dir; meanwhile their dense retrieval
        is paused (check_encoder), never mixed with the new vectors.
        """
        params = params or AdaptationParams()
        async with self.pool.acquire() as conn:
            # Enough for every step, and never fewer than the two batches adapt_encoder needs.
            rows = await repository.sample_entry_texts(conn, max(2, params.max_steps) * params.batch_size)
            pairs, from_suggestions = await self._training_pairs(conn, matches, from_feedback, params.max_pairs)
        texts = [embedding_text(row) for row in rows]
        base = base_model_of(self.encoder.model_name_or_path)
        try:
            report = await asyncio.to_thread(adapt, base, texts, model_dir, params, pairs=pairs, progress=progress)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="knowledge_base") from exc
        adapted = Encoder(str(model_dir), batch_size=self.encoder.batch_size, device=self.encoder.device)
        adapted.load()
        self.use_encoder(adapted)
        return asdict(report) | {
            "pairs_from_feedback": from_suggestions,
            "encoder": adapted.identity,
            "reindex": await self.reindex(),
        }

    async def _training_pairs(
        self, conn: Connection, matches: Sequence[ConfirmedMatch], from_feedback: bool, limit: int
    ) -> tuple[list[TrainingPair], int]:
        """(report, entry text) pairs of the given matches, then of accepted suggestions, at most `limit`;
        and how many came from suggestions."""
        if len(matches) > limit:
            raise ValidationFailed(
                f"{len(matches)} confirmed matches given; at most {limit} are learned in one adaptation "
                "(raise max_pairs, --max-pairs, or give the most useful ones)",
                field="matches",
            )
        wanted: list[tuple[str, int | None, int | None, int | None]] = [
            (match.query, match.document_id, match.incident_id, position) for position, match in enumerate(matches)
        ]
        if from_feedback and len(wanted) < limit:
            for row in await repository.accepted_suggestion_matches(conn, limit):
                report = f"{row['title']}\n{row['description']}"
                wanted += [(report, document_id, None, None) for document_id in row["document_citations"]]
                wanted += [(report, None, incident_id, None) for incident_id in row["citations"]]
        wanted = wanted[:limit]
        entries = await repository.match_target_entries(
            conn,
            sorted({document_id for _, document_id, _, _ in wanted if document_id is not None}),
            sorted({incident_id for _, _, incident_id, _ in wanted if incident_id is not None}),
        )
        chunks: dict[int, list[str]] = {}
        incidents: dict[int, str] = {}
        for entry in entries:
            if entry["document_id"] is not None:
                chunks.setdefault(entry["document_id"], []).append(embedding_text(entry))
            else:
                incidents[entry["incident_id"]] = embedding_text(entry)
        pairs: list[TrainingPair] = []
        from_suggestions = 0
        for query, document_id, incident_id, position in wanted:
            if document_id is not None:
                passage = _best_chunk(query, chunks[document_id]) if document_id in chunks else None
            else:
                passage = incidents.get(incident_id) if incident_id is not None else None
            if passage is None:
                if position is not None:
                    field = "document_id" if document_id is not None else "incident_id"
                    raise ValidationFailed(
                        f"confirmed match {position + 1} names a {field.removesuffix('_id')} that is not in "
                        f"the knowledge base: {document_id or incident_id}",
                        field=f"matches[{position}].{field}",
                    )
                continue  # cited by a suggestion, deleted since
            pairs.append(TrainingPair(query=query, passage=passage))
            from_suggestions += position is None
        return pairs, from_suggestions

    async def reindex(self) -> dict[str, Any]:
        """Rebuild postings and the whole vector index from Postgres."""
        started = time.perf_counter()
        postings = 0
        async with transaction(self.pool) as conn:
            await repository.delete_all_postings(conn)
            after_id = 0
            while page := await repository.entries_after(conn, after_id, REINDEX_PAGE):
                rows, lengths = await asyncio.to_thread(_postings_of_page, page)
                await repository.copy_postings(conn, rows)
                await repository.set_entry_length(conn, lengths)
                postings += len(rows)
                after_id = page[-1]["id"]
            await repository.recompute_statistics(conn)
        try:
            async with transaction(self.pool) as conn:
                await repository.lock_vector_sync(conn)
                await asyncio.to_thread(self.vector_store.reset)
                await repository.set_vector_index_encoder(conn, self.encoder.identity)
                await repository.clear_tombstones(conn)
                entries = await repository.mark_all_vectors_unsynced(conn)
            vectors = await self._sync_all()
        except VectorStoreUnavailable as exc:
            raise ServiceUnavailable(f"cannot rebuild the vector index: {exc}") from exc
        async with self.pool.acquire() as conn:
            await repository.vacuum_knowledge_tables(conn)
        return {
            "entries": entries,
            "postings": postings,
            "vectors": vectors,
            "seconds": round(time.perf_counter() - started, 2),
        }

    @contextlib.asynccontextmanager
    async def bulk_import(self) -> AsyncIterator[None]:
        """Imports made inside this block write postings without the two ordered BM25 indexes, which are
        built once at its end (sorted, by Postgres's parallel workers) and the tables vacuumed.

        For large loads (an initial import, a migration from another tool): lexical search reads the
        postings without those indexes meanwhile, much slower. One bulk import at a time (Conflict
        otherwise). If the process dies inside the block, the worker builds the indexes again
        (recover_abandoned_bulk_import) as soon as the block's lock is gone.
        """
        async with self.pool.acquire() as guard:
            if not await repository.try_lock_bulk_import(guard):
                raise Conflict("another bulk import is running")
            try:
                async with guard.transaction():
                    await repository.build_deferred_indexes(guard)  # left by one that died
                async with guard.transaction():
                    await repository.defer_postings_indexes(guard, self.clock.now())
                try:
                    yield
                finally:
                    started = time.perf_counter()
                    async with guard.transaction():
                        built = await repository.build_deferred_indexes(guard)
                    await repository.vacuum_knowledge_tables(guard)
                    log.info(
                        "bulk import: indexes %s built and tables vacuumed in %.1f s",
                        built,
                        time.perf_counter() - started,
                    )
            finally:
                await repository.unlock_bulk_import(guard)

    async def recover_abandoned_bulk_import(self) -> list[str]:
        """Build the indexes a bulk import dropped if no bulk import is running any more; their names."""
        async with self.pool.acquire() as conn:
            if not await repository.deferred_index_names(conn):
                return []
            if not await repository.try_lock_bulk_import(conn):
                return []  # still running
            try:
                async with conn.transaction():
                    built = await repository.build_deferred_indexes(conn)
            finally:
                await repository.unlock_bulk_import(conn)
        if built:
            log.warning("built the BM25 indexes an interrupted bulk import had dropped: %s", built)
        return built

    async def status(self) -> dict[str, int]:
        """Entries per kind and vectors still pending."""
        async with self.pool.acquire() as conn:
            return await repository.count_entries(conn)

    # --- imports and documents -----------------------------------------------------------------

    async def ingest_incidents_jsonl(
        self, path: Path, *, create_areas: bool = True, mapping: Mapping = "prs", vacuum: bool = True
    ) -> dict[str, Any]:
        """Import past resolved incidents (closed, source 'import'); idempotent on their key."""
        started = time.perf_counter()
        records = await asyncio.to_thread(read_incidents, Path(path), mapping)
        report = await self.ingest_incident_records(records, create_areas=create_areas, vacuum=vacuum)
        return report | {"seconds": round(time.perf_counter() - started, 2)}

    async def ingest_incident_records(
        self, records: Sequence[dict[str, Any]], *, create_areas: bool = True, vacuum: bool = True
    ) -> dict[str, Any]:
        """Import parsed incident records (backend.knowledge.ingest's shape); idempotent on their key.

        vacuum=False leaves the knowledge tables' VACUUM (ANALYZE) to the caller, for a caller that
        imports many batches in a row and vacuums once at the end.
        """
        started = time.perf_counter()
        unique = list({record["external_ref"]: record for record in records}.values())
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            missing = sorted({record["area"] for record in unique} - await repository.area_codes(conn))
            if missing and not create_areas:
                raise ValidationFailed(f"unknown areas: {', '.join(missing)}", field="area")
            if missing:
                await repository.insert_areas(conn, missing, now)
        # Vectors are encoded while later pages are still being written: the encoder sets the pace.
        staging = asyncio.ensure_future(self._stage_imports(unique, now, vacuum=vacuum))
        try:
            vectors = await self._sync_best_effort(while_staging=staging)
        finally:
            inserted = await staging
        return {
            "read": len(records),
            "inserted": inserted,
            "already_imported": len(unique) - inserted,
            "vectors_synced": vectors,
            "seconds": round(time.perf_counter() - started, 2),
        }

    async def _stage_imports(self, unique: list[dict[str, Any]], now: Any, *, vacuum: bool = True) -> int:
        """Write imported incidents and their entries page by page (one transaction each); how many were new."""
        inserted = 0
        for start in range(0, len(unique), IMPORT_BATCH):
            batch = unique[start : start + IMPORT_BATCH]
            async with transaction(self.pool) as conn:
                rows = await repository.insert_imported_incidents(conn, batch)
                by_ref = {record["external_ref"]: record for record in batch}
                entries = await asyncio.to_thread(
                    lambda: [_imported_entry(row["id"], by_ref[row["external_ref"]], now) for row in rows]
                )
                delta = IndexDelta()
                await self._add_entries(conn, entries, delta)
                await repository.apply_statistics(conn, delta.term_deltas(), delta.kind_deltas())
            inserted += len(rows)
        if vacuum:
            async with self.pool.acquire() as conn:
                await repository.vacuum_knowledge_tables(conn)
        return inserted

    async def ingest_document(self, *, title: str, filename: str, text: str, area: str | None = None) -> dict[str, Any]:
        """Store a knowledge document, split it into chunks and index them."""
        return (await self.ingest_documents([{"title": title, "filename": filename, "text": text, "area": area}]))[0]

    async def ingest_documents(self, documents: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store many knowledge documents (title, filename, text, area) and index them in bulk.

        All are checked before any is written; each page of documents is one transaction, and
        their chunks are embedded in large batches while later pages are written.
        """
        prepared = [self._prepared_document(**document) for document in documents]
        areas = {document["area"] for document in prepared} - {None}
        if areas:
            async with self.pool.acquire() as conn:
                unknown = sorted(areas - await repository.area_codes(conn))
            if unknown:
                raise ValidationFailed(f"unknown area '{unknown[0]}'", field="area")
        stored: list[dict[str, Any]] = []
        # Chunks are encoded while later pages of documents are still being written.
        staging = asyncio.ensure_future(self._stage_documents(prepared, stored))
        try:
            await self._sync_best_effort(while_staging=staging)
        finally:
            await staging
        return stored

    async def _stage_documents(self, prepared: list[dict[str, Any]], stored: list[dict[str, Any]]) -> None:
        """Write checked documents and their chunk entries, one transaction per page; rows go to stored."""
        for start in range(0, len(prepared), DOCUMENT_BATCH):
            page = prepared[start : start + DOCUMENT_BATCH]
            now = self.clock.now()
            async with transaction(self.pool) as conn:
                delta = IndexDelta()
                entries: list[Any] = []
                for document in page:
                    chunks = document.pop("chunks")
                    row = await repository.insert_document(conn, document | {"created_at": now})
                    entries.extend(
                        document_chunk_entry(
                            document_id=row["id"],
                            document_title=document["title"],
                            area=document["area"],
                            chunk=chunk,
                            created_at=now,
                        )
                        for chunk in chunks
                    )
                    stored.append(dict(row))
                await self._add_entries(conn, entries, delta)
                await repository.apply_statistics(conn, delta.term_deltas(), delta.kind_deltas())

    def _prepared_document(self, *, title: str, filename: str, text: str, area: str | None = None) -> dict[str, Any]:
        """A document's row and chunks, or ValidationFailed / PayloadTooLarge naming the field."""
        title = title.strip()
        if not title or len(title) > TITLE_MAX_CHARS:
            raise ValidationFailed(f"title must have 1 to {TITLE_MAX_CHARS} characters", field="title")
        size = len(text.encode("utf-8"))
        if size > self.settings.document_max_bytes:
            raise PayloadTooLarge(
                f"document is {size} bytes; the limit is {self.settings.document_max_bytes}", field="file"
            )
        chunks = chunk_document(
            text, chunk_words=self.settings.chunk_words, overlap_words=self.settings.chunk_overlap_words
        )
        if not chunks:
            raise ValidationFailed("the document has no text", field="file")
        return {
            "title": title,
            "filename": filename,
            "area": area,
            "content": text,
            "content_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "size_bytes": size,
            "chunk_count": len(chunks),
            "chunks": chunks,
        }

    async def list_documents(self) -> list[dict[str, Any]]:
        """Every knowledge document, newest first."""
        async with self.pool.acquire() as conn:
            return [dict(row) for row in await repository.list_documents(conn)]

    async def delete_document(self, document_id: int) -> None:
        """Remove a document and its chunks from the knowledge base; NotFound if absent."""
        async with transaction(self.pool) as conn:
            delta = IndexDelta()
            vector_ids = await self._remove_entries(conn, await repository.document_entry_ids(conn, document_id), delta)
            if not await repository.delete_document(conn, document_id):
                raise NotFound(f"document {document_id} not found")
            await repository.apply_statistics(conn, delta.term_deltas(), delta.kind_deltas())
            await repository.add_tombstones(conn, vector_ids, self.clock.now())
        await self._sync_best_effort()


def _imported_entry(incident_id: int, record: dict[str, Any], now: Any) -> dict[str, Any]:
    return incident_entry(
        incident_id=incident_id,
        title=record["title"],
        description=record["description"],
        area=record["area"],
        category=record["category"],
        resolution=record["resolution"],
        created_at=record["created_at"],
        staged_at=now,
    )


def _best_chunk(query: str, chunks: list[str]) -> str:
    """The chunk of a document that shares the most distinct terms with the query (the first on a tie):
    the part of the document that answered it."""
    terms = set(tokenize(query))
    return max(chunks, key=lambda chunk: len(terms & set(tokenize(chunk))))


def _postings_of_page(page: list[asyncpg.Record]) -> tuple[list[tuple], list[tuple[int, int]]]:
    rows: list[tuple] = []
    lengths: list[tuple[int, int]] = []
    for entry in page:
        entry_rows = postings_rows(entry["id"], entry)
        rows.extend(entry_rows)
        lengths.append((entry["id"], entry_rows[0][5] if entry_rows else 0))
    return rows, lengths
