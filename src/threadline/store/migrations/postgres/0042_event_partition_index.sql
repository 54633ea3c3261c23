-- Every read of the event log after a cursor reads it per partition (store/dialect.py, LogRead):
-- the events of partition k after the cursor's bound for k, in position order. Positions are
-- n * 32 + k (migration 0040), so one partition's events are not a range of the primary key:
-- before this index a replay scanned every event above the cursor's lowest bound, and a busy
-- partition far ahead of a quiet one made even a caught-up reader scan most of the log.
-- This index makes each partition's read a range: (partition, position) > (k, bound).
--
-- The expression must be written as the reads write it, `position % 32` with the literal count
-- of event_partitions' rows (32 since 0040), or PostgreSQL does not match it.
CREATE INDEX events_partition ON events ((position % 32), position);
