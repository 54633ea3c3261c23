-- The sends of one turn (store/pg_send.py, SendTurn) written set-based: the same inputs, result
-- rows and database state as threadline_send_many (0043), without its per-send subtransaction and
-- without updating a thread's row, or a partition's counter, once per send. threadline_send_many
-- (0043) wrote every send through threadline_send (0040): for k sends to one thread that was k row
-- versions of the thread, k of its partition's counter, and k subtransactions; here it is one of
-- each row, and one statement per table.
--
-- The steps, each one statement over all the sends (unnest ... WITH ORDINALITY: n is a send's
-- place in the arrays):
-- 1. Lock the batch's thread rows in id order (as 0043).
-- 2. Decide each send as threadline_send does, in its order: refused TL404 (thread missing or
--    deleted), refused TL403 (the sender is not a live member), else a keyed send claims its key
--    (INSERT ... ON CONFLICT DO NOTHING, the first admitted send of each key only). A send whose key
--    was already stored replays it ('replay'); a later send with the key its batch's first one
--    claims replays that send's result ('again'), as it would after it; the others are written.
--    A key held by a concurrent transaction is waited for by the claim, as in threadline_send.
-- 3. Read the stored results to replay, in a new statement (so a key another node committed while
--    the claim waited is seen); a key gone meanwhile aborts with 40001, and the caller retries.
-- 4. Lock the written events' partition counters in ascending order, after the thread rows: the
--    lock order of 0043 (an idempotency key is claimed after the thread rows, as there).
-- 5. Write: per thread one UPDATE for its k written sends (sequence ids last_seq + j, message ids
--    max(now_j, id_(j-1) + 1) in array order, i.e. j + max(last_message_id, max over i <= j of
--    (now_i - i))); per partition one UPDATE of value + k (the j-th event of a partition in array
--    order at (value + j) * p_count + partition); the messages, the events (marks replaced as
--    threadline_send does) and the keys' results in one statement each; the recipients of each
--    event read with one join, under the counter locks taken in step 4 (the comment in 0040 says
--    why that read is exact). Every read of a locked row here sees its latest version: each
--    statement's snapshot is taken after the lock was.
-- A send refused, or replayed, writes nothing (a refused send's key is never claimed).
CREATE FUNCTION threadline_send_batch(
    p_threads text[], p_scopes text[], p_keys text[], p_types text[], p_senders text[], p_displays text[],
    p_contents text[], p_metadata text[], p_nows bigint[], p_id_marks text[], p_seq_marks text[],
    p_results text[], p_event_types text[], p_event_payloads bytea[], p_message_ms bigint[],
    p_parts int[], p_count int
) RETURNS TABLE (refused text, replayed text, seq bigint, message_id bigint, base bigint, recipients text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_kind text[];    -- per send: 'TL404', 'TL403', 'write', 'replay' (key stored before) or 'again'
    v_first int[];    -- per admitted keyed send: the first admitted send with its key (the claimer)
    v_stored text[];  -- per 'replay' send: the stored result
BEGIN
    PERFORM 1 FROM threads t WHERE t.id = ANY(p_threads) ORDER BY t.id COLLATE "C" FOR UPDATE;

    WITH s AS (
        SELECT s.n, s.scope, s.key,
               CASE WHEN NOT EXISTS (SELECT 1 FROM threads t WHERE t.id = s.thread AND t.deleted_ms IS NULL)
                    THEN 'TL404'
                    WHEN NOT EXISTS (SELECT 1 FROM participants p WHERE p.thread_id = s.thread
                                     AND p.user_id = s.sender AND p.left_pos IS NULL)
                    THEN 'TL403'
               END AS refused
        FROM unnest(p_threads, p_senders, p_scopes, p_keys) WITH ORDINALITY AS s(thread, sender, scope, key, n)
    ), firsts AS (
        SELECT DISTINCT ON (s.scope, s.key) s.n, s.scope, s.key
        FROM s WHERE s.refused IS NULL AND s.scope IS NOT NULL
        ORDER BY s.scope, s.key, s.n
    ), claimed AS (
        INSERT INTO idempotency (scope, key, result, created_ms)
        SELECT f.scope, f.key, '', (extract(epoch from clock_timestamp()) * 1000)::bigint
        FROM firsts f ORDER BY f.scope, f.key
        ON CONFLICT (scope, key) DO NOTHING
        RETURNING idempotency.scope, idempotency.key
    )
    SELECT array_agg(CASE WHEN s.refused IS NOT NULL THEN s.refused
                          WHEN s.scope IS NULL THEN 'write'
                          WHEN c.scope IS NULL THEN 'replay'
                          WHEN f.n = s.n THEN 'write'
                          ELSE 'again' END ORDER BY s.n),
           array_agg(f.n ORDER BY s.n)
    INTO v_kind, v_first
    FROM s
    LEFT JOIN firsts f ON s.refused IS NULL AND f.scope = s.scope AND f.key = s.key
    LEFT JOIN claimed c ON s.refused IS NULL AND c.scope = s.scope AND c.key = s.key;

    IF 'replay' = ANY(v_kind) THEN
        SELECT array_agg(i.result ORDER BY s.n) INTO v_stored
        FROM unnest(v_kind, p_scopes, p_keys) WITH ORDINALITY AS s(kind, scope, key, n)
        LEFT JOIN idempotency i ON s.kind = 'replay' AND i.scope = s.scope AND i.key = s.key;
        IF EXISTS (SELECT 1 FROM unnest(v_kind, v_stored) AS x(kind, result)
                   WHERE x.kind = 'replay' AND x.result IS NULL) THEN
            RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'idempotency key vanished; retry';
        END IF;
    END IF;

    PERFORM 1 FROM event_partitions e
    WHERE e.id IN (SELECT x.part FROM unnest(v_kind, p_event_types, p_parts) AS x(kind, type, part)
                   WHERE x.kind = 'write' AND x.type IS NOT NULL)
    ORDER BY e.id FOR UPDATE;

    RETURN QUERY
    WITH s AS (
        SELECT *
        FROM unnest(p_threads, p_types, p_senders, p_displays, p_contents, p_metadata, p_nows, p_id_marks,
                    p_seq_marks, p_results, p_scopes, p_keys, p_event_types, p_event_payloads, p_message_ms,
                    p_parts, v_kind, v_first, v_stored)
             WITH ORDINALITY AS s(thread, type, sender, display, content, metadata, now, id_mark, seq_mark,
                                  result, scope, key, event_type, payload, message_ms, part, kind, first,
                                  stored, n)
    ), ranked AS (
        SELECT s.*,
               row_number() OVER (PARTITION BY s.thread ORDER BY s.n) AS j,
               row_number() OVER (PARTITION BY s.part, s.event_type IS NULL ORDER BY s.n) AS e
        FROM s WHERE s.kind = 'write'
    ), w AS (
        SELECT r.*, t.last_seq + r.j AS seq,
               r.j + greatest(t.last_message_id, max(r.now - r.j) OVER (PARTITION BY r.thread ORDER BY r.n)) AS id,
               CASE WHEN r.event_type IS NOT NULL THEN (ep.value + r.e) * p_count + r.part END AS position
        FROM ranked r
        JOIN threads t ON t.id = r.thread
        LEFT JOIN event_partitions ep ON r.event_type IS NOT NULL AND ep.id = r.part
    ), thread_rows AS (
        UPDATE threads t SET last_seq = l.seq, last_message_id = l.id, last_message_ms = l.now
        FROM (SELECT DISTINCT ON (w.thread) w.thread, w.seq, w.id, w.now FROM w ORDER BY w.thread, w.n DESC) l
        WHERE t.id = l.thread
    ), partition_rows AS (
        UPDATE event_partitions ep SET value = ep.value + c.k
        FROM (SELECT w.part, count(*) AS k FROM w WHERE w.position IS NOT NULL GROUP BY w.part) c
        WHERE ep.id = c.part
    ), message_rows AS (
        INSERT INTO messages (thread_id, seq, id, type, sender_id, sender_display_name, content, metadata,
                              created_ms, version)
        SELECT w.thread, w.seq, w.id::text, w.type, w.sender, w.display, w.content, w.metadata, w.now, w.id
        FROM w ORDER BY w.n
    ), event_rows AS (
        INSERT INTO events (position, thread_id, type, payload, created_ms, message_ms)
        SELECT w.position, w.thread, w.event_type,
               convert_to(replace(replace(convert_from(w.payload, 'UTF8'), w.id_mark, w.id::text),
                                  w.seq_mark, w.seq::text), 'UTF8'),
               w.now, w.message_ms
        FROM w WHERE w.position IS NOT NULL ORDER BY w.n
    ), key_rows AS (
        UPDATE idempotency i
        SET result = replace(replace(w.result, w.id_mark, w.id::text), w.seq_mark, w.seq::text)
        FROM w WHERE w.scope IS NOT NULL AND i.scope = w.scope AND i.key = w.key
    ), heard AS (
        SELECT w.n, array_agg(p.user_id ORDER BY p.id) AS users
        FROM w JOIN participants p
          ON p.thread_id = w.thread AND p.joined_pos <= w.position
         AND (p.left_pos IS NULL OR p.left_pos >= w.position)
         AND (w.message_ms IS NULL OR p.share_history_ms <= w.message_ms)
        WHERE w.position IS NOT NULL
        GROUP BY w.n
    )
    SELECT CASE WHEN s.kind IN ('TL404', 'TL403') THEN s.kind END,
           CASE WHEN s.kind = 'replay' THEN s.stored
                WHEN s.kind = 'again'
                THEN replace(replace(f.result, f.id_mark, f.id::text), f.seq_mark, f.seq::text) END,
           w.seq, w.id, w.position - p_count,
           CASE WHEN w.n IS NOT NULL THEN coalesce(h.users, '{}'::text[]) END
    FROM s
    LEFT JOIN w ON w.n = s.n
    LEFT JOIN w f ON s.kind = 'again' AND f.n = s.first
    LEFT JOIN heard h ON h.n = s.n
    ORDER BY s.n;
END
$$;
