-- SLA policies, status timelines, clocks, warnings/breaches, escalation rules and escalations.
-- Exactly-once: a warning or breach is one row per (incident, clock, kind, threshold) and an escalation one row per
-- (incident, level, reason key); sweeps insert with ON CONFLICT DO NOTHING, so any number of workers agree.

CREATE TABLE sla_policies (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                    text NOT NULL,
    description             text NOT NULL DEFAULT '',
    -- Match conditions: an empty list matches any value.
    priorities              text[] NOT NULL DEFAULT '{}',
    customer_tiers          text[] NOT NULL DEFAULT '{}',
    areas                   text[] NOT NULL DEFAULT '{}',
    precedence              integer NOT NULL DEFAULT 100,
    first_response_minutes  integer NOT NULL CHECK (first_response_minutes > 0),
    resolution_minutes      integer NOT NULL CHECK (resolution_minutes > 0),
    calendar                jsonb,  -- NULL: 24/7
    pause_statuses          text[] NOT NULL DEFAULT '{waiting}',
    warning_thresholds      integer[] NOT NULL DEFAULT '{75,90}',
    is_active               boolean NOT NULL DEFAULT true,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL
);
CREATE UNIQUE INDEX sla_policies_name_key ON sla_policies (lower(name));

-- Per-incident SLA state: the policy applied, first response, escalation level, counters for rules.
CREATE TABLE sla_incidents (
    incident_id             bigint PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    policy_id               bigint REFERENCES sla_policies (id),
    policy_name             text,
    calendar                jsonb,
    policy_applied_at       timestamptz,
    first_response_at       timestamptz,
    first_response_by       text,
    escalation_level        smallint NOT NULL DEFAULT 0 CHECK (escalation_level BETWEEN 0 AND 3),
    escalated_department    text,
    consecutive_rejections  integer NOT NULL DEFAULT 0,
    assignee_changes        integer NOT NULL DEFAULT 0,
    updated_at              timestamptz NOT NULL
);

-- The status timeline that clocks are computed from.
CREATE TABLE sla_status_spans (
    incident_id  bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    seq          integer NOT NULL,
    status       text NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    PRIMARY KEY (incident_id, seq)
);
CREATE UNIQUE INDEX sla_status_spans_open_key ON sla_status_spans (incident_id) WHERE ended_at IS NULL;

-- One row per incident and clock; targets, calendar and thresholds are a snapshot of the policy.
CREATE TABLE sla_clocks (
    incident_id         bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind                text NOT NULL CHECK (kind IN ('first_response', 'resolution')),
    policy_id           bigint NOT NULL REFERENCES sla_policies (id),
    target_minutes      integer NOT NULL CHECK (target_minutes > 0),
    calendar            jsonb,
    pause_statuses      text[] NOT NULL,
    warning_thresholds  integer[] NOT NULL,
    started_at          timestamptz NOT NULL,
    state               text NOT NULL CHECK (state IN ('running', 'paused', 'stopped')),
    stopped_at          timestamptz,
    due_at              timestamptz,
    elapsed_seconds     double precision NOT NULL DEFAULT 0,  -- as of computed_at; final once stopped
    breached            boolean NOT NULL DEFAULT false,
    next_check_at       timestamptz,
    computed_at         timestamptz NOT NULL,
    PRIMARY KEY (incident_id, kind)
);
CREATE INDEX sla_clocks_next_check_idx ON sla_clocks (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX sla_clocks_policy_idx ON sla_clocks (policy_id);

CREATE TABLE sla_events (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id        bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    clock_kind         text NOT NULL CHECK (clock_kind IN ('first_response', 'resolution')),
    kind               text NOT NULL CHECK (kind IN ('warning', 'breach')),
    threshold_percent  integer NOT NULL CHECK (threshold_percent BETWEEN 1 AND 100),
    policy_id          bigint REFERENCES sla_policies (id),
    occurred_at        timestamptz NOT NULL,  -- when the threshold was reached (breach: the missed due time)
    recorded_at        timestamptz NOT NULL,
    elapsed_minutes    numeric(12, 2) NOT NULL,
    minutes_overdue    numeric(12, 2) NOT NULL DEFAULT 0,
    CONSTRAINT sla_events_once UNIQUE (incident_id, clock_kind, kind, threshold_percent)
);
CREATE INDEX sla_events_recorded_idx ON sla_events (recorded_at);

CREATE TABLE escalation_rules (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text NOT NULL,
    description        text NOT NULL DEFAULT '',
    combine            text NOT NULL DEFAULT 'all' CHECK (combine IN ('all', 'any')),
    conditions         jsonb NOT NULL,
    level              smallint NOT NULL CHECK (level BETWEEN 1 AND 3),
    target_department  text,
    reassign_to        bigint REFERENCES users (id),
    notify             boolean NOT NULL DEFAULT true,
    is_active          boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE UNIQUE INDEX escalation_rules_name_key ON escalation_rules (lower(name));

CREATE TABLE sla_escalations (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id        bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    level              smallint NOT NULL CHECK (level BETWEEN 1 AND 3),
    previous_level     smallint NOT NULL CHECK (previous_level BETWEEN 0 AND 3),
    trigger            text NOT NULL CHECK (trigger IN ('rule', 'manual')),
    reason_key         text NOT NULL,  -- 'rule:<id>' or 'manual:<uuid>'
    reason             text NOT NULL,
    rule_id            bigint REFERENCES escalation_rules (id) ON DELETE SET NULL,
    rule_name          text,
    target_department  text,
    reassigned_to      bigint REFERENCES users (id),
    actor_kind         text NOT NULL,
    actor_id           text,
    actor_name         text NOT NULL,
    language           text NOT NULL CHECK (language IN ('es', 'en')),
    messages           jsonb NOT NULL,
    created_at         timestamptz NOT NULL,
    CONSTRAINT sla_escalations_once UNIQUE (incident_id, level, reason_key)
);
CREATE INDEX sla_escalations_created_idx ON sla_escalations (created_at);

-- Incidents that exist before this migration get an SLA state and a timeline starting at their current status.
INSERT INTO sla_incidents (incident_id, updated_at) SELECT id, now() FROM incidents;
INSERT INTO sla_status_spans (incident_id, seq, status, started_at)
SELECT id, 1, status, CASE WHEN status = 'open' AND reopened_count = 0 THEN created_at ELSE updated_at END
  FROM incidents;
