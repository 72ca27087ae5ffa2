-- Enterprise access: the auditor capability and directory accounts, API keys of external systems,
-- and the audit log made append-only and hash-chained.

-- Users -----------------------------------------------------------------------------------------

-- Auditors may read the audit log whatever their role (admins always may); see docs/access.md.
ALTER TABLE users ADD COLUMN is_auditor boolean NOT NULL DEFAULT false;
-- The distinguished name of a directory (LDAP) account, refreshed at every directory login.
ALTER TABLE users ADD COLUMN directory_dn text;

-- API keys --------------------------------------------------------------------------------------

CREATE TABLE api_keys (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    owner_email            text NOT NULL CHECK (length(owner_email) BETWEEN 3 AND 254),
    permissions            text[] NOT NULL
                           CHECK (cardinality(permissions) > 0
                                  AND permissions <@ ARRAY['read', 'write', 'escalate', 'admin']::text[]),
    rate_limit_per_minute  integer NOT NULL CHECK (rate_limit_per_minute BETWEEN 1 AND 100000),
    allowed_networks       cidr[] NOT NULL DEFAULT '{}',
    allowed_origins        text[] NOT NULL DEFAULT '{}',
    expires_at             timestamptz,
    created_at             timestamptz NOT NULL,
    created_by             text NOT NULL,
    revoked_at             timestamptz,
    revoked_by             text,
    last_used_at           timestamptz,
    last_used_ip           text,
    use_count              bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX api_keys_live_name_key ON api_keys (lower(name)) WHERE revoked_at IS NULL;

-- One row per secret a key has had. Only a SHA-256 of the (256-bit random) secret is stored.
-- Rotation retires the current secret, which keeps working until valid_until (the grace period).
CREATE TABLE api_key_secrets (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    api_key_id      bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    secret_hash     text NOT NULL UNIQUE CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    display_prefix  text NOT NULL,
    created_at      timestamptz NOT NULL,
    retired_at      timestamptz,
    valid_until     timestamptz
);
CREATE INDEX api_key_secrets_key_idx ON api_key_secrets (api_key_id, id);

-- Audit log: hash chain ---------------------------------------------------------------------------

ALTER TABLE audit_log ADD COLUMN seq bigint UNIQUE;
ALTER TABLE audit_log ADD COLUMN prev_hash text;
ALTER TABLE audit_log ADD COLUMN hash text;
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_name, id);

-- The canonical text of a row: a jsonb object (keys in jsonb's fixed order, numbers normalised),
-- so the same content always gives the same text. The row's hash is SHA-256 of this text, and
-- the text includes prev_hash, which links each row to the one before it.
CREATE FUNCTION audit_log_canonical(r audit_log) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'seq', r.seq,
        'id', r.id,
        'occurred_at', to_char(r.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'actor_kind', r.actor_kind,
        'actor_id', r.actor_id,
        'actor_name', r.actor_name,
        'action', r.action,
        'resource_type', r.resource_type,
        'resource_id', r.resource_id,
        'before', r.before,
        'after', r.after,
        'client_ip', r.client_ip,
        'request_id', r.request_id,
        'prev_hash', r.prev_hash
    )::text
$$;

-- Chain the rows already there, oldest first, before the table becomes append-only.
DO $$
DECLARE
    r audit_log;
    n bigint := 0;
    previous text := repeat('0', 64);
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        n := n + 1;
        r.seq := n;
        r.prev_hash := previous;
        r.hash := encode(sha256(convert_to(audit_log_canonical(r), 'UTF8')), 'hex');
        UPDATE audit_log SET seq = r.seq, prev_hash = r.prev_hash, hash = r.hash WHERE id = r.id;
        previous := r.hash;
    END LOOP;
END
$$;

-- New rows are chained when their transaction commits (a deferred constraint trigger), under a
-- transaction-scoped advisory lock: chained rows form one line in commit order, and the lock is
-- held only for the instant of the commit, so audited transactions never wait on each other
-- while they do their work (no lock-order deadlocks with row locks taken earlier).
CREATE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r audit_log;
    last_seq bigint;
    last_hash text;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- A snapshot older than the lock could miss the newest link and fork the chain.
        RAISE EXCEPTION 'audit rows must be written in READ COMMITTED transactions (this one is %)',
            current_setting('transaction_isolation');
    END IF;
    PERFORM pg_advisory_xact_lock(88314514330948);  -- 0x505253415544: "PRS" "AUD"
    SELECT seq, hash INTO last_seq, last_hash FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1;
    r := NEW;
    r.seq := coalesce(last_seq, 0) + 1;
    r.prev_hash := coalesce(last_hash, repeat('0', 64));
    r.hash := encode(sha256(convert_to(audit_log_canonical(r), 'UTF8')), 'hex');
    UPDATE audit_log SET seq = r.seq, prev_hash = r.prev_hash, hash = r.hash WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER audit_log_chain_on_commit
    AFTER INSERT ON audit_log DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

-- Audit log: append-only ----------------------------------------------------------------------------

-- UPDATE, DELETE and TRUNCATE are refused. The single exception is the chain trigger above filling
-- the three chain columns of a row that has none yet, with every other column unchanged.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF pg_trigger_depth() > 1 AND OLD.hash IS NULL AND OLD.seq IS NULL AND NEW.hash IS NOT NULL
           AND (NEW.id, NEW.occurred_at, NEW.actor_kind, NEW.actor_id, NEW.actor_name, NEW.action,
                NEW.resource_type, NEW.resource_id, NEW.before, NEW.after, NEW.client_ip, NEW.request_id)
               IS NOT DISTINCT FROM
               (OLD.id, OLD.occurred_at, OLD.actor_kind, OLD.actor_id, OLD.actor_name, OLD.action,
                OLD.resource_type, OLD.resource_id, OLD.before, OLD.after, OLD.client_ip, OLD.request_id)
        THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
