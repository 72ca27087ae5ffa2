-- Impact-ordered postings: a BM25 query reads each query term's postings best first and stops
-- after a fixed number, instead of scoring every entry that contains a frequent term. At a
-- million entries a common word has hundreds of thousands of postings; its most useful ones are
-- those where the word weighs most, which the impact column ranks.
--
-- impact is BM25's term-frequency part, tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg)),
-- up to the constant factor, with k1 = 1.2, b = 0.9 (the product's) and a fixed reference length
-- of 200 tokens: it only orders the reading; scores are computed exactly, with the live average
-- length, from tf and doc_length. entry_id breaks ties so that the cut is deterministic.
ALTER TABLE knowledge_postings
    ADD COLUMN impact real GENERATED ALWAYS AS (
        (tf::float8 / (tf::float8 + 1.2::float8 * (0.1::float8 + 0.9::float8 * doc_length::float8 / 200.0::float8)))::real
    ) STORED;

DROP INDEX knowledge_postings_term_idx;
-- Every area: a term's postings of one kind, best first.
CREATE INDEX knowledge_postings_impact_idx
    ON knowledge_postings (term, kind, impact DESC, entry_id) INCLUDE (tf, doc_length);
-- One area (and '' for documents of every area): the same order within the area.
CREATE INDEX knowledge_postings_area_impact_idx
    ON knowledge_postings (term, kind, area, impact DESC, entry_id) INCLUDE (tf, doc_length);

-- The postings' foreign key checked every posting row on insert (a fifth of a bulk import's time);
-- the only code that deletes entries deletes their postings first (repository.delete_entries).
ALTER TABLE knowledge_postings DROP CONSTRAINT knowledge_postings_entry_id_fkey;

-- A bulk import drops the two ordered indexes and builds them again at its end (a sorted build
-- instead of millions of random inserts). Their definitions wait here meanwhile, written in the
-- transaction that drops them: if the import dies, the next bulk import or `prs migrate` builds
-- them from here.
CREATE TABLE knowledge_deferred_indexes (
    name        text PRIMARY KEY,
    definition  text NOT NULL,
    deferred_at timestamptz NOT NULL
);
