-- Accounts and secrets over their whole life: per-account lockout, password lifecycle (expiry, forced
-- change, history), JWT signing keys with ids, area-scoped API keys, and auditor as a role of its own.
-- See docs/access.md.

-- Users: lockout and password lifecycle ------------------------------------------------------------

ALTER TABLE users
    -- Failed logins inside the current window (any client address, any replica).
    ADD COLUMN failed_login_count integer NOT NULL DEFAULT 0,
    ADD COLUMN failed_login_window_start timestamptz,
    -- While in the future the account refuses every login, right password or not.
    ADD COLUMN locked_until timestamptz,
    -- Locks since the last successful login: each one lasts twice as long as the one before.
    ADD COLUMN lockouts integer NOT NULL DEFAULT 0,
    ADD COLUMN password_changed_at timestamptz,
    ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;

-- Existing passwords count as set today, so turning expiry on does not expire everyone at once.
UPDATE users SET password_changed_at = now() WHERE source = 'local' AND password_hash IS NOT NULL;

-- Earlier password hashes of local accounts (the current one included), so a change can refuse reuse.
CREATE TABLE password_history (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX password_history_user_idx ON password_history (user_id, id DESC);
INSERT INTO password_history (user_id, password_hash, created_at)
    SELECT id, password_hash, now() FROM users WHERE source = 'local' AND password_hash IS NOT NULL;

-- Auditor: a role, no longer a flag ------------------------------------------------------------------

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('reporter', 'technician', 'supervisor', 'admin', 'auditor'));

-- Reporters who held the auditor flag were compliance readers: they become auditors. Technicians and
-- supervisors keep the role they work with (and lose the audit log); admins read it anyway. Every change
-- is audited like any other role change.
INSERT INTO audit_log (occurred_at, actor_kind, actor_id, actor_name, action, resource_type, resource_id,
                       before, after)
    SELECT now(), 'system', NULL, 'migration 0008', 'user.role_changed', 'user', id::text,
           jsonb_build_object('role', role, 'is_auditor', true),
           jsonb_build_object('role', CASE WHEN role = 'reporter' THEN 'auditor' ELSE role END)
      FROM users
     WHERE is_auditor AND role <> 'admin';
UPDATE users SET role = 'auditor' WHERE is_auditor AND role = 'reporter';
ALTER TABLE users DROP COLUMN is_auditor;

-- JWT signing keys ----------------------------------------------------------------------------------

-- The key that signs new access tokens has retired_at NULL (one per purpose). A rotation retires it:
-- it still verifies tokens until verify_until (the longest token lifetime later), then its secret is
-- destroyed. Secrets are AES-256-GCM ciphertexts under a key derived from PRS_JWT_SECRET; kek_id names
-- that key (a fingerprint), so processes configured with another PRS_JWT_SECRET keep keys of their own.
CREATE TABLE signing_keys (
    kid                text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{8,64}$'),
    purpose            text NOT NULL CHECK (purpose IN ('access_token')),
    kek_id             text NOT NULL,
    algorithm          text NOT NULL DEFAULT 'HS256' CHECK (algorithm = 'HS256'),
    secret_ciphertext  bytea,
    created_at         timestamptz NOT NULL,
    created_by         text NOT NULL,
    retired_at         timestamptz,
    verify_until       timestamptz,
    destroyed_at       timestamptz,
    CHECK ((retired_at IS NULL) = (verify_until IS NULL)),
    CHECK ((destroyed_at IS NULL) = (secret_ciphertext IS NOT NULL))
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (purpose, kek_id) WHERE retired_at IS NULL;

-- API keys limited to areas -------------------------------------------------------------------------

-- Empty: every area (the behaviour of keys issued before this migration).
ALTER TABLE api_keys ADD COLUMN allowed_areas text[] NOT NULL DEFAULT '{}';
