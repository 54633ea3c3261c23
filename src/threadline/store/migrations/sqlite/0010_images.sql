-- Uploaded images (2024-06-05-preview). The bytes are files under <database folder>/images/;
-- message_id is set once the image is attached, position orders a message's attachments.
CREATE TABLE images (
    thread_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    uploader_id  TEXT NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    message_id   TEXT,
    position     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (thread_id, id)
) WITHOUT ROWID;
CREATE INDEX images_message ON images (thread_id, message_id);
