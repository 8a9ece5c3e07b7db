-- TOTP second factor. The secret is sealed with AES-256-GCM under a key of
-- MFA_ENCRYPTION_KEYS (kid names it, the user id is the additional data), so the table
-- alone never reveals it. A row without confirmed_at is a pending enrolment.
CREATE TABLE mfa_totp (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    kid            text NOT NULL,
    nonce          bytea NOT NULL,
    ct             bytea NOT NULL,
    confirmed_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- The newest time step a code was accepted for: a code is accepted only for a later
    -- step, so a code (or an older one) never passes twice.
    last_used_step bigint NOT NULL DEFAULT 0
);
CREATE INDEX mfa_totp_kid_idx ON mfa_totp (kid);

-- Single-use recovery codes, SHA-256 of the code; used_at marks a spent one.
CREATE TABLE mfa_recovery_codes (
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);
