-- Webhook endpoints (admin API on auth) and their deliveries (the token-worker). The
-- signing secret is sealed with EVENT_KEYS (keyring.Sealed as JSON, additional data the
-- endpoint id): auth seals it when an admin adds or rotates it, the worker opens it to
-- sign. During a rotation the previous secret signs too until previous_expires_at.
CREATE TABLE webhook_endpoints (
    id                     uuid PRIMARY KEY,
    url                    text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    events                 text[] NOT NULL CHECK (cardinality(events) > 0),
    description            text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    secret_sealed          jsonb NOT NULL,
    previous_secret_sealed jsonb,
    previous_expires_at    timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    -- A deleted endpoint is kept (its deliveries stay listed for the audit) but gets
    -- nothing more; disabled_at is set by the worker when it keeps failing.
    deleted_at             timestamptz,
    disabled_at            timestamptz,
    -- failing_since: the first failed attempt since the last success (NULL: healthy).
    failing_since          timestamptz,
    last_error             text,
    CHECK ((previous_secret_sealed IS NULL) = (previous_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_live_idx ON webhook_endpoints (created_at) WHERE deleted_at IS NULL;

-- One row per (endpoint, event): the body is fixed when the event is fanned out, so
-- every attempt sends the same bytes under the same webhook-id (the event id).
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    body             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'dead', 'cancelled')),
    attempts         int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- An attempt in flight holds the row until locked_until; a worker that dies
    -- mid-attempt leaves it to be tried again (same webhook-id) once that passes.
    locked_until     timestamptz,
    last_status_code int,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    -- A dead delivery (retries exhausted, or its endpoint disabled) is published to the
    -- dead-letter stream AUTH_DEADLETTER after the commit that made it dead; this is
    -- when that publish succeeded (NULL: still to publish, retried until it works).
    dead_lettered_at timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);
CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (finished_at) WHERE finished_at IS NOT NULL;
-- The worker's claim: each live endpoint's due deliveries, oldest first (per-endpoint
-- concurrency), and the dead deliveries not yet dead-lettered.
CREATE INDEX webhook_deliveries_endpoint_due_idx ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_dead_letter_idx ON webhook_deliveries (finished_at) WHERE status = 'dead' AND dead_lettered_at IS NULL;
