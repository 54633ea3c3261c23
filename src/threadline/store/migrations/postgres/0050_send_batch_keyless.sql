-- threadline_send_batch (0046, 0047) with a path for batches in which no send has an idempotency key
-- (no Repeatability-Request-ID: the official SDKs send none with a message). The same arguments,
-- result rows and database state (tests/store/test_pg_send_batch_equivalence.py compares it with
-- threadline_send_many, 0043, over random batches, keyed and keyless).
--
-- A call's fixed cost is mostly starting and ending its statements' plans, whatever the batch's
-- size: measured at the store (bench/pg_send_cpu.py --batch K), PostgreSQL spent ~560 us a call of 2
-- sends, ~800 us of 8, ~1.1 ms of 16 and ~1.7 ms of 32, i.e. ~450 us a call plus ~40 us a send; a
-- node's batches under load carry 10-16 sends. A keyless batch still started the plans of the
-- idempotency claim (an INSERT ... ON CONFLICT), the key results' UPDATE and the joins that find a
-- key's first send, all for no rows. It now decides each send by the membership checks alone and
-- writes with a statement that has no key in it. A batch with a key runs 0046's statements as before.
--
-- PostgreSQL's CPU a call, batches of K sends on 32 threads with one event each, 0046 and 0050 in one
-- database, interleaved, medians of two runs (4 and 6 rounds) on the busy 2-core box:
-- K = 2: 623 -> 554 and 669 -> 504 us; K = 12: 1,041 -> 972 and 1,349 -> 1,242 us; K = 32: 2,050 ->
-- 1,935 and 2,574 -> 2,160 us.

CREATE OR REPLACE FUNCTION threadline_send_batch(
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
    v_parts int[];    -- the partitions of the written events, locked
    v_values bigint[];  -- their counters' values once locked (v_values[k] is v_parts[k]'s)
    v_keyless boolean := cardinality(array_remove(p_scopes, NULL)) = 0;  -- no send has a key
BEGIN
    PERFORM 1 FROM threads t WHERE t.id = ANY(p_threads) ORDER BY t.id COLLATE "C" FOR UPDATE;

    IF v_keyless THEN
        SELECT array_agg(CASE WHEN NOT EXISTS (SELECT 1 FROM threads t WHERE t.id = s.thread AND t.deleted_ms IS NULL)
                              THEN 'TL404'
                              WHEN NOT EXISTS (SELECT 1 FROM participants p WHERE p.thread_id = s.thread
                                               AND p.user_id = s.sender AND p.left_pos IS NULL)
                              THEN 'TL403'
                              ELSE 'write' END ORDER BY s.n)
        INTO v_kind
        FROM unnest(p_threads, p_senders) WITH ORDINALITY AS s(thread, sender, n);
    ELSE
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

    END IF;

    IF NOT v_keyless AND 'replay' = ANY(v_kind) THEN
        SELECT array_agg(i.result ORDER BY s.n) INTO v_stored
        FROM unnest(v_kind, p_scopes, p_keys) WITH ORDINALITY AS s(kind, scope, key, n)
        LEFT JOIN idempotency i ON s.kind = 'replay' AND i.scope = s.scope AND i.key = s.key;
        IF EXISTS (SELECT 1 FROM unnest(v_kind, v_stored) AS x(kind, result)
                   WHERE x.kind = 'replay' AND x.result IS NULL) THEN
            RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'idempotency key vanished; retry';
        END IF;
    END IF;

    SELECT array_agg(l.id), array_agg(l.value) INTO v_parts, v_values
    FROM (SELECT e.id, e.value FROM event_partitions e
          WHERE e.id IN (SELECT x.part FROM unnest(v_kind, p_event_types, p_parts) AS x(kind, type, part)
                         WHERE x.kind = 'write' AND x.type IS NOT NULL)
          ORDER BY e.id FOR UPDATE) l;

    IF v_keyless THEN
        RETURN QUERY
        WITH s AS (
            SELECT *
            FROM unnest(p_threads, p_types, p_senders, p_displays, p_contents, p_metadata, p_nows, p_id_marks,
                        p_seq_marks, p_event_types, p_event_payloads, p_message_ms, p_parts, v_kind)
                 WITH ORDINALITY AS s(thread, type, sender, display, content, metadata, now, id_mark, seq_mark,
                                      event_type, payload, message_ms, part, kind, n)
        ), ranked AS (
            SELECT s.*,
                   row_number() OVER (PARTITION BY s.thread ORDER BY s.n) AS j,
                   row_number() OVER (PARTITION BY s.part, s.event_type IS NULL ORDER BY s.n) AS e
            FROM s WHERE s.kind = 'write'
        ), w AS (
            SELECT r.*, t.last_seq + r.j AS seq,
                   r.j + greatest(t.last_message_id, max(r.now - r.j) OVER (PARTITION BY r.thread ORDER BY r.n)) AS id,
                   CASE WHEN r.event_type IS NOT NULL
                        THEN (v_values[array_position(v_parts, r.part)] + r.e) * p_count + r.part END AS position
            FROM ranked r
            JOIN threads t ON t.id = r.thread
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
        )
        SELECT CASE WHEN s.kind IN ('TL404', 'TL403') THEN s.kind END,
               NULL::text,
               w.seq, w.id, w.position - p_count,
               CASE WHEN w.position IS NOT NULL
                    THEN ARRAY(SELECT p.user_id FROM participants p
                               WHERE p.thread_id = w.thread AND p.joined_pos <= w.position
                                 AND (p.left_pos IS NULL OR p.left_pos >= w.position)
                                 AND (w.message_ms IS NULL OR p.share_history_ms <= w.message_ms)
                               ORDER BY p.id)
                    WHEN w.n IS NOT NULL THEN '{}'::text[] END
        FROM s
        LEFT JOIN w ON w.n = s.n
        ORDER BY s.n;
    ELSE
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
                   CASE WHEN r.event_type IS NOT NULL
                        THEN (v_values[array_position(v_parts, r.part)] + r.e) * p_count + r.part END AS position
            FROM ranked r
            JOIN threads t ON t.id = r.thread
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
        )
        SELECT CASE WHEN s.kind IN ('TL404', 'TL403') THEN s.kind END,
               CASE WHEN s.kind = 'replay' THEN s.stored
                    WHEN s.kind = 'again'
                    THEN replace(replace(f.result, f.id_mark, f.id::text), f.seq_mark, f.seq::text) END,
               w.seq, w.id, w.position - p_count,
               CASE WHEN w.position IS NOT NULL
                    THEN ARRAY(SELECT p.user_id FROM participants p
                               WHERE p.thread_id = w.thread AND p.joined_pos <= w.position
                                 AND (p.left_pos IS NULL OR p.left_pos >= w.position)
                                 AND (w.message_ms IS NULL OR p.share_history_ms <= w.message_ms)
                               ORDER BY p.id)
                    WHEN w.n IS NOT NULL THEN '{}'::text[] END
        FROM s
        LEFT JOIN w ON w.n = s.n
        LEFT JOIN w f ON s.kind = 'again' AND f.n = s.first
        ORDER BY s.n;
    END IF;
END
$$;

-- CREATE OR REPLACE resets the function's settings: keep 0047's.
ALTER FUNCTION threadline_send_batch(
    text[], text[], text[], text[], text[], text[], text[], text[], bigint[], text[], text[], text[], text[],
    bytea[], bigint[], int[], int
) SET plan_cache_mode = force_generic_plan;
