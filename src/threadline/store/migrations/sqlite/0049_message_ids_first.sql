-- messages_id finds a message by (thread, id). It was keyed thread first, so the sends of one
-- transaction on k threads added their entries to k different leaves of it, each a page of the
-- transaction's WAL frames. A message id is the epoch-ms time of the send (max(now, previous + 1) per
-- thread), so keyed id first every new entry lands at the end of the index, in one leaf for all the
-- threads. The same pairs are unique, and lookups (thread and id both given) use it as before.
-- Measured: 32 writers on 32 threads, WAL bytes per send 13.7k -> 8.5k, store CPU per send -24%
-- (on one thread, unchanged: 2.0k). Rebuilding it takes about 0.7 s per million messages.
DROP INDEX IF EXISTS messages_id;
CREATE UNIQUE INDEX messages_id ON messages (id, thread_id);
