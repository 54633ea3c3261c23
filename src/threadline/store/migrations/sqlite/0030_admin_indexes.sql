-- The admin API (docs/admin.md) pages every thread of the resource by latest activity and every
-- identity by creation, newest first: these indexes keep those pages from scanning the tables.
CREATE INDEX IF NOT EXISTS threads_activity ON threads (coalesce(last_message_ms, created_ms), id);
CREATE INDEX IF NOT EXISTS users_created ON users (created_ms, id);
