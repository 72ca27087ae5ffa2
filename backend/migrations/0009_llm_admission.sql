-- Suggestions under load: the suggestions table is the queue of generation work, admitted to the LLM nodes
-- only through a free slot lease, so work waits here and never in a node's queue or an open HTTP request.

ALTER TABLE suggestions DROP CONSTRAINT IF EXISTS suggestions_status_check;
ALTER TABLE suggestions ADD CONSTRAINT suggestions_status_check
    CHECK (status IN ('pending', 'generating', 'ready', 'failed', 'skipped'));

-- 0 low, 1 medium, 2 high, 3 critical: the incident's priority when the suggestion was queued.
ALTER TABLE suggestions ADD COLUMN priority_rank smallint NOT NULL DEFAULT 1;
-- When the suggestion last (re)entered the queue; its age in line is measured from here.
ALTER TABLE suggestions ADD COLUMN queued_at timestamptz;
-- Someone has the suggestion open (an SSE stream) until then: it goes ahead of its priority.
ALTER TABLE suggestions ADD COLUMN watched_until timestamptz;

UPDATE suggestions s
   SET queued_at = s.created_at,
       priority_rank = CASE i.priority WHEN 'critical' THEN 3 WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END
  FROM incidents i
 WHERE i.id = s.incident_id;
ALTER TABLE suggestions ALTER COLUMN queued_at SET NOT NULL;
ALTER TABLE suggestions ALTER COLUMN queued_at SET DEFAULT now();

CREATE INDEX suggestions_queue_idx ON suggestions (priority_rank DESC, queued_at, incident_id)
    WHERE status = 'pending';

-- One row per parallel slot of each LLM node. A worker holds a slot while it generates on it; a lease that
-- runs out (a worker that died) frees the slot for any other worker.
CREATE TABLE llm_slots (
    node_url      text NOT NULL,
    slot          integer NOT NULL CHECK (slot >= 0),
    holder        text,
    incident_id   bigint,
    leased_until  timestamptz,
    started_at    timestamptz,
    PRIMARY KEY (node_url, slot)
);
