-- Alertmanager alerts that became incidents: one row per incident, found again by the alert's fingerprint while
-- the incident stays open, so a repeated notification adds nothing. See docs/observability.md.

CREATE TABLE alert_incidents (
    incident_id   bigint PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    fingerprint   text NOT NULL CHECK (length(fingerprint) BETWEEN 1 AND 128),
    alertname     text NOT NULL,
    labels        jsonb NOT NULL,
    annotations   jsonb NOT NULL,
    starts_at     timestamptz,
    ends_at       timestamptz,         -- set by the first `resolved` notification
    generator_url text,
    received_at   timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    notifications integer NOT NULL DEFAULT 1
);
CREATE INDEX alert_incidents_fingerprint_idx ON alert_incidents (fingerprint, incident_id DESC);
