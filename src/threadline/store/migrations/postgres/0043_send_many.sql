-- The sends made in one turn of a node's event loop, written by one statement (store/pg_send.py,
-- SendTurn): a thread's row and its partition's counter are locked once for all of its sends and
-- every lock is released by one commit (one WAL flush), instead of handed from send to send, each
-- waiting for the previous one's commit.
--
-- Lock order, as every other write takes its locks: thread rows before partition counters. The
-- statement first locks all its threads' rows in id order, then runs the sends in the caller's
-- order, (partition, thread), so it takes partition counters in ascending order as well: two
-- such statements, or one and any single-thread write, never wait on each other in a cycle. (An
-- idempotency key is claimed after the thread row here, before it in a lone send: two nodes
-- racing with the same key can deadlock; PostgreSQL breaks it and the store retries.) A thread's
-- sends keep the order they were made in.
--
-- Each send runs threadline_send (migration 0040) in its own subtransaction (the EXCEPTION
-- block), so a send refused (thread missing, sender not a member) is rolled back alone and
-- reported in `refused`; the others go on. Any other error (a deadlock, a vanished idempotency
-- key) aborts the statement and the caller retries the batch, which nothing of has committed.
-- Every send carries at most one event (a message's chatMessageReceived; NULL type: none), as the
-- caller guarantees; a thread's sends in the arrays are in the order of their sequence ids and positions.
CREATE FUNCTION threadline_send_many(
    p_threads text[], p_scopes text[], p_keys text[], p_types text[], p_senders text[], p_displays text[],
    p_contents text[], p_metadata text[], p_nows bigint[], p_id_marks text[], p_seq_marks text[],
    p_results text[], p_event_types text[], p_event_payloads bytea[], p_message_ms bigint[],
    p_parts int[], p_count int
) RETURNS TABLE (refused text, replayed text, seq bigint, message_id bigint, base bigint, recipients text[])
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM threads t WHERE t.id = ANY(p_threads) ORDER BY t.id COLLATE "C" FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_senders, 1), 0) LOOP
        BEGIN
            RETURN QUERY SELECT NULL::text, s.replayed, s.seq, s.message_id, s.base, s.recipients
            FROM threadline_send(
                p_threads[i], p_scopes[i], p_keys[i], p_types[i], p_senders[i], p_displays[i], p_contents[i],
                p_metadata[i], p_nows[i], p_id_marks[i], p_seq_marks[i], p_results[i],
                CASE WHEN p_event_types[i] IS NULL THEN '{}'::text[] ELSE ARRAY[p_event_types[i]] END,
                CASE WHEN p_event_types[i] IS NULL THEN '{}'::bytea[] ELSE ARRAY[p_event_payloads[i]] END,
                p_message_ms[i], p_parts[i], p_count
            ) AS s;
        EXCEPTION WHEN SQLSTATE 'TL404' OR SQLSTATE 'TL403' THEN
            RETURN QUERY SELECT SQLSTATE::text, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text[];
        END;
    END LOOP;
END
$$;
