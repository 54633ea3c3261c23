-- Sends to one thread made in one turn of a node's event loop, written by one statement
-- (store/pg_send.py, SendBatch): the thread row and its partition's counter are locked once for
-- all of them and released by one commit, instead of handed from send to send, each waiting for
-- the previous one's commit.
--
-- Each send runs threadline_send (migration 0040) in its own subtransaction (the EXCEPTION
-- block), so a send refused (thread missing, sender not a member) is rolled back alone and
-- reported in `refused`; the others go on. Any other error (a deadlock, a vanished idempotency
-- key) aborts the statement and the caller retries the batch, which nothing of has committed.
-- Every send carries exactly one event (a message's chatMessageReceived), as the caller
-- guarantees; the sends' order in the arrays is the order of their sequence ids and positions.
CREATE FUNCTION threadline_send_many(
    p_thread text, p_scopes text[], p_keys text[], p_types text[], p_senders text[], p_displays text[],
    p_contents text[], p_metadata text[], p_nows bigint[], p_id_marks text[], p_seq_marks text[],
    p_results text[], p_event_types text[], p_event_payloads bytea[], p_message_ms bigint[],
    p_part int, p_count int
) RETURNS TABLE (refused text, replayed text, seq bigint, message_id bigint, base bigint, recipients text[])
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_senders, 1), 0) LOOP
        BEGIN
            RETURN QUERY SELECT NULL::text, s.replayed, s.seq, s.message_id, s.base, s.recipients
            FROM threadline_send(
                p_thread, p_scopes[i], p_keys[i], p_types[i], p_senders[i], p_displays[i], p_contents[i],
                p_metadata[i], p_nows[i], p_id_marks[i], p_seq_marks[i], p_results[i],
                ARRAY[p_event_types[i]], ARRAY[p_event_payloads[i]], p_message_ms[i], p_part, p_count
            ) AS s;
        EXCEPTION WHEN SQLSTATE 'TL404' OR SQLSTATE 'TL403' THEN
            RETURN QUERY SELECT SQLSTATE::text, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text[];
        END;
    END LOOP;
END
$$;
