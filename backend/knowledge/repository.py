"""SQL of the knowledge base: entries, BM25 postings, documents, vector-sync bookkeeping, imports."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence, cast

import asyncpg

from backend.db import Connection
from backend.sql import expect_row

# Any fixed 64-bit number; the same in every replica. Serialises writes to the vector store.
VECTOR_SYNC_LOCK_KEY = 0x505253_564543  # "PRS" "VEC"
# Held (session level) by the one bulk import that may run at a time.
BULK_IMPORT_LOCK_KEY = 0x505253_424C4B  # "PRS" "BLK"

POSTING_COLUMNS = ["term", "entry_id", "kind", "area", "tf", "doc_length"]


# --- entries and postings ----------------------------------------------------------------------


async def insert_entries(conn: Connection, entries: Sequence[dict[str, Any]]) -> list[int]:
    """Insert many entries in one statement; their ids, in input order."""
    if not entries:
        return []
    rows = await conn.fetch(
        """INSERT INTO knowledge_entries
               (kind, vector_id, area, title, body, heading, category, resolution, incident_id,
                document_id, chunk_index, doc_length, source_created_at, staged_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::integer[],
                                $12::integer[], $13::timestamptz[], $14::timestamptz[])
           RETURNING id, vector_id""",
        [e["kind"] for e in entries],
        [e["vector_id"] for e in entries],
        [e["area"] for e in entries],
        [e["title"] for e in entries],
        [e["body"] for e in entries],
        [e.get("heading", "") for e in entries],
        [e.get("category") for e in entries],
        [e.get("resolution", "") for e in entries],
        [e.get("incident_id") for e in entries],
        [e.get("document_id") for e in entries],
        [e.get("chunk_index") for e in entries],
        [e["doc_length"] for e in entries],
        [e["source_created_at"] for e in entries],
        [e["staged_at"] for e in entries],
    )
    by_vector_id = {row["vector_id"]: row["id"] for row in rows}
    return [by_vector_id[e["vector_id"]] for e in entries]


async def copy_postings(conn: Connection, rows: Sequence[tuple[str, int, str, str, int, int]]) -> None:
    """Bulk-write postings rows (term, entry_id, kind, area, tf, doc_length) with COPY."""
    if rows:
        await conn.copy_records_to_table("knowledge_postings", records=rows, columns=POSTING_COLUMNS)


async def incident_entry_id(conn: Connection, incident_id: int) -> int | None:
    """Id of a resolved incident's entry, locked for this transaction; None when it has none."""
    return cast(
        int | None,
        await conn.fetchval("SELECT id FROM knowledge_entries WHERE incident_id = $1 FOR UPDATE", incident_id),
    )


async def document_entry_ids(conn: Connection, document_id: int) -> list[int]:
    """Ids of a document's chunk entries, locked for this transaction."""
    rows = await conn.fetch(
        "SELECT id FROM knowledge_entries WHERE document_id = $1 ORDER BY id FOR UPDATE", document_id
    )
    return [row["id"] for row in rows]


async def delete_entries(conn: Connection, entry_ids: Sequence[int]) -> list[str]:
    """Delete entries and their postings; their vector ids."""
    await conn.execute("DELETE FROM knowledge_postings WHERE entry_id = ANY($1::bigint[])", list(entry_ids))
    rows = await conn.fetch(
        "DELETE FROM knowledge_entries WHERE id = ANY($1::bigint[]) RETURNING vector_id", list(entry_ids)
    )
    return [row["vector_id"] for row in rows]


async def add_tombstones(conn: Connection, vector_ids: Sequence[str], now: datetime) -> None:
    """Record vector ids that must leave the vector store."""
    if vector_ids:
        await conn.execute(
            "INSERT INTO knowledge_vector_tombstones (vector_id, created_at) SELECT unnest($1::text[]), $2",
            list(vector_ids),
            now,
        )


async def entries_by_vector_ids(conn: Connection, vector_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Entries with these vector ids, with their document's title for chunks."""
    return await conn.fetch(
        """SELECT e.id, e.kind, e.vector_id, e.area, e.title, e.body, e.heading, e.resolution,
                  e.incident_id, e.document_id, e.chunk_index, d.title AS document_title
           FROM knowledge_entries e
           LEFT JOIN knowledge_documents d ON d.id = e.document_id
           WHERE e.vector_id = ANY($1::text[])""",
        list(vector_ids),
    )


async def entry_facts(conn: Connection, vector_ids: Sequence[str]) -> list[asyncpg.Record]:
    """(vector_id, doc_length, source_created_at) of the entries with these vector ids: what ranking needs."""
    return await conn.fetch(
        """SELECT vector_id, doc_length, source_created_at FROM knowledge_entries
           WHERE vector_id = ANY($1::text[])""",
        list(vector_ids),
    )


async def count_entries(conn: Connection) -> dict[str, int]:
    """Entries per kind, and how many still wait for their vector."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE kind = 'incident') AS incidents,
                  count(*) FILTER (WHERE kind = 'document') AS document_chunks,
                  count(*) FILTER (WHERE NOT vector_synced) AS vectors_pending
           FROM knowledge_entries"""
    )
    return dict(expect_row(row))


# --- BM25 --------------------------------------------------------------------------------------


async def bm25_search(
    conn: Connection,
    terms: Sequence[str],
    *,
    area: str | None,
    kinds: Sequence[str],
    limit: int,
    max_terms: int,
    k1: float,
    b: float,
    postings_per_term: int,
) -> list[tuple[str, float, float]]:
    """Okapi BM25 over the postings: (vector_id, score, query_bound) best first.

    Statistics (entry count, average length, document frequency) are global over the kinds
    searched; the area only filters the results (documents without an area match every area).
    query_bound is the most any entry could score for this query (every term's idf * (k1 + 1)).
    A repeated query term counts as often as it occurs. Only the max_terms query terms of
    highest qtf * idf are scored, which keeps long incident descriptions fast.

    Each term's postings are read best first (by impact, migration 0012) and at most
    postings_per_term of them per kind and area: a term rarer than that is scored exactly on
    every entry that has it; a frequent one (low idf) only where it weighs most, so a query costs
    at most max_terms * postings_per_term index rows however large the knowledge base grows.
    """
    # Two fixed variants, so that the area is an index condition when given ('' = every area).
    if area is None:
        areas, area_join, area_filter = None, "", "AND $2::text[] IS NULL"
    else:
        areas, area_join, area_filter = [area, ""], "CROSS JOIN unnest($2::text[]) AS a(area)", "AND p.area = a.area"
    rows = await conn.fetch(
        f"""WITH query_terms AS (
               SELECT term, count(*)::float8 AS qtf FROM unnest($1::text[]) AS term GROUP BY term
           ),
           collection AS (
               SELECT coalesce(sum(entries), 0)::float8 AS entries,
                      greatest(coalesce(sum(total_length), 0)::float8 / greatest(sum(entries), 1), 1) AS avg_length
               FROM knowledge_kind_stats WHERE kind = ANY($3::text[])
           ),
           term_stats AS (
               SELECT q.term, q.qtf, ln(1 + (c.entries - d.df + 0.5) / (d.df + 0.5)) AS idf
               FROM query_terms q
               CROSS JOIN collection c
               JOIN (SELECT term, sum(df)::float8 AS df FROM knowledge_term_stats
                     WHERE term = ANY($1::text[]) AND kind = ANY($3::text[]) GROUP BY term) d USING (term)
               WHERE d.df > 0
           ),
           weighted_terms AS (
               SELECT term, qtf, idf FROM term_stats ORDER BY qtf * idf DESC, term LIMIT $5::integer
           ),
           scored AS (
               SELECT p.entry_id,
                      sum(w.qtf * w.idf * p.tf * ($6::float8 + 1)
                          / (p.tf + $6::float8 * (1 - $7::float8 + $7::float8 * p.doc_length / c.avg_length))) AS score
               FROM weighted_terms w
               CROSS JOIN unnest($3::text[]) AS k(kind)
               {area_join}
               CROSS JOIN LATERAL (
                   SELECT p.entry_id, p.tf, p.doc_length FROM knowledge_postings p
                   WHERE p.term = w.term AND p.kind = k.kind {area_filter}
                   ORDER BY p.impact DESC, p.entry_id
                   LIMIT $8::integer
               ) p
               CROSS JOIN collection c
               GROUP BY p.entry_id
               ORDER BY score DESC, p.entry_id
               LIMIT $4::integer
           )
           SELECT e.vector_id, s.score, (SELECT sum(qtf * idf) * ($6::float8 + 1) FROM weighted_terms) AS bound
           FROM scored s JOIN knowledge_entries e ON e.id = s.entry_id
           ORDER BY s.score DESC, s.entry_id""",
        list(terms),
        areas,
        list(kinds),
        limit,
        max_terms,
        float(k1),
        float(b),
        postings_per_term,
    )
    return [(row["vector_id"], float(row["score"]), float(row["bound"])) for row in rows]


# --- BM25 statistics ---------------------------------------------------------------------------


async def statistics_of_entries(
    conn: Connection, entry_ids: Sequence[int]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What these entries add to the statistics: (term, kind, entries) and (kind, entries, total_length)."""
    terms = await conn.fetch(
        """SELECT term, kind, count(*)::integer AS entries FROM knowledge_postings
           WHERE entry_id = ANY($1::bigint[]) GROUP BY term, kind""",
        list(entry_ids),
    )
    kinds = await conn.fetch(
        """SELECT kind, count(*)::integer AS entries, sum(doc_length)::bigint AS total_length
           FROM knowledge_entries WHERE id = ANY($1::bigint[]) GROUP BY kind""",
        list(entry_ids),
    )
    return [tuple(row) for row in terms], [tuple(row) for row in kinds]


async def apply_statistics(
    conn: Connection, term_deltas: Sequence[tuple[str, str, int]], kind_deltas: Sequence[tuple[str, int, int]]
) -> None:
    """Add (term, kind, df change) and (kind, entries change, length change) to the statistics.

    Rows are locked in (term, kind) order, then the kind rows: call once per transaction so that
    concurrent transactions always lock in the same order and cannot deadlock.
    """
    if term_deltas:
        await conn.execute(
            """INSERT INTO knowledge_term_stats AS s (term, kind, df)
               SELECT term, kind, delta FROM unnest($1::text[], $2::text[], $3::integer[]) AS d(term, kind, delta)
               ORDER BY term, kind
               ON CONFLICT (term, kind) DO UPDATE SET df = s.df + EXCLUDED.df""",
            [t for t, _, _ in term_deltas],
            [k for _, k, _ in term_deltas],
            [d for _, _, d in term_deltas],
        )
    for kind, entries, total_length in sorted(kind_deltas):
        await conn.execute(
            """INSERT INTO knowledge_kind_stats AS k (kind, entries, total_length) VALUES ($1, $2, $3)
               ON CONFLICT (kind) DO UPDATE
               SET entries = k.entries + EXCLUDED.entries, total_length = k.total_length + EXCLUDED.total_length""",
            kind,
            entries,
            total_length,
        )


async def recompute_statistics(conn: Connection) -> None:
    """Rebuild the statistics from the postings and entries (after a reindex)."""
    await conn.execute("DELETE FROM knowledge_term_stats")
    await conn.execute(
        """INSERT INTO knowledge_term_stats (term, kind, df)
           SELECT term, kind, count(*) FROM knowledge_postings GROUP BY term, kind ORDER BY term, kind"""
    )
    await conn.execute("DELETE FROM knowledge_kind_stats")
    await conn.execute(
        """INSERT INTO knowledge_kind_stats (kind, entries, total_length)
           SELECT kind, count(*), sum(doc_length) FROM knowledge_entries GROUP BY kind ORDER BY kind"""
    )


# --- vector sync -------------------------------------------------------------------------------


async def lock_vector_sync(conn: Connection) -> None:
    """Wait for the vector-sync lock, held until the current transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", VECTOR_SYNC_LOCK_KEY)


async def pending_vector_entries(conn: Connection, limit: int, *, after_id: int = 0) -> list[asyncpg.Record]:
    """Entries whose vector is not in the store yet, by id from after_id on, with their document title."""
    return await conn.fetch(
        """SELECT e.id, e.kind, e.vector_id, e.area, e.title, e.body, e.heading, e.incident_id,
                  e.document_id, e.chunk_index, d.title AS document_title
           FROM knowledge_entries e
           LEFT JOIN knowledge_documents d ON d.id = e.document_id
           WHERE NOT e.vector_synced AND e.id > $2
           ORDER BY e.id
           LIMIT $1""",
        limit,
        after_id,
    )


async def lock_unsynced_entries(conn: Connection, entry_ids: Sequence[int]) -> list[int]:
    """Of these entries, lock and return those that still exist and still wait for a vector."""
    rows = await conn.fetch(
        """SELECT id FROM knowledge_entries
           WHERE id = ANY($1::bigint[]) AND NOT vector_synced
           ORDER BY id FOR UPDATE""",
        list(entry_ids),
    )
    return [row["id"] for row in rows]


async def mark_vectors_synced(conn: Connection, entry_ids: Sequence[int]) -> None:
    """Record that these entries' vectors are in the store."""
    await conn.execute(
        "UPDATE knowledge_entries SET vector_synced = true WHERE id = ANY($1::bigint[])", list(entry_ids)
    )


async def claim_vector_index_encoder(conn: Connection, encoder: str) -> str:
    """The encoder recorded for the vector index, recording `encoder` first if none is."""
    recorded = await conn.fetchval(
        """INSERT INTO vector_index_state (encoder) VALUES ($1)
           ON CONFLICT (singleton) DO UPDATE SET encoder = vector_index_state.encoder
           RETURNING encoder""",
        encoder,
    )
    return str(recorded)


async def vector_index_encoder(conn: Connection) -> str | None:
    """The encoder that built the vector index, or None before the first sync."""
    encoder = await conn.fetchval("SELECT encoder FROM vector_index_state")
    return None if encoder is None else str(encoder)


async def set_vector_index_encoder(conn: Connection, encoder: str) -> None:
    """Record the encoder of a rebuilt vector index."""
    await conn.execute(
        """INSERT INTO vector_index_state (encoder) VALUES ($1)
           ON CONFLICT (singleton) DO UPDATE SET encoder = EXCLUDED.encoder, updated_at = now()""",
        encoder,
    )


async def mark_all_vectors_unsynced(conn: Connection) -> int:
    """Mark every entry as waiting for its vector (before a rebuild); return how many."""
    status = await conn.execute("UPDATE knowledge_entries SET vector_synced = false")
    return int(status.split()[-1])


async def pending_tombstones(conn: Connection, limit: int) -> list[asyncpg.Record]:
    """Tombstones to apply, with whether a live entry took the vector id back meanwhile."""
    return await conn.fetch(
        """SELECT t.id, t.vector_id,
                  EXISTS (SELECT 1 FROM knowledge_entries e WHERE e.vector_id = t.vector_id) AS reused
           FROM knowledge_vector_tombstones t
           ORDER BY t.id
           LIMIT $1""",
        limit,
    )


async def delete_tombstones(conn: Connection, tombstone_ids: Sequence[int]) -> None:
    """Forget applied tombstones."""
    await conn.execute("DELETE FROM knowledge_vector_tombstones WHERE id = ANY($1::bigint[])", list(tombstone_ids))


async def clear_tombstones(conn: Connection) -> None:
    """Forget every tombstone (the vector store is being rebuilt from scratch)."""
    await conn.execute("DELETE FROM knowledge_vector_tombstones")


# --- rebuilding postings -----------------------------------------------------------------------


async def delete_all_postings(conn: Connection) -> None:
    """Empty the postings table (DELETE, not TRUNCATE: searches keep reading the old rows meanwhile)."""
    await conn.execute("DELETE FROM knowledge_postings")


async def entries_after(conn: Connection, after_id: int, limit: int) -> list[asyncpg.Record]:
    """A page of entries by id, with the text their postings come from."""
    return await conn.fetch(
        """SELECT id, kind, area, title, body, heading, resolution FROM knowledge_entries
           WHERE id > $1 ORDER BY id LIMIT $2""",
        after_id,
        limit,
    )


async def sample_entry_texts(conn: Connection, limit: int) -> list[asyncpg.Record]:
    """Up to `limit` entries spread over the knowledge base, in a fixed pseudo-random order (the hash
    of their vector id), with the fields the encoder reads."""
    return await conn.fetch(
        """SELECT kind, title, body, heading FROM knowledge_entries ORDER BY md5(vector_id) LIMIT $1""",
        limit,
    )


async def match_target_entries(
    conn: Connection, document_ids: Sequence[int], incident_ids: Sequence[int]
) -> list[asyncpg.Record]:
    """The entries of those documents (every chunk, in order) and incidents, with the fields the encoder reads."""
    return await conn.fetch(
        """SELECT kind, title, body, heading, document_id, incident_id FROM knowledge_entries
           WHERE document_id = ANY($1::bigint[]) OR incident_id = ANY($2::bigint[])
           ORDER BY document_id NULLS LAST, chunk_index, incident_id""",
        list(document_ids),
        list(incident_ids),
    )


async def accepted_suggestion_matches(conn: Connection, limit: int) -> list[asyncpg.Record]:
    """The most recent accepted suggestions that cite something: the incident's report and what was cited."""
    return await conn.fetch(
        """SELECT i.title, i.description, s.citations, s.document_citations
           FROM suggestions s JOIN incidents i ON i.id = s.incident_id
           WHERE s.feedback = 'accepted'
             AND (cardinality(s.citations) > 0 OR cardinality(s.document_citations) > 0)
           ORDER BY s.feedback_at DESC, s.incident_id DESC LIMIT $1""",
        limit,
    )


async def set_entry_length(conn: Connection, lengths: Sequence[tuple[int, int]]) -> None:
    """Store recomputed token counts as (entry_id, doc_length)."""
    await conn.executemany("UPDATE knowledge_entries SET doc_length = $2 WHERE id = $1", lengths)


async def vacuum_knowledge_tables(conn: Connection) -> None:
    """After a bulk load: planner statistics, and a visibility map so BM25 reads its index only.

    VACUUM cannot run inside a transaction: call on a connection outside one.
    """
    await conn.execute("VACUUM (ANALYZE) knowledge_entries, knowledge_postings, knowledge_term_stats")


# --- bulk imports ------------------------------------------------------------------------------

# Indexes a bulk import may drop and build again at its end; knowledge_postings_entry_idx stays
# (deletes need it, and its keys arrive in order anyway).
DEFERRABLE_INDEXES = ("knowledge_postings_impact_idx", "knowledge_postings_area_impact_idx")


async def defer_postings_indexes(conn: Connection, now: datetime) -> list[str]:
    """Save the ordered postings indexes' definitions and drop the indexes; the names dropped.

    Call inside a transaction, so that the definitions are saved if and only if the drop commits.
    """
    rows = await conn.fetch(
        """INSERT INTO knowledge_deferred_indexes (name, definition, deferred_at)
           SELECT name, pg_get_indexdef(to_regclass(name)), $2 FROM unnest($1::text[]) AS name
           WHERE to_regclass(name) IS NOT NULL
           ON CONFLICT (name) DO NOTHING
           RETURNING name""",
        list(DEFERRABLE_INDEXES),
        now,
    )
    names = [row["name"] for row in rows]
    for name in names:
        await conn.execute(f'DROP INDEX "{name}"')  # a name of DEFERRABLE_INDEXES, not input
    return names


async def build_deferred_indexes(conn: Connection, *, maintenance_work_mem: str = "512MB") -> list[str]:
    """Build every index a bulk import deferred and forget its definition; the names built.

    Call inside a transaction (the memory setting is local to it); Postgres sorts with its parallel
    maintenance workers.
    """
    await conn.execute("SELECT set_config('maintenance_work_mem', $1, true)", maintenance_work_mem)
    rows = await conn.fetch("SELECT name, definition FROM knowledge_deferred_indexes ORDER BY name FOR UPDATE")
    for row in rows:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", row["name"]):
            await conn.execute(row["definition"])  # as pg_get_indexdef wrote it
        await conn.execute("DELETE FROM knowledge_deferred_indexes WHERE name = $1", row["name"])
    return [row["name"] for row in rows]


async def try_lock_bulk_import(conn: Connection) -> bool:
    """Take the bulk-import lock for this connection's session; False when another session holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", BULK_IMPORT_LOCK_KEY))


async def unlock_bulk_import(conn: Connection) -> None:
    """Release the bulk-import lock taken by try_lock_bulk_import."""
    await conn.execute("SELECT pg_advisory_unlock($1)", BULK_IMPORT_LOCK_KEY)


async def deferred_index_names(conn: Connection) -> list[str]:
    """Indexes dropped by a bulk import and not built again yet."""
    return [row["name"] for row in await conn.fetch("SELECT name FROM knowledge_deferred_indexes ORDER BY name")]


# --- documents ---------------------------------------------------------------------------------

DOCUMENT_COLUMNS = "id, title, filename, area, content_sha256, size_bytes, chunk_count, created_at"


async def insert_document(conn: Connection, document: dict[str, Any]) -> asyncpg.Record:
    """Store a knowledge document's text and return its row (without the text)."""
    return expect_row(
        await conn.fetchrow(
            f"""INSERT INTO knowledge_documents
                (title, filename, area, content, content_sha256, size_bytes, chunk_count, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            RETURNING {DOCUMENT_COLUMNS}""",
            document["title"],
            document["filename"],
            document["area"],
            document["content"],
            document["content_sha256"],
            document["size_bytes"],
            document["chunk_count"],
            document["created_at"],
        )
    )


async def list_documents(conn: Connection) -> list[asyncpg.Record]:
    """Every knowledge document, newest first, without its text."""
    return await conn.fetch(f"SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents ORDER BY created_at DESC, id DESC")


async def delete_document(conn: Connection, document_id: int) -> bool:
    """Delete a document (its entries cascade); False when it did not exist."""
    deleted = await conn.fetchval("DELETE FROM knowledge_documents WHERE id = $1 RETURNING id", document_id)
    return deleted is not None


# --- areas and imported incidents --------------------------------------------------------------


async def area_codes(conn: Connection) -> set[str]:
    """Codes of the known areas."""
    return {row["code"] for row in await conn.fetch("SELECT code FROM areas")}


async def insert_areas(conn: Connection, codes: Sequence[str], now: datetime) -> None:
    """Create areas named by their code; existing ones are left alone."""
    await conn.execute(
        """INSERT INTO areas (code, name, created_at) SELECT code, code, $2 FROM unnest($1::text[]) AS code
           ON CONFLICT (code) DO NOTHING""",
        list(codes),
        now,
    )


# Tags travel as one string per incident (asyncpg cannot bind ragged arrays); ingest strips it from tags.
TAG_SEPARATOR = "\x1f"


async def insert_imported_incidents(conn: Connection, incidents: Sequence[dict[str, Any]]) -> list[asyncpg.Record]:
    """Insert closed incidents from an import; those whose key was imported before are skipped.

    Returns (id, external_ref) of the rows inserted now.
    """
    return await conn.fetch(
        """INSERT INTO incidents
               (title, description, area, priority, status, category, reporter_name, external_ref, tags,
                resolution, source, created_at, updated_at, resolved_at, closed_at)
           SELECT title, description, area, priority, 'closed', category, 'import', external_ref,
                  string_to_array(tags, E'\\x1f'), resolution, 'import',
                  created_at, resolved_at, resolved_at, resolved_at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::text[], $9::timestamptz[], $10::timestamptz[])
                AS _(title, description, area, priority, category, external_ref, tags, resolution,
                     created_at, resolved_at)
           ON CONFLICT (external_ref) WHERE source = 'import' DO NOTHING
           RETURNING id, external_ref""",
        [i["title"] for i in incidents],
        [i["description"] for i in incidents],
        [i["area"] for i in incidents],
        [i["priority"] for i in incidents],
        [i["category"] for i in incidents],
        [i["external_ref"] for i in incidents],
        [TAG_SEPARATOR.join(i["tags"]) for i in incidents],
        [i["resolution"] for i in incidents],
        [i["created_at"] for i in incidents],
        [i["resolved_at"] for i in incidents],
    )
