-- Idempotent intake: a client that sends `Idempotency-Key` may repeat the request (a timeout, a replica that
-- died, a proxy that retried) and gets the first answer again instead of a second incident. The key is claimed in
-- the same transaction that creates the incident, so two concurrent requests with one key create one incident.
CREATE TABLE idempotency_keys (
    endpoint      text NOT NULL,           -- e.g. 'POST /api/v1/incidents'
    principal     text NOT NULL,           -- who sent it: 'user:12', 'api_key:3'; keys are private to their sender
    key           text NOT NULL,
    request_hash  text NOT NULL,           -- sha256 of the canonical request body
    resource_id   bigint,                  -- the incident created under the key
    status_code   integer,
    response      jsonb,                   -- the first answer, replayed as it was
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (endpoint, principal, key)
);

CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);
