-- The token-worker's tables: the email ledger that makes sending idempotent, and the
-- audit log, partitioned by month. The worker creates the monthly partitions ahead of
-- time; the DEFAULT partition catches anything outside them, so no event is ever lost.

-- One row per email event. 'sending' is written (committed) before the SMTP
-- conversation, 'sent' right after it: a redelivered event whose row is 'sent' is acked
-- without a second email. 'capped' marks an email suppressed by the per-address cap.
CREATE TABLE sent_emails (
    event_id   uuid PRIMARY KEY,
    kind       text NOT NULL,
    recipient  text NOT NULL,
    state      text NOT NULL CHECK (state IN ('sending', 'sent', 'capped')),
    -- The delivery attempt that holds the row while it talks to the relay (NULL when
    -- none does); another attempt takes over once updated_at is older than the lease.
    claimed_by uuid,
    attempts   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
-- The per-address cap counts one recipient's recent emails.
CREATE INDEX sent_emails_recipient_created_idx ON sent_emails (recipient, created_at);
CREATE INDEX sent_emails_created_idx ON sent_emails (created_at);

-- Every security event, newest first per user. The primary key holds the partition key,
-- so a redelivered event is dropped with ON CONFLICT DO NOTHING. The payload never holds
-- a token or a secret: the worker strips them before writing.
CREATE TABLE audit_log (
    id          uuid NOT NULL,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    user_id     uuid,
    actor_id    uuid,
    request_id  text NOT NULL DEFAULT '',
    payload     jsonb NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (occurred_at, id)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX audit_log_user_occurred_idx ON audit_log (user_id, occurred_at DESC);
CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;

-- The worker's clean-up deletes published outbox rows past retention and used tokens.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX one_time_tokens_used_at_idx ON one_time_tokens (used_at) WHERE used_at IS NOT NULL;
