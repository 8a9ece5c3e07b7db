-- Forgot-password and resend requests, accepted and not yet handled. The answer to either
-- route writes one row, whatever the address, and does nothing else with PostgreSQL (no
-- lookup, no token, no outbox), so a known and an unknown address cost the same work
-- before the 202. A processor in every auth replica then looks the address up and, in one
-- transaction, writes the token and its outbox event (or nothing) and deletes the row. A
-- row therefore lives from the answer to its processing, normally milliseconds; rows older
-- than the processor's maximum age (24 h) are dropped unsent.
CREATE TABLE email_requests (
    -- A UUIDv7, bound as additional data to email_sealed.
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('forgot', 'resend')),
    -- The normalised address as typed, sealed with AES-256-GCM under EVENT_KEYS
    -- ({"kid", "nonce", "ct"}, like an event's token_sealed): an address anyone can type,
    -- known or not, never rests in clear here, in the WAL or in a backup. It is not
    -- hashed: the processor needs it to find the account.
    email_sealed    jsonb NOT NULL,
    ip              text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT '',
    -- The request's X-Request-Id and W3C trace context, carried into the outbox event.
    request_id      text NOT NULL DEFAULT '',
    traceparent     text NOT NULL DEFAULT '',
    tracestate      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Failed attempts so far; each puts the next one off (1 s doubling, up to 5 min).
    attempts        integer NOT NULL DEFAULT 0,
    -- Until then only the replica that accepted the request handles it (woken in
    -- process); from then on any replica's poll may claim it (a replica that stopped
    -- right after answering, a failed attempt).
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_requests_next_attempt_at_idx ON email_requests (next_attempt_at);
