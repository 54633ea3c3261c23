-- The admin pages order threads by latest activity (coalesce(last_message_ms, created_ms)). Their
-- index used to be on that time itself, so no send's UPDATE of its thread could be a HOT update:
-- each wrote a new index entry in every index of threads (the primary key's too), and on 32 busy
-- threads that was about a fifth of PostgreSQL's CPU per send (bench/scale.py's store level). The
-- index is now on the activity's minute, a stored generated column: a send changes its value at most
-- once a minute per thread, and an UPDATE that leaves every indexed column's value as it was can be
-- HOT (no index entry, the new row version on the same page). The pages still order by the exact
-- time within a minute (admin_queries.py), which is the same order since the minute follows the time.
-- Half of each page of threads is left free for those row versions (fillfactor; rows moved by
-- the rewrite below take it too).
DROP INDEX IF EXISTS threads_activity;
ALTER TABLE threads SET (fillfactor = 50);
ALTER TABLE threads ADD COLUMN activity_minute BIGINT
    GENERATED ALWAYS AS (coalesce(last_message_ms, created_ms) / 60000) STORED;
CREATE INDEX threads_activity ON threads (activity_minute);
