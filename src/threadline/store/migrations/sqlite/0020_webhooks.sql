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
    batch_size       INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    ttl_minutes      INTEGER NOT NULL,
    created_ms       INTEGER NOT NULL,
    cursor           INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_ms INTEGER,
    next_attempt_ms  INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_ms INTEGER NOT NULL DEFAULT 0
);

-- Events whose delivery gave up (attempts, TTL or a no-retry answer): the exact envelope, replayable.
CREATE TABLE webhook_deadletters (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    thread_id       TEXT NOT NULL,
    position        INTEGER NOT NULL,
    envelope        BLOB NOT NULL,
    reason          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    replay          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deadletters_sub ON webhook_deadletters (subscription_id, id);
