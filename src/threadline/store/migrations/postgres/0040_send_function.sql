-- One round trip per send (store/pg_send.py): the whole send_message write as one server-side
-- function, called as a single statement outside any explicit transaction, so PostgreSQL commits
-- right after it returns and no lock is held across a client round trip.
--
-- Lock order as every other write (store/postgres.py): the idempotency key, the thread row, the
-- event counter. The counter is taken last and released by the commit that follows the statement,
-- so positions still become visible in commit order on every node.
--
-- The caller builds the message's event payloads and idempotency result from a stand-in message
-- whose id and sequence id are two random 18-digit marks; the function puts the real values in
-- place of the marks (the caller does the same replacement on its copy).
CREATE FUNCTION threadline_send(
    p_thread text, p_scope text, p_key text, p_type text, p_sender text, p_display text,
    p_content text, p_metadata text, p_now bigint, p_id_mark text, p_seq_mark text,
    p_result text, p_event_types text[], p_event_payloads bytea[], p_message_ms bigint
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
        -- A concurrent duplicate waits here until the first commits, then finds the key taken.
        INSERT INTO idempotency (scope, key, result, created_ms)
        VALUES (p_scope, p_key, '', (extract(epoch from clock_timestamp()) * 1000)::bigint)
        ON CONFLICT (scope, key) DO NOTHING;
        IF NOT FOUND THEN
            SELECT i.result INTO v_stored FROM idempotency i WHERE i.scope = p_scope AND i.key = p_key;
            IF v_stored IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'idempotency key vanished; retry';
            END IF;
            RETURN QUERY SELECT v_stored, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text[];
            RETURN;
        END IF;
    END IF;
    UPDATE threads SET last_seq = last_seq + 1,
        last_message_id = greatest(p_now, last_message_id + 1), last_message_ms = p_now
    WHERE id = p_thread RETURNING last_seq, last_message_id INTO v_seq, v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = format('no thread %L', p_thread);
    END IF;
    INSERT INTO messages (thread_id, seq, id, type, sender_id, sender_display_name, content, metadata,
                          created_ms, version)
    VALUES (p_thread, v_seq, v_id::text, p_type, p_sender, p_display, p_content, p_metadata, p_now, v_id);
    IF p_scope IS NOT NULL THEN
        UPDATE idempotency SET result = replace(replace(p_result, p_id_mark, v_id::text), p_seq_mark, v_seq::text)
        WHERE scope = p_scope AND key = p_key;
    END IF;
    IF v_n > 0 THEN
        UPDATE event_counter SET value = value + v_n WHERE id RETURNING value - v_n INTO v_base;
        INSERT INTO events (position, thread_id, type, payload, created_ms, message_ms)
        SELECT v_base + e.n, p_thread, e.type,
               convert_to(replace(replace(convert_from(e.payload, 'UTF8'), p_id_mark, v_id::text),
                                  p_seq_mark, v_seq::text), 'UTF8'),
               p_now, p_message_ms
        FROM unnest(p_event_types, p_event_payloads) WITH ORDINALITY AS e(type, payload, n);
        -- Membership coverage changes only under the counter lock, which this transaction holds:
        -- the members read here are exactly those whose stay covers the new positions.
        SELECT coalesce(array_agg(p.user_id ORDER BY p.id), '{}') INTO v_recipients
        FROM participants p
        WHERE p.thread_id = p_thread AND p.joined_pos <= v_base + 1
          AND (p.left_pos IS NULL OR p.left_pos >= v_base + v_n)
          AND (p_message_ms IS NULL OR p.share_history_ms <= p_message_ms);
    END IF;
    RETURN QUERY SELECT NULL::text, v_seq, v_id, v_base, v_recipients;
END
$$;
