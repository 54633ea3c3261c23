-- When a thread's retention policy deletes it (epoch ms; NULL: never). Written with the
-- policy by create and update; the pruner reads the due live threads through the index.
ALTER TABLE threads ADD COLUMN expires_ms INTEGER;
CREATE INDEX threads_expiry ON threads (expires_ms) WHERE expires_ms IS NOT NULL AND deleted_ms IS NULL;
