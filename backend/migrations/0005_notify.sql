-- Notifications: endpoints, the transactional outbox of events, deliveries (one per event and endpoint) and the
-- log of every delivery attempt. See docs/notifications.md.

CREATE TABLE notify_endpoints (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                        text NOT NULL CHECK (kind IN ('webhook', 'slack', 'email')),
    target                      text NOT NULL,
    description                 text NOT NULL DEFAULT '',
    enabled                     boolean NOT NULL DEFAULT true,
    event_types                 text[] NOT NULL CHECK (cardinality(event_types) > 0),
    areas                       text[] NOT NULL DEFAULT '{}',
    priorities                  text[] NOT NULL DEFAULT '{}',
    -- Signing secrets (webhooks only), AES-256-GCM encrypted with the server's notify key.
    secret_encrypted            bytea,
    previous_secret_encrypted   bytea,
    previous_secret_expires_at  timestamptz,
    secret_rotated_at           timestamptz,
    consecutive_failures        integer NOT NULL DEFAULT 0,
    disabled_reason             text,
    disabled_at                 timestamptz,
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL
);

-- The outbox: one row per event, written in the transaction of the change that caused it.
CREATE TABLE notify_events (
    id           text PRIMARY KEY,
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    type         text NOT NULL,
    version      integer NOT NULL,
    occurred_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    incident_id  bigint,
    area         text,
    priority     text,
    -- json (not jsonb) keeps the key order the payload was written with.
    payload      json NOT NULL
);
CREATE INDEX notify_events_created_idx ON notify_events (created_at);
CREATE INDEX notify_events_type_idx ON notify_events (type, created_at);
CREATE INDEX notify_events_incident_idx ON notify_events (incident_id) WHERE incident_id IS NOT NULL;

-- One delivery per (event, endpoint); a manual redelivery adds another at the back of the endpoint's queue.
CREATE TABLE notify_deliveries (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          text NOT NULL REFERENCES notify_events (id) ON DELETE CASCADE,
    endpoint_id       bigint NOT NULL REFERENCES notify_endpoints (id) ON DELETE CASCADE,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    manual            boolean NOT NULL DEFAULT false,
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL,
    lease_expires_at  timestamptz,
    claimed_by        text,
    last_status_code  integer,
    last_error        text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    finished_at       timestamptz
);
-- The head of each endpoint's queue is its pending delivery with the smallest id.
CREATE INDEX notify_deliveries_queue_idx ON notify_deliveries (endpoint_id, id) WHERE status = 'pending';
CREATE INDEX notify_deliveries_due_idx ON notify_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notify_deliveries_event_idx ON notify_deliveries (event_id);
CREATE INDEX notify_deliveries_finished_idx ON notify_deliveries (finished_at) WHERE status <> 'pending';

-- The delivery log: every attempt, including those whose worker died (outcome 'abandoned').
CREATE TABLE notify_attempts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id       bigint NOT NULL REFERENCES notify_deliveries (id) ON DELETE CASCADE,
    event_id          text NOT NULL,
    event_type        text NOT NULL,
    endpoint_id       bigint NOT NULL,
    attempt_no        integer NOT NULL,
    worker            text NOT NULL,
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    outcome           text NOT NULL
                      CHECK (outcome IN ('in_flight', 'delivered', 'retrying', 'dead', 'abandoned')),
    status_code       integer,
    response_excerpt  text,
    error             text,
    duration_ms       integer
);
CREATE INDEX notify_attempts_endpoint_idx ON notify_attempts (endpoint_id, id);
CREATE INDEX notify_attempts_event_idx ON notify_attempts (event_id);
CREATE INDEX notify_attempts_started_idx ON notify_attempts (started_at);
CREATE INDEX notify_attempts_delivery_idx ON notify_attempts (delivery_id) WHERE outcome = 'in_flight';
