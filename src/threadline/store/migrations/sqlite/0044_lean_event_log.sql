-- An event row costs what its insert touches: the table and every index on it. No read of the
-- log goes by thread, so events_thread is dropped. events_created served only the pruner and a
-- webhook rewind, which now walk the log in position order instead (created_ms follows it
-- closely): the pruner deletes the prefix of events older than its cutoff (store/sqlite/events.py),
-- a rewind finds the first event at or after a time (store/webhooks_sqlite.py).
DROP INDEX IF EXISTS events_thread;
DROP INDEX IF EXISTS events_created;
-- Who receives an event is read by thread at every event-writing write and for every page of
-- webhook events: neither participants_live (live stays only) nor participants_user (user first)
-- serves "every stay in this thread", so that read scanned the whole table.
CREATE INDEX participants_thread ON participants (thread_id);
