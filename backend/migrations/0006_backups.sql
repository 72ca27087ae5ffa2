-- Backups: one row per backup run (create, verify, prune, restore) for the admin API, metrics and alerts.
-- The backups themselves live in the object store; this table is the operational record of the runs.

CREATE TABLE backup_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operation    text NOT NULL CHECK (operation IN ('create', 'verify', 'prune', 'restore', 'anchor')),
    tier         text CHECK (tier IN ('hourly', 'daily', 'weekly', 'monthly')),
    backup_id    text,
    status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    trigger      text NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule', 'api', 'cli')),
    attempts     integer NOT NULL DEFAULT 1,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    duration_s   double precision,
    size_bytes   bigint,
    error        text,
    detail       jsonb
);
CREATE INDEX backup_runs_latest_idx ON backup_runs (operation, status, finished_at DESC);
CREATE INDEX backup_runs_started_idx ON backup_runs (started_at DESC, id DESC);
