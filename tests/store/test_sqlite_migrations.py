"""SQLite migrations on a database written by an older version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from threadline.store import migrations
from threadline.store.positions import Cursor
from threadline.store.sqlite import SqliteStore, _statements

from .helpers import assert_activity_pages, assert_old_messages_found

pytestmark = pytest.mark.anyio


def _schema_before(conn: sqlite3.Connection, version: int) -> None:
    """Apply the migrations below ``version`` and record them, as a store of that age left its file."""
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "applied_ms INTEGER NOT NULL)")
    for m in migrations.load("sqlite"):
        if m.version < version:
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (m.version, m.name))


async def test_webhook_cursors_become_tokens_naming_the_same_event(tmp_path: Path) -> None:
    """0041: SQLite has one partition whose positions are the old ones, so cursor 26 becomes 'p1a'."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _schema_before(conn, 41)
        conn.execute(
            "INSERT INTO webhook_subscriptions (id, url, schema, event_types, status, validation_code, batch_size, "
            "max_attempts, ttl_minutes, created_ms, cursor, attempts) "
            "VALUES ('wh_old', 'http://127.0.0.1:9/', 'eventgrid', '[\"a\"]', 'active', 'c', 5, 30, 1440, 7, 26, 2)"
        )
    finally:
        conn.close()
    store = SqliteStore(path)
    await store.open()  # applies 0041
    try:
        sub = await store.webhooks.get_subscription("wh_old")
        assert sub is not None
        assert (sub.cursor, sub.event_types, sub.batch_size, sub.created_ms, sub.attempts) == (
            Cursor([26]).token(), ["a"], 5, 7, 2)
        assert sub.cursor == "p1a"
    finally:
        await store.close()


async def test_lean_event_log_keeps_positions_and_cursors_and_drops_the_indexes(tmp_path: Path) -> None:
    """0044 on a database with events: positions, the sequence and webhook cursors survive."""
    from threadline.store.base import Effects
    from threadline.store.records import MessageDraft

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _schema_before(conn, 44)
        conn.execute("INSERT INTO users (id, created_ms) VALUES ('8:acs:a', 0)")
        conn.execute("INSERT INTO threads (id, topic, created_ms, created_by) VALUES ('19:t@thread.v2', 't', 0, "
                     "'8:acs:a')")
        conn.execute("INSERT INTO participants (thread_id, user_id, joined_pos) "
                     "VALUES ('19:t@thread.v2', '8:acs:a', 1)")
        for position in (1, 2, 3):
            conn.execute("INSERT INTO events (position, thread_id, type, payload, created_ms) "
                         "VALUES (?, '19:t@thread.v2', 'old', x'7b7d', ?)", (position, 10 * position))
        conn.execute("DELETE FROM events WHERE position = 1")  # pruned before the upgrade
        conn.execute(
            "INSERT INTO webhook_subscriptions (id, url, schema, status, validation_code, batch_size, "
            "max_attempts, ttl_minutes, created_ms, cursor) "
            "VALUES ('wh_old', 'http://127.0.0.1:9/', 'eventgrid', 'active', 'c', 1, 30, 1440, 0, 'p2')"
        )
    finally:
        conn.close()
    store = SqliteStore(path)
    await store.open()  # applies 0044
    try:
        indexes = await store._read(lambda c: {r[0] for r in c.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('events', 'participants')")})
        assert "events_thread" not in indexes and "events_created" not in indexes
        assert "participants_thread" in indexes
        assert [(e.position, e.created_ms) for e in await store.webhooks.events_after([0], 10)] == [(2, 20), (3, 30)]
        assert await store.event_bounds() == ([1], [3])
        sub = await store.webhooks.get_subscription("wh_old")
        assert sub is not None and sub.cursor == "p2"
        sent = await store.send_message("19:t@thread.v2", MessageDraft("text", sender_id="8:acs:a", content="new"),
                                        40, Effects(events=lambda m: [("chatMessageReceived", b"{}")]))
        assert [(e.position, e.recipients) for e in sent.events] == [(4, ("8:acs:a",))]
        assert await store.prune_events(35) == 1  # keeps what the subscription has not handled (after 2)
        assert [e.position for e in await store.webhooks.events_after([0], 10)] == [3, 4]
    finally:
        await store.close()


async def test_thread_activity_minute_is_filled_and_pages_keep_their_order(tmp_path: Path) -> None:
    """0048 on a database with threads: each gets its activity's minute, and the admin page's order is the time's."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    activity = {"19:a@thread.v2": 125_000, "19:b@thread.v2": 119_999, "19:c@thread.v2": 125_000}
    try:
        _schema_before(conn, 48)
        conn.execute("INSERT INTO users (id, created_ms) VALUES ('8:acs:a', 0)")
        for tid, ms in activity.items():
            last = None if tid.startswith("19:b") else ms  # b was never written to: its creation counts
            conn.execute("INSERT INTO threads (id, topic, created_ms, created_by, last_message_ms) "
                         "VALUES (?, 't', ?, '8:acs:a', ?)", (tid, ms if last is None else 1, last))
    finally:
        conn.close()
    store = SqliteStore(path)
    await store.open()  # applies 0048
    try:
        await assert_activity_pages(store)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert dict(conn.execute("SELECT id, activity_minute FROM threads").fetchall()) == {
            "19:a@thread.v2": 2, "19:b@thread.v2": 1, "19:c@thread.v2": 2}
    finally:
        conn.close()


async def test_message_ids_index_is_rebuilt_id_first_over_existing_messages(tmp_path: Path) -> None:
    """0049 on a database with messages: the index is rebuilt (id, thread_id) and finds them."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _schema_before(conn, 49)
        for tid in ("19:a@thread.v2", "19:b@thread.v2"):  # the same id in two threads stays allowed
            conn.execute("INSERT INTO messages (thread_id, seq, id, type, content, created_ms, version) "
                         "VALUES (?, 1, '1700000000000', 'text', ?, 1700000000000, 1700000000000)", (tid, tid))
    finally:
        conn.close()
    store = SqliteStore(path)
    await store.open()  # applies 0049
    try:
        await assert_old_messages_found(store)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_id'").fetchone()
    finally:
        conn.close()
    assert sql == "CREATE UNIQUE INDEX messages_id ON messages (id, thread_id)"
