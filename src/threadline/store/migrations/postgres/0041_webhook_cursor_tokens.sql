-- A webhook subscription's cursor becomes a resume token over the event partitions
-- (store/positions.py: 'p' and each partition's count in hexadecimal, dot-separated), as a
-- real-time client's is. Events written before migration 0040 carry old global positions that no
-- partition cursor reads (they lie below every partition's `pruned` mark), so an existing
-- subscription resumes at every partition's head: events it had not delivered before the upgrade
-- to partitions are not delivered (docs/webhooks.md, "Upgrading").
ALTER TABLE webhook_subscriptions ADD COLUMN cursor_token TEXT;
UPDATE webhook_subscriptions
SET cursor_token = (SELECT 'p' || string_agg(to_hex(value), '.' ORDER BY id) FROM event_partitions);
ALTER TABLE webhook_subscriptions DROP COLUMN cursor;
ALTER TABLE webhook_subscriptions RENAME COLUMN cursor_token TO cursor;
ALTER TABLE webhook_subscriptions ALTER COLUMN cursor SET NOT NULL;
