"""What a send's write touches in the indexes (migrations 0048, 0049), and the admin pages' activity order.

A send updates its thread's row (sequence, last message id and time). No index of ``threads`` may
read those columns: on PostgreSQL that makes the update HOT (no index entry written), on SQLite
it spares an index delete and insert. The admin pages still list threads by exact latest activity.
A send's message goes into ``messages_id`` id first, so the sends of one transaction on many
threads add to the end of that index, not to a leaf per thread.
"""

from __future__ import annotations

import random
import sqlite3

import asyncpg
import pytest

from threadline.store.base import Effects, Store
from threadline.store.records import MessageDraft, ParticipantRecord, ThreadRecord

from .conftest import Engine
from .helpers import T0, make_users

pytestmark = pytest.mark.anyio

MINUTE = 60_000
#: The columns every send writes on its thread's row.
HOT = ("last_seq", "last_message_id", "last_message_ms")


async def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    """Rows of a raw read on the engine's database, outside the store."""
    if engine.name == "sqlite":
        conn = sqlite3.connect(engine.url)
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()
    pg = await asyncpg.connect(engine.url)
    try:
        return [tuple(r) for r in await pg.fetch(sql)]
    finally:
        await pg.close()


async def _index_definitions_of(engine: Engine, table: str) -> list[str]:
    if engine.name == "sqlite":
        sql = f"SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}' AND sql IS NOT NULL"
    else:
        sql = f"SELECT indexdef FROM pg_indexes WHERE tablename = '{table}'"
    return [str(r[0]) for r in await _rows(engine, sql)]


async def _send(store: Store, tid: str, sender: str, now_ms: int) -> None:
    outcome = await store.send_message(tid, MessageDraft("text", sender_id=sender, content="x"), now_ms, Effects())
    assert outcome.value is not None


async def test_no_index_of_threads_reads_what_a_send_writes(engine: Engine) -> None:
    definitions = await _index_definitions_of(engine, "threads")
    assert any("activity_minute" in d for d in definitions)  # the admin pages' index
    for definition in definitions:
        assert not any(column in definition for column in HOT), definition


async def test_message_ids_are_indexed_id_first(engine: Engine, store: Store) -> None:
    (definition,) = [d for d in await _index_definitions_of(engine, "messages") if "messages_id" in d]
    assert definition.replace('"', "").endswith("(id, thread_id)"), definition
    (alice,) = await make_users(store, 1)
    await store.create_thread(ThreadRecord("19:ids@thread.v2", "t", T0, alice), [ParticipantRecord(alice)], [],
                              Effects())
    await _send(store, "19:ids@thread.v2", alice, T0 + 5)
    found = await store.get_message("19:ids@thread.v2", str(T0 + 5))
    assert found is not None and (found.sequence_id, found.content) == (1, "x")
    assert await store.get_message("19:other@thread.v2", str(T0 + 5)) is None


async def test_the_minute_follows_every_write_of_the_activity(engine: Engine, store: Store) -> None:
    """Creation, sends within a minute, across minutes, and a clock that went back: the column is always right."""
    (alice,) = await make_users(store, 1)
    quiet, busy = "19:quiet@thread.v2", "19:busy@thread.v2"
    for tid, created in ((quiet, T0 + 59_999), (busy, T0)):
        await store.create_thread(ThreadRecord(tid, "t", created, alice), [ParticipantRecord(alice)], [], Effects())
    for now in (T0 + 1, T0 + 59_000, T0 + 61_000, T0 + 3 * MINUTE + 5, T0 + 2 * MINUTE):
        await _send(store, busy, alice, now)
        rows = await _rows(engine, "SELECT id, activity_minute, coalesce(last_message_ms, created_ms) FROM threads")
        assert {r[0]: (r[1], r[2] // MINUTE) for r in rows} == {
            quiet: ((T0 + 59_999) // MINUTE, (T0 + 59_999) // MINUTE),
            busy: (now // MINUTE, now // MINUTE),
        }


async def test_admin_pages_list_threads_by_exact_latest_activity(engine: Engine, store: Store) -> None:
    """Ties on the time, on the minute and across minutes; pages of every size give the one right order."""
    (alice,) = await make_users(store, 1)
    pick = random.Random(48)
    activity: dict[str, int] = {}
    for n in range(24):
        tid = f"19:{n:02d}{pick.choice('ab')}@thread.v2"
        created = T0 + pick.choice((0, 1, 59_999, MINUTE, MINUTE + 1, 5 * MINUTE))
        await store.create_thread(ThreadRecord(tid, "t", created, alice), [ParticipantRecord(alice)], [], Effects())
        activity[tid] = created
        if n % 3:
            sent = created + pick.choice((0, 1, 30_000, MINUTE - 1, 2 * MINUTE))
            await _send(store, tid, alice, sent)
            activity[tid] = sent
    want = sorted(activity, key=lambda t: (activity[t], t.encode()), reverse=True)
    for size in (1, 2, 5, 24, 50):
        listed: list[str] = []
        after = None
        while True:
            page = await store.admin_threads(topic=None, member=None, after=after, limit=size)
            listed += [thread.id for thread, _ in page]
            if len(page) < size:
                break
            last = page[-1][0]
            after = (last.last_message_ms if last.last_message_ms is not None else last.created_ms, last.id)
        assert listed == want, size
