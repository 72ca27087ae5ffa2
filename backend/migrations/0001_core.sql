-- Core schema: areas, accounts, incidents, comments, audit log, suggestions.

CREATE TABLE areas (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO areas (code, name) VALUES
    ('production', 'Production'),
    ('maintenance', 'Maintenance'),
    ('quality', 'Quality'),
    ('logistics', 'Logistics'),
    ('it', 'IT'),
    ('facilities', 'Facilities');

CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL,
    display_name   text NOT NULL DEFAULT '',
    email          text,
    password_hash  text,
    role           text NOT NULL CHECK (role IN ('reporter', 'technician', 'supervisor', 'admin')),
    source         text NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'ldap')),
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id    uuid NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE incidents (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title            text NOT NULL,
    description      text NOT NULL,
    area             text NOT NULL REFERENCES areas (code),
    priority         text NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'in_progress', 'waiting', 'resolved', 'closed')),
    category         text,
    reporter_id      bigint REFERENCES users (id),
    reporter_name    text NOT NULL DEFAULT '',
    customer_tier    text,
    external_ref     text,
    tags             text[] NOT NULL DEFAULT '{}',
    assignee_id      bigint REFERENCES users (id),
    resolution       text,
    source           text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'import')),
    reopened_count   integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    resolved_at      timestamptz,
    closed_at        timestamptz,
    search_vector    tsvector GENERATED ALWAYS AS (
                         to_tsvector('simple', title || ' ' || description)) STORED
);
CREATE INDEX incidents_created_idx ON incidents (created_at DESC, id DESC);
CREATE INDEX incidents_status_idx ON incidents (status, created_at DESC);
CREATE INDEX incidents_area_idx ON incidents (area, created_at DESC);
CREATE INDEX incidents_search_idx ON incidents USING gin (search_vector);
CREATE UNIQUE INDEX incidents_import_ref_key ON incidents (external_ref) WHERE source = 'import';

CREATE TABLE incident_comments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    author_id    bigint REFERENCES users (id),
    author_name  text NOT NULL,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX incident_comments_incident_idx ON incident_comments (incident_id, id);

CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at    timestamptz NOT NULL,
    actor_kind     text NOT NULL,
    actor_id       text,
    actor_name     text NOT NULL,
    action         text NOT NULL,
    resource_type  text NOT NULL,
    resource_id    text,
    before         jsonb,
    after          jsonb,
    client_ip      text,
    request_id     text
);
CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_id, id);
CREATE INDEX audit_log_occurred_idx ON audit_log (occurred_at);

CREATE TABLE suggestions (
    incident_id      bigint PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'generating', 'ready', 'failed')),
    language         text NOT NULL CHECK (language IN ('es', 'en')),
    text             text NOT NULL DEFAULT '',
    citations        bigint[] NOT NULL DEFAULT '{}',
    retrieved        bigint[] NOT NULL DEFAULT '{}',
    model            text,
    node             text,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    lease_expires_at timestamptz,
    last_error       text,
    feedback         text CHECK (feedback IN ('accepted', 'rejected')),
    feedback_by      bigint REFERENCES users (id),
    feedback_at      timestamptz,
    rating           smallint CHECK (rating BETWEEN 1 AND 5),
    rated_by         bigint REFERENCES users (id),
    rated_at         timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    completed_at     timestamptz
);
CREATE INDEX suggestions_pending_idx ON suggestions (next_attempt_at) WHERE status IN ('pending', 'generating');

-- Periodic tasks fire once per tick across all workers: the first INSERT of (task, tick) wins.
CREATE TABLE periodic_ticks (
    task         text NOT NULL,
    tick         timestamptz NOT NULL,
    claimed_by   text NOT NULL,
    claimed_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    error        text,
    PRIMARY KEY (task, tick)
);
