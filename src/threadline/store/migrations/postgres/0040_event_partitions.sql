-- Event positions per partition (store/positions.py): no global counter row any more.
--
-- A thread belongs to partition threadline_part(id, 32) (the first 32 bits of md5(id), as
-- positions.partition_of computes it); each partition has its own counter, so writes to threads
-- of different partitions never wait on one another. A position is n * 32 + partition for the
-- partition's n-th event: positions of one partition (and one thread) rise in commit order.
-- The number of partitions is the number of rows here; the store reads it when it opens.
--
-- Every partition starts above the old global counter, so existing memberships (joined_pos,
-- left_pos: old positions) keep covering exactly what they covered. Events written before stay
-- until pruned, below every partition's `pruned` mark: no cursor ever reads them (an old client's
-- integer position is refused as "resume impossible" by the server).
CREATE FUNCTION threadline_part(p_thread text, p_count int) RETURNS int
IMMUTABLE LANGUAGE sql AS $$ SELECT (('x' || substr(md5(p_thread), 1, 8))::bit(32)::bigint % p_count)::int $$;

CREATE TABLE event_partitions (
    id     INTEGER PRIMARY KEY,
    value  BIGINT NOT NULL,   -- events taken in this partition: the last position is value * 32 + id
    pruned BIGINT NOT NULL    -- the highest position of this partition that pruning removed (or below)
);
INSERT INTO event_partitions (id, value, pruned)
SELECT k, s.start, s.start * 32 + k
FROM generate_series(0, 31) AS k,
     (SELECT CASE WHEN value = 0 THEN 0 ELSE value / 32 + 1 END AS start FROM event_counter) AS s;
DROP TABLE event_counter;

-- One round trip per send (store/pg_send.py): the whole send_message write as one server-side
-- function, called as a single statement outside any explicit transaction, so PostgreSQL commits
-- right after it returns and no lock is held across a client round trip.
--
-- Lock order as every other write (store/postgres.py): the idempotency key, the thread row, the
-- thread's partition counter. The counter is taken last and released by the commit that follows
-- the statement, so the partition's positions become visible in commit order on every node.
--
-- The caller builds the message's event payloads and idempotency result from a stand-in message
-- whose id and sequence id are two random 18-digit marks; the function puts the real values in
-- place of the marks (the caller does the same replacement on its copy).
CREATE FUNCTION threadline_send(
    p_thread text, p_scope text, p_key text, p_type text, p_sender text, p_display text,
    p_content text, p_metadata text, p_now bigint, p_id_mark text, p_seq_mark text,
    p_result text, p_event_types text[], p_event_payloads bytea[], p_message_ms bigint,
    p_part int, p_count int
) RETURNS TABLE (replayed text, seq bigint, message_id bigint, base bigint, recipients text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint;
    v_id bigint;
    v_base bigint := NULL;
    v_n int := coalesce(array_length(p_event_types, 1), 0);
    v_stored text;
    v_recipients text[] := '{}';
BEGIN
    IF p_scope IS NOT NULL THEN
        -- A concurrent duplicate waits here until the first commits, then finds the key taken
        -- (and replays it only to a sender who is still a member).
        INSERT INTO idempotency (scope, key, result, created_ms)
        VALUES (p_scope, p_key, '', (extract(epoch from clock_timestamp()) * 1000)::bigint)
        ON CONFLICT (scope, key) DO NOTHING;
        IF NOT FOUND THEN
            SELECT i.result INTO v_stored FROM idempotency i WHERE i.scope = p_scope AND i.key = p_key;
            IF v_stored IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'idempotency key vanished; retry';
            END IF;
            IF NOT EXISTS (SELECT 1 FROM threads t WHERE t.id = p_thread AND t.deleted_ms IS NULL) THEN
                RAISE EXCEPTION USING ERRCODE = 'TL404', MESSAGE = format('no thread %L', p_thread);
            END IF;
            IF NOT EXISTS (SELECT 1 FROM participants p WHERE p.thread_id = p_thread AND p.user_id = p_sender
                           AND p.left_pos IS NULL) THEN
                RAISE EXCEPTION USING ERRCODE = 'TL403', MESSAGE = 'the sender is not a member';
            END IF;
            RETURN QUERY SELECT v_stored, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text[];
            RETURN;
        END IF;
    END IF;
    UPDATE threads SET last_seq = last_seq + 1,
        last_message_id = greatest(p_now, last_message_id + 1), last_message_ms = p_now
    WHERE id = p_thread AND deleted_ms IS NULL RETURNING last_seq, last_message_id INTO v_seq, v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TL404', MESSAGE = format('no thread %L', p_thread);
    END IF;
    -- Read once the thread row is locked: a removal (which takes that lock first) has committed
    -- or waits for this statement, so a removed member can never send.
    IF NOT EXISTS (SELECT 1 FROM participants p WHERE p.thread_id = p_thread AND p.user_id = p_sender
                   AND p.left_pos IS NULL) THEN
        RAISE EXCEPTION USING ERRCODE = 'TL403', MESSAGE = 'the sender is not a member';
    END IF;
    INSERT INTO messages (thread_id, seq, id, type, sender_id, sender_display_name, content, metadata,
                          created_ms, version)
    VALUES (p_thread, v_seq, v_id::text, p_type, p_sender, p_display, p_content, p_metadata, p_now, v_id);
    IF p_scope IS NOT NULL THEN
        UPDATE idempotency SET result = replace(replace(p_result, p_id_mark, v_id::text), p_seq_mark, v_seq::text)
        WHERE scope = p_scope AND key = p_key;
    END IF;
    IF v_n > 0 THEN
        UPDATE event_partitions SET value = value + v_n WHERE id = p_part
        RETURNING (value - v_n) * p_count + p_part INTO v_base;
        INSERT INTO events (position, thread_id, type, payload, created_ms, message_ms)
        SELECT v_base + e.n * p_count, p_thread, e.type,
               convert_to(replace(replace(convert_from(e.payload, 'UTF8'), p_id_mark, v_id::text),
                                  p_seq_mark, v_seq::text), 'UTF8'),
               p_now, p_message_ms
        FROM unnest(p_event_types, p_event_payloads) WITH ORDINALITY AS e(type, payload, n);
        -- Membership coverage changes only under the counter lock, which this transaction holds:
        -- the members read here are exactly those whose stay covers the new positions.
        SELECT coalesce(array_agg(p.user_id ORDER BY p.id), '{}') INTO v_recipients
        FROM participants p
        WHERE p.thread_id = p_thread AND p.joined_pos <= v_base + p_count
          AND (p.left_pos IS NULL OR p.left_pos >= v_base + v_n * p_count)
          AND (p_message_ms IS NULL OR p.share_history_ms <= p_message_ms);
    END IF;
    RETURN QUERY SELECT NULL::text, v_seq, v_id, v_base, v_recipients;
END
$$;
