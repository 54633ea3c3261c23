-- An event row costs what its insert touches: the heap and every index on it. No read of the
-- log goes by thread, so events_thread is dropped. events_created served only the pruner and a
-- webhook rewind, which now walk each partition's events in position order through
-- events_partition (0042; created_ms follows a partition's positions closely): the pruner deletes
-- each partition's prefix of events older than its cutoff (store/postgres/events.py), a rewind
-- finds each partition's first event at or after a time (store/webhooks_postgres.py). The
-- primary key and events_partition stay: every read of the log uses them.
DROP INDEX IF EXISTS events_thread;
DROP INDEX IF EXISTS events_created;
-- Who receives an event is read by thread in every event-writing send (threadline_send, 0040) and
-- for every page of webhook events: neither participants_live (live stays only) nor
-- participants_user (user first) serves "every stay in this thread", so that read scanned all of
-- participants_user.
CREATE INDEX participants_thread ON participants (thread_id);
