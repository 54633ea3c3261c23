"""SQLite migrations on a database written by an older version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from threadline.store import migrations
from threadline.store.positions import Cursor
from threadline.store.sqlite import SqliteStore, _statements

pytestmark = pytest.mark.anyio


async def test_webhook_cursors_become_tokens_naming_the_same_event(tmp_path: Path) -> None:
    """0041: SQLite has one partition whose positions are the old ones, so cursor 26 becomes 'p1a'."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                     "applied_ms INTEGER NOT NULL)")
        for m in migrations.load("sqlite"):
            if m.version < 41:  # the schema before webhook cursor tokens
                for statement in _statements(m.sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (m.version, m.name))
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
