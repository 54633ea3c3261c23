-- The PostgreSQL schema: the same tables and meaning as sqlite/0001_initial.sql.
-- JSON columns stay TEXT so metadata keeps its key order, exactly as in SQLite.

-- Users: token_generation rises on each revocation; deleted users keep their row.
CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    created_ms       BIGINT NOT NULL,
    token_generation INTEGER NOT NULL DEFAULT 0,
    deleted_ms       BIGINT
);

-- Threads: last_seq and last_message_id allocate sequence ids and epoch-ms message ids,
-- by UPDATE ... RETURNING under the row lock.
CREATE TABLE threads (
    id              TEXT PRIMARY KEY,
    topic           TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    deleted_ms      BIGINT,
    last_message_ms BIGINT,
    last_seq        BIGINT NOT NULL DEFAULT 0,
    last_message_id BIGINT NOT NULL DEFAULT 0,
    metadata        TEXT,
    retention       TEXT
);

-- Memberships: one row per stay; left_pos is NULL while the member is in.
-- joined_pos/left_pos bound the event positions the member receives.
CREATE TABLE participants (
    id               BIGSERIAL PRIMARY KEY,
    thread_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    display_name     TEXT,
    share_history_ms BIGINT NOT NULL DEFAULT 0,
    metadata         TEXT,
    joined_pos       BIGINT NOT NULL,
    left_pos         BIGINT
);
CREATE UNIQUE INDEX participants_live ON participants (thread_id, user_id) WHERE left_pos IS NULL;
CREATE INDEX participants_user ON participants (user_id, thread_id);

CREATE TABLE messages (
    thread_id           TEXT NOT NULL,
    seq                 BIGINT NOT NULL,
    id                  TEXT NOT NULL,
    type                TEXT NOT NULL,
    sender_id           TEXT,
    sender_display_name TEXT,
    content             TEXT,
    topic               TEXT,
    participants        TEXT,
    initiator_id        TEXT,
    metadata            TEXT,
    created_ms          BIGINT NOT NULL,
    version             BIGINT NOT NULL,
    edited_ms           BIGINT,
    deleted_ms          BIGINT,
    PRIMARY KEY (thread_id, seq)
);
CREATE UNIQUE INDEX messages_id ON messages (thread_id, id);

CREATE TABLE read_receipts (
    thread_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    read_ms    BIGINT NOT NULL,
    PRIMARY KEY (thread_id, user_id)
);

-- A write claims its (scope, key) first with INSERT ... ON CONFLICT DO NOTHING, so a
-- concurrent duplicate waits for the first transaction and then reads its result.
CREATE TABLE idempotency (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    result     TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Event positions come from this single row, updated inside the writing transaction:
-- its row lock is held until commit, so positions commit in order on every node.
CREATE TABLE event_counter (
    id    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    value BIGINT NOT NULL
);
INSERT INTO event_counter (id, value) VALUES (TRUE, 0);

CREATE TABLE events (
    position   BIGINT PRIMARY KEY,
    thread_id  TEXT NOT NULL,
    type       TEXT NOT NULL,
    payload    BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX events_thread ON events (thread_id, position);
CREATE INDEX events_created ON events (created_ms);
