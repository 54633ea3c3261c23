"""PostgreSQL migrations: nodes that start together apply each migration once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from threadline.store import migrations
from threadline.store.postgres import PostgresStore, migrate

from ..pg import fresh_database, require_postgres
from .helpers import assert_activity_pages, assert_old_messages_found

pytestmark = pytest.mark.anyio


async def _schema_before(conn: asyncpg.Connection, version: int) -> None:
    """Apply the migrations below ``version`` and record them, as a store of that age left its database."""
    await conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)"
    )
    for m in migrations.load("postgres"):
        if m.version < version:
            await conn.execute(m.sql)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2, 0)", m.version, m.name)


async def test_nodes_starting_at_once_migrate_once() -> None:
    require_postgres()
    with fresh_database("threadline_migrate") as url:
        stores = [PostgresStore(url) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        try:
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
                expected = [(m.version, m.name) for m in migrations.load("postgres")]
                assert [(r["version"], r["name"]) for r in rows] == expected
                assert expected[0] == (1, "initial")
                assert await migrate(conn) == []  # nothing left to apply
                partitions = await conn.fetch("SELECT id, value, pruned FROM event_partitions ORDER BY id")
                assert [tuple(r) for r in partitions] == [(k, 0, k) for k in range(32)]  # 32, all empty
                assert stores[0].partitions == 32
            finally:
                await conn.close()
            await stores[0].ping()
        finally:
            await asyncio.gather(*(s.close() for s in stores))


async def test_unreachable_database_raises_store_unavailable() -> None:
    from threadline.store.base import StoreUnavailable

    store = PostgresStore("postgresql://postgres@127.0.0.1:1/none", command_timeout=2)
    with pytest.raises(StoreUnavailable, match="not reachable"):
        await store.open()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.ping()


async def test_partitions_start_above_a_database_of_global_positions() -> None:
    """0040 on a database of one global counter: old stays keep their meaning, no token reads old events."""
    require_postgres()
    from threadline.store.base import Effects
    from threadline.store.positions import Cursor, partition_of
    from threadline.store.records import MessageDraft
    from threadline.store.webhooks import read_cursor

    with fresh_database("threadline_upgrade") as url:
        conn = await asyncpg.connect(url)
        try:
            await _schema_before(conn, 40)
            tid = "19:upgrade@thread.v2"
            await conn.execute("INSERT INTO users (id, created_ms) VALUES ('8:acs:a', 0), ('8:acs:b', 0)")
            await conn.execute(
                "INSERT INTO threads (id, topic, created_ms, created_by) VALUES ($1, 't', 0, '8:acs:a')", tid
            )
            # a's stay began at old position 40 and goes on; b's ended at 90; the counter stood at 1000
            await conn.execute(
                "INSERT INTO participants (thread_id, user_id, joined_pos, left_pos) "
                "VALUES ($1, '8:acs:a', 40, NULL), ($1, '8:acs:b', 40, 90)", tid,
            )
            await conn.execute(
                "INSERT INTO events (position, thread_id, type, payload, created_ms) "
                "VALUES (999, $1, 'old', '', 1)", tid,
            )
            await conn.execute("UPDATE event_counter SET value = 1000")
            # a webhook subscription that had handled up to old position 998 (0041 makes its cursor a token)
            await conn.execute(
                "INSERT INTO webhook_subscriptions (id, url, schema, status, validation_code, batch_size, "
                "max_attempts, ttl_minutes, created_ms, cursor) "
                "VALUES ('wh_old', 'http://127.0.0.1:9/', 'eventgrid', 'active', 'c', 1, 30, 1440, 0, 998)"
            )
        finally:
            await conn.close()
        store = PostgresStore(url)
        await store.open()  # applies 0040
        try:
            assert store.partitions == 32
            sent = await store.send_message(
                tid, MessageDraft("text", sender_id="8:acs:a", content="new"), 5,
                Effects(events=lambda m: [("chatMessageReceived", b"{}")]),
            )
            (event,) = sent.events
            part = partition_of(tid, 32)
            assert event.position == (1000 // 32 + 2) * 32 + part and event.position > 1000
            assert event.recipients == ("8:acs:a",)  # the live stay still covers it; the ended one does not
            lows, highs = await store.event_bounds()
            assert lows[part] == (1000 // 32 + 1) * 32 + part and highs[part] == event.position
            # a cursor from the oldest kept reads the new event, never the old one below every partition's mark
            replay = await store.events_since("8:acs:a", Cursor(lows).after, 10)
            assert [e.position for e in replay] == [event.position]
            # 0041: the subscription resumes at every partition's start, reading the new event, not the old one
            sub = await store.webhooks.get_subscription("wh_old")
            assert sub is not None and sub.cursor == Cursor(lows).token()
            after = read_cursor(sub.cursor, 32).after
            assert [e.position for e in await store.webhooks.events_after(after, 10)] == [event.position]
        finally:
            await store.close()


async def test_lean_event_log_keeps_positions_marks_and_cursors_and_drops_the_indexes() -> None:
    """0044 on a database with events: positions, pruned marks and webhook cursors survive."""
    require_postgres()
    from threadline.store.base import Effects
    from threadline.store.positions import Cursor, partition_of
    from threadline.store.records import MessageDraft

    tid = "19:lean@thread.v2"
    part = partition_of(tid, 32)
    with fresh_database("threadline_lean") as url:
        conn = await asyncpg.connect(url)
        try:
            await _schema_before(conn, 44)
            await conn.execute("INSERT INTO users (id, created_ms) VALUES ('8:acs:a', 0)")
            await conn.execute("INSERT INTO threads (id, topic, created_ms, created_by) VALUES ($1, 't', 0, '8:acs:a')",
                               tid)
            await conn.execute("INSERT INTO participants (thread_id, user_id, joined_pos) VALUES ($1, '8:acs:a', 0)",
                               tid)
            # the partition's 1st event was pruned (its mark), the 2nd and 3rd are kept
            await conn.execute(
                "INSERT INTO events (position, thread_id, type, payload, created_ms) "
                "SELECT n * 32 + $2, $1, 'old', '\\x7b7d', n * 10 FROM generate_series(2, 3) AS n", tid, part,
            )
            await conn.execute("UPDATE event_partitions SET value = 3, pruned = 32 + id WHERE id = $1", part)
            handled = Cursor.start(32)
            handled.advance(2 * 32 + part)
            await conn.execute(
                "INSERT INTO webhook_subscriptions (id, url, schema, status, validation_code, batch_size, "
                "max_attempts, ttl_minutes, created_ms, cursor) "
                "VALUES ('wh_old', 'http://127.0.0.1:9/', 'eventgrid', 'active', 'c', 1, 30, 1440, 0, $1)",
                handled.token(),
            )
        finally:
            await conn.close()
        store = PostgresStore(url)
        await store.open()  # applies 0044
        try:
            conn = await asyncpg.connect(url)
            try:
                indexes = {r["indexname"] for r in await conn.fetch(
                    "SELECT indexname FROM pg_indexes WHERE tablename IN ('events', 'participants')")}
            finally:
                await conn.close()
            assert "events_thread" not in indexes and "events_created" not in indexes
            assert {"events_pkey", "events_partition", "participants_thread"} <= indexes
            start = Cursor.start(32).after
            assert [(e.position, e.created_ms) for e in await store.webhooks.events_after(start, 10)] == [
                (2 * 32 + part, 20), (3 * 32 + part, 30)]
            lows, highs = await store.event_bounds()
            assert (lows[part], highs[part]) == (32 + part, 3 * 32 + part)
            sub = await store.webhooks.get_subscription("wh_old")
            assert sub is not None and sub.cursor == handled.token()
            sent = await store.send_message(tid, MessageDraft("text", sender_id="8:acs:a", content="new"), 40,
                                            Effects(events=lambda m: [("chatMessageReceived", b"{}")]))
            assert [(e.position, e.recipients) for e in sent.events] == [(4 * 32 + part, ("8:acs:a",))]
            # keeps what the subscription has not handled (after the 2nd), raises the mark to what went
            assert await store.prune_events(35) == 1
            assert [e.position for e in await store.webhooks.events_after(start, 10)] == [
                3 * 32 + part, 4 * 32 + part]
            lows, _ = await store.event_bounds()
            assert lows[part] == 2 * 32 + part
        finally:
            await store.close()


async def test_the_send_batch_function_keeps_its_generic_plans() -> None:
    """0047, again in 0050: threadline_send_batch runs with plan_cache_mode = force_generic_plan.

    The session's setting stays untouched.
    """
    require_postgres()
    with fresh_database("threadline_migrate") as url:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            config = await conn.fetchval("SELECT proconfig FROM pg_proc WHERE proname = 'threadline_send_batch'")
            assert config == ["plan_cache_mode=force_generic_plan"]
            assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
        finally:
            await conn.close()


async def test_thread_activity_minute_is_filled_and_pages_keep_their_order() -> None:
    """0048 on a database with threads: each gets its activity's minute, and the admin page's order is the time's."""
    require_postgres()
    with fresh_database("threadline_activity") as url:
        conn = await asyncpg.connect(url)
        try:
            await _schema_before(conn, 48)
            await conn.execute("INSERT INTO users (id, created_ms) VALUES ('8:acs:a', 0)")
            await conn.execute(
                "INSERT INTO threads (id, topic, created_ms, created_by, last_message_ms) VALUES "
                "('19:a@thread.v2', 't', 1, '8:acs:a', 125000), ('19:b@thread.v2', 't', 119999, '8:acs:a', NULL), "
                "('19:c@thread.v2', 't', 1, '8:acs:a', 125000)"
            )
        finally:
            await conn.close()
        store = PostgresStore(url)
        await store.open()  # applies 0048
        try:
            await assert_activity_pages(store)
            conn = await asyncpg.connect(url)
            try:
                minutes = dict(await conn.fetch("SELECT id, activity_minute FROM threads"))
                options = await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'threads'")
            finally:
                await conn.close()
            assert minutes == {"19:a@thread.v2": 2, "19:b@thread.v2": 1, "19:c@thread.v2": 2}
            assert options == ["fillfactor=50"]
        finally:
            await store.close()


async def test_message_ids_index_is_rebuilt_id_first_over_existing_messages() -> None:
    """0049 on a database with messages: the index is rebuilt (id, thread_id) and finds them."""
    require_postgres()
    with fresh_database("threadline_message_ids") as url:
        conn = await asyncpg.connect(url)
        try:
            await _schema_before(conn, 49)
            await conn.execute(
                "INSERT INTO messages (thread_id, seq, id, type, content, created_ms, version) "
                "SELECT t, 1, '1700000000000', 'text', t, 1700000000000, 1700000000000 "
                "FROM unnest(ARRAY['19:a@thread.v2', '19:b@thread.v2']) AS t"  # one id in two threads stays allowed
            )
        finally:
            await conn.close()
        store = PostgresStore(url)
        await store.open()  # applies 0049
        try:
            await assert_old_messages_found(store)
            conn = await asyncpg.connect(url)
            try:
                definition = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = 'messages_id'")
            finally:
                await conn.close()
            assert definition.endswith("USING btree (id, thread_id)")
        finally:
            await store.close()
