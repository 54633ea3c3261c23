-- A webhook subscription's cursor becomes a resume token (store/positions.py) as a real-time
-- client's is. SQLite has one partition whose positions are the old global ones, so the token
-- names the same event: 'p' and the old position in hexadecimal.
CREATE TABLE webhook_subscriptions_new (
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
    cursor           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_ms INTEGER,
    next_attempt_ms  INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_ms INTEGER NOT NULL DEFAULT 0
);
INSERT INTO webhook_subscriptions_new
SELECT id, url, schema, event_types, subject_prefix, secret, status, validation_code, batch_size, max_attempts,
       ttl_minutes, created_ms, 'p' || lower(printf('%x', cursor)), attempts, first_attempt_ms, next_attempt_ms,
       lease_owner, lease_expires_ms
FROM webhook_subscriptions;
DROP TABLE webhook_subscriptions;
ALTER TABLE webhook_subscriptions_new RENAME TO webhook_subscriptions;
