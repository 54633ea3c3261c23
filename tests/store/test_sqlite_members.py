"""The SQLite store's live members kept in memory (``store/sqlite/members.py``): right because it forgets.

A send checks its sender and lists its event's recipients from memory; these tests change the
members every way that must make it forget (another connection's commit, a write of the store
itself, a transaction that changed members, too many members held) and check who may send and
who receives right after.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.store.base import Effects, NotAllowed, Outcome, Store
from threadline.store.records import MessageDraft, MessageRecord, ParticipantRecord, ReadReceiptRecord
from threadline.store.sqlite import SqliteStore
from threadline.store.sqlite.members import LiveMembers, Members
from threadline.store.writer import Writer

from .helpers import T0, make_thread, make_users, send
from .writer_helpers import connect, setup

pytestmark = pytest.mark.anyio


def _removal(initiator: str, user: str) -> MessageDraft:
    return MessageDraft("participantRemoved", participants=[ParticipantRecord(user)], initiator_id=initiator)


async def _send_revealing(store: Store, tid: str, sender: str, now: int) -> Outcome[MessageRecord]:
    """A send whose event reveals its message: only members whose window holds it receive it."""
    effects: Effects[MessageRecord] = Effects(
        events=lambda m: [("chatMessageReceived", m.id.encode())], reveals=lambda m: m.created_ms
    )
    return await store.send_message(tid, MessageDraft("text", sender_id=sender, content="x"), now, effects)


class _Begun:
    """A writer session that only calls ``on_begin`` at each transaction's start."""

    def __init__(self, on_begin: Callable[[sqlite3.Connection], None]) -> None:
        self.on_begin = on_begin

    def begin(self, conn: sqlite3.Connection) -> None:
        self.on_begin(conn)

    def settle(self, conn: sqlite3.Connection) -> None:
        pass

    def abandon(self) -> None:
        pass


def _events(kind: str) -> Effects[MessageRecord | None]:
    return Effects(events=lambda m: [(kind, b"{}")] if m is not None else [])


async def test_members_changed_by_another_connection_take_effect_at_the_next_write(tmp_path: Path) -> None:
    """The CLI or another process on the file: SQLite's data_version tells the writer to forget."""
    store = SqliteStore(tmp_path / "t.db")
    await store.open()
    try:
        a, b, c = await make_users(store, 3)
        tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        first = await send(store, tid, b, "before", T0 + 1)
        assert [e.recipients for e in first.events] == [(a, b)]
        assert store._members.reads == 1

        other = sqlite3.connect(store.path, isolation_level=None)
        try:  # b leaves and c joins through another connection, committed at once
            top = other.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()[0]
            other.execute("UPDATE participants SET left_pos = ? WHERE thread_id = ? AND user_id = ?", (top, tid, b))
            other.execute(
                "INSERT INTO participants (thread_id, user_id, share_history_ms, joined_pos) VALUES (?, ?, 0, ?)",
                (tid, c, top + 1),
            )
        finally:
            other.close()

        with pytest.raises(NotAllowed) as refused:
            await send(store, tid, b, "after", T0 + 2)
        assert refused.value.thread_missing is False
        after = await send(store, tid, a, "after", T0 + 3)
        assert [e.recipients for e in after.events] == [(a, c)]
        assert (await send(store, tid, c, "joined", T0 + 4)).value is not None
    finally:
        await store.close()


async def test_a_second_store_on_the_file_removing_a_member_stops_its_sends_and_events(tmp_path: Path) -> None:
    first, second = SqliteStore(tmp_path / "t.db"), SqliteStore(tmp_path / "t.db")
    await first.open()
    await second.open()
    try:
        a, b = await make_users(first, 2)
        tid = (await make_thread(first, a, [b])).value[0].thread_id  # type: ignore[index]
        await send(first, tid, b, "warm", T0 + 1)  # first now holds the thread's members
        removed = await second.remove_participant(tid, b, _removal(a, b), T0 + 2, _events("participantRemoved"))
        assert removed.value is not None
        with pytest.raises(NotAllowed):
            await send(first, tid, b, "late", T0 + 3)
        sent = await send(first, tid, a, "x", T0 + 4)
        assert sent.value is not None and [e.recipients for e in sent.events] == [(a,)]
        receipt = await first.send_read_receipt(
            ReadReceiptRecord(tid, a, sent.value.id, T0 + 5),
            Effects(events=lambda r: [("readReceiptReceived", b"{}")], reveals=lambda r: T0 + 4),
        )
        assert [e.recipients for e in receipt.events] == [(a,)]
    finally:
        await first.close()
        await second.close()


async def test_the_store_s_own_membership_writes_take_effect_at_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    await store.open()
    try:
        a, b, c = await make_users(store, 3)
        tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        # The members are read, the removal runs and the next send reads again: all in one turn
        # of the loop, so in one transaction (the writer's group).
        added = MessageDraft("participantAdded", participants=[ParticipantRecord(c)], initiator_id=a)
        outcomes = await asyncio.gather(
            send(store, tid, b, "in", T0 + 1),
            store.remove_participant(tid, b, _removal(a, b), T0 + 2, _events("participantRemoved")),
            store.add_participants(tid, [ParticipantRecord(c, share_history_ms=T0 + 10)], added, T0 + 3,
                                   _events("participantAdded")),
            send(store, tid, b, "out", T0 + 4),
            _send_revealing(store, tid, a, T0 + 5),
            _send_revealing(store, tid, a, T0 + 11),
            return_exceptions=True,
        )
        first, _, _, late, old, new = outcomes
        assert [e.recipients for e in first.events] == [(a, b)]  # type: ignore[union-attr]
        assert isinstance(late, NotAllowed) and late.thread_missing is False
        assert [e.recipients for e in old.events] == [(a,)]  # type: ignore[union-attr]  # before c's window
        assert [e.recipients for e in new.events] == [(a, c)]  # type: ignore[union-attr]
    finally:
        await store.close()


def test_a_transaction_that_changed_members_leaves_nothing_for_the_next(tmp_path: Path) -> None:
    """It may roll back: members read after the change are forgotten when the next one begins."""
    conn = sqlite3.connect(str(tmp_path / "m.db"), isolation_level=None)
    conn.execute("CREATE TABLE participants (id INTEGER PRIMARY KEY, thread_id TEXT, user_id TEXT, "
                 "share_history_ms INTEGER, left_pos INTEGER)")
    conn.execute("INSERT INTO participants (thread_id, user_id, share_history_ms) VALUES ('t', 'a', 0)")
    members = LiveMembers()
    conn.execute("BEGIN IMMEDIATE")
    members.begin(conn)
    assert members.of(conn, "t").pairs == (("a", 0),)
    assert members.of(conn, "t").ids == frozenset({"a"})
    assert (members.reads, members.hits) == (1, 1)
    members.changing()  # a membership write: it adds b, then the transaction rolls back
    conn.execute("INSERT INTO participants (thread_id, user_id, share_history_ms) VALUES ('t', 'b', 5)")
    assert members.of(conn, "t").pairs == (("a", 0), ("b", 5))  # read again, as the transaction sees it
    assert members.of(conn, "t").window(4) == ("a",)
    assert members.of(conn, "t").window(5) == ("a", "b")  # a window holds a message created at its start
    assert members.of(conn, "t").window(None) == ("a", "b")
    conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    members.begin(conn)
    assert members.of(conn, "t").pairs == (("a", 0),)  # b was never committed
    assert members.reads == 3
    members.begin(conn)  # a transaction that changed nothing keeps what it read
    members.of(conn, "t")
    assert members.reads == 3
    conn.execute("ROLLBACK")
    conn.close()


def test_it_holds_a_bounded_number_of_members(tmp_path: Path) -> None:
    conn = sqlite3.connect(str(tmp_path / "m.db"), isolation_level=None)
    conn.execute("CREATE TABLE participants (id INTEGER PRIMARY KEY, thread_id TEXT, user_id TEXT, "
                 "share_history_ms INTEGER, left_pos INTEGER)")
    conn.executemany("INSERT INTO participants (thread_id, user_id, share_history_ms) VALUES (?, ?, 0)",
                     [(t, f"{t}-{k}") for t in ("t1", "t2", "t3") for k in range(2)])
    members = LiveMembers(max_members=6)
    members.begin(conn)
    members.of(conn, "t1")  # two members and the thread: three entries
    members.of(conn, "t2")
    members.of(conn, "t1")
    assert (members.reads, members.hits) == (2, 1)
    members.of(conn, "t3")  # nine would be held: everything is forgotten first
    members.of(conn, "t1")
    members.of(conn, "t3")
    assert (members.reads, members.hits) == (4, 2)
    for k in range(20):  # threads that do not exist count too: no id adds nothing
        missing = members.of(conn, f"missing-{k}")
        assert missing.pairs == () and missing.ids == frozenset() and missing.window(None) == ()
    assert len(members._threads) <= 6
    conn.close()


def test_the_writer_begins_the_session_at_every_transaction_the_rerun_of_a_group_included(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    begun: list[bool] = []

    def write(k: int, fails: bool):  # type: ignore[no-untyped-def]
        def run(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, f"v{k}"))
            if fails:
                raise ValueError("fails")
            return k
        return run

    async def main() -> list[object]:
        writer = Writer(lambda: connect(path), inline=True, session=_Begun(lambda c: begun.append(c.in_transaction)))
        await writer.start(setup)
        clean = await asyncio.gather(*(writer.run(write(k, False)) for k in range(3)))
        assert begun == [True]
        mixed = await asyncio.gather(*(writer.run(write(k, k == 4)) for k in range(3, 6)), return_exceptions=True)
        await writer.stop()
        return [*clean, *mixed]

    results = asyncio.run(main())
    assert results[:3] == [0, 1, 2] and results[3] == 3 and isinstance(results[4], ValueError) and results[5] == 5
    assert begun == [True, True, True]  # the clean group; the mixed one, then its rerun with savepoints


def test_a_failing_session_begin_rolls_its_transaction_back_and_fails_the_group(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    fail = [True]

    def on_begin(conn: sqlite3.Connection) -> None:
        if fail[0]:
            raise sqlite3.OperationalError("disk I/O error")

    async def main() -> tuple[list[object], int]:
        writer = Writer(lambda: connect(path), inline=True, session=_Begun(on_begin))
        await writer.start(setup)
        failed = await asyncio.gather(writer.run(lambda c: c.execute("INSERT INTO t VALUES (1, 'x')").rowcount),
                                      return_exceptions=True)
        fail[0] = False
        held = await writer.run(lambda c: c.execute("INSERT INTO t VALUES (2, 'y')").rowcount)
        await writer.stop()
        return failed, held

    failed, held = asyncio.run(main())
    assert len(failed) == 1 and isinstance(failed[0], Exception) and "disk I/O error" in str(failed[0])
    assert held == 1
    with sqlite3.connect(str(path)) as conn:
        assert conn.execute("SELECT k, v FROM t").fetchall() == [(2, "y")]


@given(
    pairs=st.lists(st.tuples(st.text(max_size=8), st.integers(min_value=0, max_value=2**53)), max_size=8),
    message_ms=st.none() | st.integers(min_value=0, max_value=2**53),
)
def test_a_window_is_every_live_member_whose_share_time_is_not_after_the_message(
    pairs: list[tuple[str, int]], message_ms: int | None
) -> None:
    members = Members(tuple(pairs))
    expected = tuple(user for user, shared in pairs if message_ms is None or shared <= message_ms)
    assert members.window(message_ms) == expected
    assert members.ids == frozenset(user for user, _ in pairs)
