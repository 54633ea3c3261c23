-- The admin pages order threads by latest activity (coalesce(last_message_ms, created_ms)). Their
-- index used to be on that time itself, so every send moved the thread's index entry: a delete and
-- an insert in the index at each send (~6k of a send's ~190k instructions under callgrind), and
-- one more page in the transaction's WAL frames. The index is now on the activity's minute, which a
-- send changes at most once a minute per thread; the pages still order by the exact time within
-- a minute (admin_queries.py), which is the same order since the minute follows the time.
-- Who writes it: a trigger when a thread is made; afterwards the one statement that writes
-- last_message_ms (SqliteCore._next_ids), in a second UPDATE only when the minute has changed. A
-- trigger on that UPDATE cost more than the index did (~7k instructions a send: SQLite runs the
-- trigger's program for every row the UPDATE writes), and an index on a virtual generated column is
-- rewritten whenever a column it reads is assigned.
ALTER TABLE threads ADD COLUMN activity_minute INTEGER;
UPDATE threads SET activity_minute = coalesce(last_message_ms, created_ms) / 60000;
DROP INDEX IF EXISTS threads_activity;
CREATE INDEX threads_activity ON threads (activity_minute);
CREATE TRIGGER threads_activity_new AFTER INSERT ON threads
BEGIN
    UPDATE threads SET activity_minute = coalesce(new.last_message_ms, new.created_ms) / 60000
    WHERE rowid = new.rowid;
END;
