-- Webhook subscriptions (issue 13). cursor = the last event-log position fully handled (delivered,
-- filtered out or dead-lettered); attempts/first_attempt_ms/next_attempt_ms describe the retries of
-- the batch after it. lease_owner/lease_expires_ms: the one node delivering this subscription.
CREATE TABLE webhook_subscriptions (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    schema           TEXT NOT NULL,
    event_types      TEXT,
    subject_prefix   TEXT,
    secret           TEXT,
    status           TEXT NOT NULL,
    validation_code  TEXT NOT NULL,
    batch_size       BIGINT NOT NULL,
    max_attempts     BIGINT NOT NULL,
    ttl_minutes      BIGINT NOT NULL,
    created_ms       BIGINT NOT NULL,
    cursor           BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    first_attempt_ms BIGINT,
    next_attempt_ms  BIGINT NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_ms BIGINT NOT NULL DEFAULT 0
);

-- Events whose delivery gave up (attempts, TTL or a no-retry answer): the exact envelope, replayable.
CREATE TABLE webhook_deadletters (
    id              BIGSERIAL PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    thread_id       TEXT NOT NULL,
    position        BIGINT NOT NULL,
    envelope        BYTEA NOT NULL,
    reason          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    created_ms      BIGINT NOT NULL,
    replay          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deadletters_sub ON webhook_deadletters (subscription_id, id);
