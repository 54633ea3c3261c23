-- Uploaded images (2024-06-05-preview): rows and bytes both live in the database,
-- so every node serves every image. message_id is set once the image is attached.
CREATE TABLE images (
    thread_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    uploader_id  TEXT NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_ms   BIGINT NOT NULL,
    message_id   TEXT,
    position     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (thread_id, id)
);
CREATE INDEX images_message ON images (thread_id, message_id);

CREATE TABLE image_blobs (
    key  TEXT PRIMARY KEY,
    data BYTEA NOT NULL
);
