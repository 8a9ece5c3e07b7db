-- Social-login identities: keyed by (provider, subject), never by email; a user holds
-- at most one identity per provider.
CREATE TABLE identities (
    provider        text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9-]{0,31}$'),
    subject         text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- What the provider said last; the account's own address stays in users.email.
    email           text NOT NULL DEFAULT '' CHECK (length(email) <= 254),
    email_verified  boolean NOT NULL DEFAULT false,
    linked_at       timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at timestamptz,
    PRIMARY KEY (provider, subject)
);
CREATE UNIQUE INDEX identities_user_provider_key ON identities (user_id, provider);
