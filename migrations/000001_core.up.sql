-- Accounts, roles, one-time tokens and the event outbox of the auth core.
-- Every per-user table is keyed by user id so it can be distributed by user later.

CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    -- Normalised once (trimmed, lower case, Unicode NFC) before it reaches the database.
    email               text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name                text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    -- NULL for accounts that only sign in through a provider.
    password_hash       text,
    email_verified_at   timestamptz,
    disabled_at         timestamptz,
    mfa_enabled         boolean NOT NULL DEFAULT false,
    password_changed_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_created_at_id_idx ON users (created_at, id);

CREATE TABLE roles (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
    permissions text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO roles (name, permissions) VALUES ('admin', '{}'), ('user', '{}');

CREATE TABLE user_roles (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);

-- Verification and reset tokens: only a SHA-256 of the token is kept.
CREATE TABLE one_time_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('email_verification', 'password_reset')),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz
);
CREATE INDEX one_time_tokens_user_purpose_idx ON one_time_tokens (user_id, purpose);
CREATE INDEX one_time_tokens_expires_at_idx ON one_time_tokens (expires_at);

-- Transactional outbox: written in the same transaction as the change that causes the
-- event; a relay publishes pending rows to NATS JetStream with Nats-Msg-Id = id.
CREATE TABLE outbox (
    id              uuid PRIMARY KEY,
    subject         text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE published_at IS NULL;
