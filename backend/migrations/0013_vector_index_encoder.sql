-- Which encoder built the vectors in the store. Vectors of two encoders are not comparable: a
-- replica or worker whose encoder differs (an adapted encoder rolled out to some processes and
-- not yet to others) must neither query the store nor write to it. One row; written by the
-- first vector sync and by every reindex.
CREATE TABLE vector_index_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    encoder    text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
