-- Event writers insert their events early in the transaction under a placeholder position
-- -(slot * 65536 + n), n = 1, 2, ... in the write's order, with a slot from this sequence, and
-- assign the real positions from event_counter in their last message, together with COMMIT
-- (see store/postgres.py). Placeholders are negative, so they can never equal a position, and
-- unique per write, so concurrent writers never wait on each other's uncommitted keys. They
-- are never visible to another transaction: the same transaction replaces them before it commits.
CREATE SEQUENCE event_placeholders;
