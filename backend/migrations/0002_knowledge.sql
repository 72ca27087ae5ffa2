-- Knowledge base: documents, retrievable entries (resolved incidents and document chunks),
-- BM25 postings, and the vector ids waiting to be removed from the derived vector index.

CREATE TABLE knowledge_documents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title           text NOT NULL,
    filename        text NOT NULL,
    area            text REFERENCES areas (code),
    content         text NOT NULL,
    content_sha256  text NOT NULL,
    size_bytes      integer NOT NULL,
    chunk_count     integer NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX knowledge_documents_created_idx ON knowledge_documents (created_at DESC, id DESC);

CREATE TABLE knowledge_entries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('incident', 'document')),
    vector_id       text NOT NULL UNIQUE,
    area            text,
    title           text NOT NULL,
    body            text NOT NULL,
    heading         text NOT NULL DEFAULT '',
    category        text,
    resolution      text NOT NULL DEFAULT '',
    incident_id     bigint UNIQUE REFERENCES incidents (id) ON DELETE CASCADE,
    document_id     bigint REFERENCES knowledge_documents (id) ON DELETE CASCADE,
    chunk_index     integer,
    doc_length      integer NOT NULL,
    vector_synced   boolean NOT NULL DEFAULT false,
    source_created_at timestamptz NOT NULL,
    staged_at       timestamptz NOT NULL,
    CHECK ((kind = 'incident' AND incident_id IS NOT NULL AND document_id IS NULL)
        OR (kind = 'document' AND document_id IS NOT NULL AND chunk_index IS NOT NULL AND incident_id IS NULL)),
    UNIQUE (document_id, chunk_index)
);
CREATE INDEX knowledge_entries_unsynced_idx ON knowledge_entries (id) WHERE NOT vector_synced;

-- One row per (term, entry). kind, area and doc_length are copied from the entry so that a
-- BM25 query reads this table's index alone; area '' marks a document for every area.
CREATE TABLE knowledge_postings (
    term        text NOT NULL,
    entry_id    bigint NOT NULL REFERENCES knowledge_entries (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    area        text NOT NULL,
    tf          integer NOT NULL CHECK (tf > 0),
    doc_length  integer NOT NULL CHECK (doc_length > 0)
);
CREATE INDEX knowledge_postings_term_idx ON knowledge_postings (term, kind, area) INCLUDE (entry_id, tf, doc_length);
CREATE INDEX knowledge_postings_entry_idx ON knowledge_postings (entry_id);

-- BM25 collection statistics, kept in step with the postings in the same transactions: how many
-- entries of each kind and their total length, and each term's document frequency per kind.
CREATE TABLE knowledge_kind_stats (
    kind          text PRIMARY KEY CHECK (kind IN ('incident', 'document')),
    entries       bigint NOT NULL,
    total_length  bigint NOT NULL
);

CREATE TABLE knowledge_term_stats (
    term  text NOT NULL,
    kind  text NOT NULL,
    df    integer NOT NULL,
    PRIMARY KEY (term, kind)
);

-- Vector ids whose entry left the knowledge base (reopened incident, deleted document); the
-- vector sync removes them from the vector store and then these rows.
CREATE TABLE knowledge_vector_tombstones (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vector_id   text NOT NULL,
    created_at  timestamptz NOT NULL
);
