-- Users: token_generation rises on each revocation; deleted users keep their row.
CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    created_ms       INTEGER NOT NULL,
    token_generation INTEGER NOT NULL DEFAULT 0,
    deleted_ms       INTEGER
);

-- Threads: last_seq and last_message_id allocate sequence ids and epoch-ms message ids.
CREATE TABLE threads (
    id              TEXT PRIMARY KEY,
    topic           TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    deleted_ms      INTEGER,
    last_message_ms INTEGER,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    last_message_id INTEGER NOT NULL DEFAULT 0,
    metadata        TEXT,
    retention       TEXT
);

-- Memberships: one row per stay; left_pos is NULL while the member is in.
-- joined_pos/left_pos bound the event positions the member receives.
CREATE TABLE participants (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    display_name     TEXT,
    share_history_ms INTEGER NOT NULL DEFAULT 0,
    metadata         TEXT,
    joined_pos       INTEGER NOT NULL,
    left_pos         INTEGER
);
CREATE UNIQUE INDEX participants_live ON participants (thread_id, user_id) WHERE left_pos IS NULL;
CREATE INDEX participants_user ON participants (user_id, thread_id);

CREATE TABLE messages (
    thread_id           TEXT NOT NULL,
    seq                 INTEGER NOT NULL,
    id                  TEXT NOT NULL,
    type                TEXT NOT NULL,
    sender_id           TEXT,
    sender_display_name TEXT,
    content             TEXT,
    topic               TEXT,
    participants        TEXT,
    initiator_id        TEXT,
    metadata            TEXT,
    created_ms          INTEGER NOT NULL,
    version             INTEGER NOT NULL,
    edited_ms           INTEGER,
    deleted_ms          INTEGER,
    PRIMARY KEY (thread_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_id ON messages (thread_id, id);

CREATE TABLE read_receipts (
    thread_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    read_ms    INTEGER NOT NULL,
    PRIMARY KEY (thread_id, user_id)
) WITHOUT ROWID;

CREATE TABLE idempotency (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    result     TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE TABLE events (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id  TEXT NOT NULL,
    type       TEXT NOT NULL,
    payload    BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX events_thread ON events (thread_id, position);
CREATE INDEX events_created ON events (created_ms);
