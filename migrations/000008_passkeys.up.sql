-- Passkeys (WebAuthn credentials). Nothing here is secret (a public key only checks
-- signatures), so nothing is sealed. credential_id is the authenticator's id, unique
-- across accounts: a credential belongs to one user handle (the user id).
CREATE TABLE passkeys (
    id                 uuid PRIMARY KEY,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id      bytea NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 16 AND 1023),
    public_key         bytea NOT NULL,
    -- The last signature counter seen; an assertion must carry a larger one (unless
    -- the authenticator keeps none: both zero).
    sign_count         bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
    transports         text[] NOT NULL DEFAULT '{}',
    aaguid             bytea NOT NULL,
    attestation_format text NOT NULL DEFAULT 'none',
    backup_eligible    boolean NOT NULL DEFAULT false,
    backup_state       boolean NOT NULL DEFAULT false,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_used_at       timestamptz
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id, created_at);
