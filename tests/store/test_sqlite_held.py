"""The SQLite store's events held back to the end of their transaction (``store/sqlite/held.py``).

A message write takes its events' positions in memory and the rows are logged together when the
transaction is settled. These tests group writes in one transaction (they are made in one turn of
the loop), mix in writes that log their events at once, make writes fail inside a group and write
through another connection, and check every time that the positions handed out are exactly the
log's rows, in order, with no gap and no reuse.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline.store.base import Effects, NotAllowed, Outcome
from threadline.store.records import MessageDraft, MessageRecord, ParticipantRecord
from threadline.store.sqlite import SqliteStore

from .helpers import T0, make_thread, make_users, send

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "h.db")
    await store.open()
    yield store
    await store.close()


def _log(path: str) -> list[tuple[int, str, str]]:
    """The event log as another connection sees it: (position, type, payload)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT position, type, payload FROM events ORDER BY position").fetchall()
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()[0]
    assert seq == rows[-1][0]  # the counter stands at the last row, as AUTOINCREMENT leaves it
    return [(int(p), str(t), bytes(b).decode()) for p, t, b in rows]


def _positions(outcomes: list[Outcome[MessageRecord]]) -> list[int]:
    return [e.position for o in outcomes for e in o.events]


async def test_a_group_of_sends_and_a_membership_change_logs_every_event_in_order(sqlite: SqliteStore) -> None:
    store = sqlite
    a, b, c = await make_users(store, 3)
    one = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    two = (await make_thread(store, b, [a])).value[0].thread_id  # type: ignore[index]
    start = _log(store.path)[-1][0]
    groups = store._writer.groups  # type: ignore[union-attr]
    added: Effects[MessageRecord | None] = Effects(events=lambda m: [("participantsAdded", b"c")] if m else [])
    # One turn: sends on two threads, a membership change (its event logged at once), more sends.
    first = [send(store, tid, a, f"m{k}", T0 + k) for k, tid in enumerate((one, two, one))]
    joined = store.add_participants(
        one, [ParticipantRecord(c)], MessageDraft("participantAdded", participants=[ParticipantRecord(c)],
                                                  initiator_id=a), T0 + 5, added,
    )
    later = [send(store, tid, b, f"n{k}", T0 + 10 + k) for k, tid in enumerate((one, two))]
    results = await asyncio.gather(*first, joined, *later)
    assert store._writer.groups == groups + 1  # type: ignore[union-attr]  # one transaction
    sends: list[Outcome[MessageRecord]] = [*results[:3], *results[4:]]  # type: ignore[list-item]
    change = results[3]
    assert _positions(sends[:3]) == [start + 1, start + 2, start + 3]
    assert [e.position for e in change.events] == [start + 4]
    assert _positions(sends[3:]) == [start + 5, start + 6]
    log = _log(store.path)
    assert [p for p, _, _ in log if p > start] == list(range(start + 1, start + 7))
    by_position = {p: (t, payload) for p, t, payload in log}
    for outcome in sends:
        (event,) = outcome.events
        assert by_position[event.position] == ("chatMessageReceived", outcome.value.id)  # type: ignore[union-attr]
    assert by_position[start + 4] == ("participantsAdded", "c")
    # c joined after the first three events: the later send on its thread reaches it, the earlier did not.
    assert c not in sends[0].events[0].recipients and c in sends[3].events[0].recipients
    replayed = await store.events_since(c, start, 100)
    assert [e.position for e in replayed] == [start + 4, start + 5]


async def test_a_failing_write_in_a_group_leaves_no_row_and_no_gap(sqlite: SqliteStore) -> None:
    store = sqlite
    a, b, stranger = await make_users(store, 3)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    start = _log(store.path)[-1][0]
    reruns = store._writer.reruns  # type: ignore[union-attr]

    def holds_then_fails(conn: sqlite3.Connection) -> None:
        # A message write that took a position for its event, then failed: its row must never be logged.
        store._log_events(conn, tid, [("chatMessageReceived", b"lost")], T0, T0,
                          members=store._members.of(conn, tid))
        raise ValueError("fails after holding an event")

    results = await asyncio.gather(
        send(store, tid, a, "one", T0 + 1),
        store._write(holds_then_fails, keeps_members=True),
        send(store, tid, b, "two", T0 + 2),
        send(store, tid, stranger, "refused", T0 + 3),  # refused before it takes a position
        send(store, tid, a, "three", T0 + 4),
        return_exceptions=True,
    )
    assert store._writer.reruns == reruns + 1  # type: ignore[union-attr]  # run again, a savepoint each
    assert isinstance(results[1], ValueError) and isinstance(results[3], NotAllowed)
    held: list[Outcome[MessageRecord]] = [results[0], results[2], results[4]]  # type: ignore[list-item]
    assert _positions(held) == [start + 1, start + 2, start + 3]
    log = [(p, payload) for p, _, payload in _log(store.path) if p > start]
    assert log == [(start + 1 + k, o.value.id) for k, o in enumerate(held)]  # type: ignore[union-attr]
    after = await send(store, tid, b, "four", T0 + 5)
    assert [e.position for e in after.events] == [start + 4]


async def test_events_logged_through_another_connection_move_the_next_position_on(tmp_path: Path) -> None:
    """Another store on the file (the CLI, a second process) logs events: this one's next position follows them."""
    store, other = SqliteStore(tmp_path / "h.db"), SqliteStore(tmp_path / "h.db")
    await store.open()
    await other.open()
    try:
        a, b = await make_users(store, 2)
        tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        mine = await send(store, tid, a, "mine", T0 + 1)
        theirs = await asyncio.gather(*(send(other, tid, b, f"theirs {k}", T0 + 2 + k) for k in range(3)))
        again = await send(store, tid, a, "mine again", T0 + 9)
        p = mine.events[0].position
        assert _positions(theirs) == [p + 1, p + 2, p + 3]
        assert [e.position for e in again.events] == [p + 4]
        assert [q for q, _, _ in _log(store.path)][-5:] == [p, p + 1, p + 2, p + 3, p + 4]
    finally:
        await other.close()
        await store.close()


async def test_more_held_events_than_one_insert_takes_are_logged_in_order(sqlite: SqliteStore) -> None:
    """A transaction holding more rows than one INSERT logs (64): several INSERTs, still every row, in order."""
    store = sqlite
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    start = _log(store.path)[-1][0]
    items = [("chatMessageReceived", f"e{k}".encode()) for k in range(150)]

    def many(conn: sqlite3.Connection) -> list[int]:
        events = store._log_events(conn, tid, items, T0, T0, members=store._members.of(conn, tid))
        return [e.position for e in events]

    positions, sent = await asyncio.gather(store._write(many, keeps_members=True), send(store, tid, a, "x", T0 + 1))
    assert positions == list(range(start + 1, start + 151))
    assert [e.position for e in sent.events] == [start + 151]
    log = [(p, payload) for p, _, payload in _log(store.path) if p > start]
    assert log == [(start + 1 + k, f"e{k}") for k in range(150)] + [(start + 151, sent.value.id)]  # type: ignore[union-attr]
