"""``threadline_send_batch`` (set-based; 0045, replaced by 0046, 0050) writes what ``threadline_send_many`` does.

Random states (threads of one partition and of others, deleted threads, a missing one; members
in, out, gone and back, with share-history windows; idempotency keys stored earlier) and random
batches (with no key at all, keyed sends, a key twice or more in one batch, sends with an event or
none, message ids below a thread's last) run through both functions from the same state: one transaction, the
old function under a savepoint rolled back before the new one runs. Their result rows and the
rows of every table they write must be equal.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from threadline.store.positions import partition_of
from threadline.store.postgres import migrate

from ..pg import fresh_database, require_postgres, until_waiting_for_a_lock
from .helpers import T0

pytestmark = pytest.mark.anyio

PARTITIONS = 32
ARGS = ", ".join(f"${k}" for k in range(1, 18))
OLD = f"SELECT refused, replayed, seq, message_id, base, recipients FROM threadline_send_many({ARGS})"
NEW = f"SELECT refused, replayed, seq, message_id, base, recipients FROM threadline_send_batch({ARGS})"
#: Every row these sends write, in a fixed order (an idempotency key's created_ms is the wall clock).
DUMPS = {
    "threads": "SELECT * FROM threads ORDER BY id",
    "messages": "SELECT * FROM messages ORDER BY thread_id, seq",
    "events": "SELECT * FROM events ORDER BY position",
    "idempotency": "SELECT scope, key, result FROM idempotency ORDER BY scope, key",
    "event_partitions": "SELECT * FROM event_partitions ORDER BY id",
    "participants": "SELECT * FROM participants ORDER BY id",
}
SCOPES, KEYS = ("sa", "sb"), ("k1", "k2", "k3")


@pytest.fixture
def database() -> Iterator[str]:
    """A migrated database of its own."""
    require_postgres()
    with fresh_database("threadline_sendeq") as url:
        yield url


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database)
    try:
        await migrate(connection)
        yield connection
    finally:
        await connection.close()


def _thread_ids(rng: random.Random) -> list[str]:
    """Five thread ids, the first two of one partition."""
    by_part: dict[int, list[str]] = {}
    while True:
        tid = f"19:{rng.getrandbits(64):016x}@thread.v2"
        same = by_part.setdefault(partition_of(tid, PARTITIONS), [])
        same.append(tid)
        if len(same) == 2:
            others = [ids[0] for part, ids in by_part.items() if ids is not same][:3]
            if len(others) == 3:
                return same + others


async def _build_state(conn: asyncpg.Connection, rng: random.Random) -> tuple[list[str], list[str]]:
    """Write a random state (in the open transaction); return its threads and users."""
    threads, users = _thread_ids(rng), [f"8:acs:u{k}" for k in range(6)]
    stays: list[tuple[str, str, int, int | None, int]] = []
    for tid in threads:
        part = partition_of(tid, PARTITIONS)
        value = rng.randint(0, 300)
        await conn.execute("UPDATE event_partitions SET value = $1 WHERE id = $2", value, part)
        await conn.execute(
            "INSERT INTO threads (id, topic, created_ms, created_by, deleted_ms, last_message_ms, last_seq, "
            "last_message_id) VALUES ($1, 't', $2, $3, $4, $5, $6, $7)",
            tid, T0, users[0], T0 if rng.random() < 0.15 else None, T0, rng.randint(0, 40), T0 + rng.randint(-30, 30),
        )

        def pos(x: int, value: int = value, part: int = part) -> int:
            return (value + x) * PARTITIONS + part  # the partition's x-th position from now (1: the next)

        for user in users:
            plan = rng.choice(("none", "none", "in", "in", "in", "gone", "back"))
            history = rng.choice((0, 0, T0 - 100, T0, T0 + 20, T0 + 60))
            joined = rng.randint(-6, 3)  # joined after the next positions: no recipient of them
            if plan in ("gone", "back"):
                left = joined + rng.randint(0, 6)  # left at or after some of the next positions, or before
                stays.append((tid, user, pos(joined), pos(left), history))
            if plan in ("in", "back"):
                stays.append((tid, user, pos(joined if plan == "in" else joined + 6), None, history))
    rng.shuffle(stays)  # recipients come in participants.id order, not the users' order
    await conn.executemany(
        "INSERT INTO participants (thread_id, user_id, joined_pos, left_pos, share_history_ms) "
        "VALUES ($1, $2, $3, $4, $5)", stays,
    )
    for scope in SCOPES:
        for key in KEYS:
            if rng.random() < 0.3:
                await conn.execute(
                    "INSERT INTO idempotency VALUES ($1, $2, $3, 0)", scope, key, f"stored:{scope}:{key}"
                )
    return threads, users


def _batch(rng: random.Random, threads: list[str], users: list[str]) -> list[Any]:
    """A random batch: the 17 arguments of both functions."""
    marks = iter(range(10**17 + rng.randint(0, 10**16), 10**18))
    sends = []
    keyed_share = rng.choice((0.0, 0.5))  # half the batches have no key at all (0050's path)
    for _ in range(rng.randint(1, 40)):
        tid = rng.choice([*threads, *threads, "19:missing@thread.v2"])
        keyed = rng.random() < keyed_share
        now = T0 + rng.randint(-40, 40)
        id_mark, seq_mark = str(next(marks)), str(next(marks))
        event = rng.random() < 0.75
        payload = f'{{"id": "{id_mark}", "version": "{id_mark}", "sequenceId": "{seq_mark}", "n": "12"}}'
        sends.append((
            tid, rng.choice(SCOPES) if keyed else None, rng.choice(KEYS) if keyed else None,
            rng.choice(("text", "html")), rng.choice(users), rng.choice((None, "Ann")),
            rng.choice(("hi", "123456789012345678", "")), rng.choice((None, '{"a": "1"}')), now, id_mark, seq_mark,
            f"{{\"id\": \"{id_mark}\", \"seq\": \"{seq_mark}\"}}" if keyed else "",
            "chatMessageReceived" if event else None, payload.encode() if event else None,
            rng.choice((None, now, T0 + 20, T0 - 200)), partition_of(tid, PARTITIONS),
        ))
    if rng.random() < 0.5:  # as SendTurn orders them; a thread's sends keep their order either way
        sends.sort(key=lambda s: (s[15], s[0]))
    return [list(column) for column in zip(*sends, strict=True)] + [PARTITIONS]


async def _run(conn: asyncpg.Connection, sql: str, args: list[Any]) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    rows = [tuple(r) for r in await conn.fetch(sql, *args)]
    return rows, {name: [tuple(r) for r in await conn.fetch(query)] for name, query in DUMPS.items()}


def _kinds(rows: list[tuple[Any, ...]], args: list[Any]) -> Counter[str]:
    """What the batch exercised, from the old function's rows."""
    seen: Counter[str] = Counter()
    for (refused, replayed, seq, _, base, recipients), event in zip(rows, args[12], strict=True):
        if refused:
            seen[refused] += 1
        elif replayed is not None:
            seen["replay of this batch" if replayed.startswith("{") else "replay of a stored key"] += 1
        elif base is None:
            seen["written, no event"] += 1
        else:
            seen["written, with recipients" if recipients else "written, nobody hears"] += 1
        assert (seq is None) == (refused is not None or replayed is not None)
        assert (base is None) == (event is None or seq is None)
    return seen


@pytest.mark.parametrize("seed", range(4))
async def test_random_batches_write_what_the_subtransaction_per_send_function_writes(
    conn: asyncpg.Connection, seed: int
) -> None:
    rng = random.Random(seed)
    seen: Counter[str] = Counter()
    for _ in range(60):
        state = conn.transaction()
        await state.start()
        try:
            threads, users = await _build_state(conn, rng)
            args = _batch(rng, threads, users)
            old = conn.transaction()  # nested: a savepoint, rolled back to undo the old function's writes
            await old.start()
            old_rows, old_state = await _run(conn, OLD, args)
            await old.rollback()
            new_rows, new_state = await _run(conn, NEW, args)
        finally:
            await state.rollback()
        assert new_rows == old_rows
        assert new_state == old_state
        seen += _kinds(old_rows, args)
        seen["keyless batch" if all(scope is None for scope in args[1]) else "keyed batch"] += 1
    for kind in ("keyless batch", "keyed batch", "TL404", "TL403", "replay of this batch", "replay of a stored key",
                 "written, no event", "written, with recipients", "written, nobody hears"):
        assert seen[kind] > 0, (kind, seen)




@pytest.mark.parametrize("other_commits", [True, False])
async def test_a_key_claimed_by_another_node_is_waited_for_then_replayed_or_taken(
    conn: asyncpg.Connection, database: str, other_commits: bool
) -> None:
    """As threadline_send: the claim waits for the other transaction; its key then replays, or is ours."""
    tid, user = "19:claimed@thread.v2", "8:acs:a"
    part = partition_of(tid, PARTITIONS)
    await conn.execute(
        "INSERT INTO threads (id, topic, created_ms, created_by) VALUES ($1, 't', $2, $3)", tid, T0, user
    )
    await conn.execute("INSERT INTO participants (thread_id, user_id, joined_pos) VALUES ($1, $2, 0)", tid, user)
    other = await asyncpg.connect(database)
    try:
        await other.execute("BEGIN")
        await other.execute("INSERT INTO idempotency VALUES ('sa', 'k1', '', 0)")
        marks = ["100000000000000001", "100000000000000002", "100000000000000003", "100000000000000004"]
        args: list[Any] = [
            [tid, tid], ["sa", None], ["k1", None], ["text", "text"], [user, user], [None, None], ["a", "b"],
            [None, None], [T0 + 1, T0 + 2], marks[0::2], marks[1::2], [f"mine:{marks[0]}", ""],
            ["chatMessageReceived", None], [b"p", None], [None, None], [part, part], PARTITIONS,
        ]
        batch = asyncio.ensure_future(conn.fetch(NEW, *args))
        await until_waiting_for_a_lock(other, "the batch's claim on the key")
        assert not batch.done()
        if other_commits:
            await other.execute("UPDATE idempotency SET result = 'theirs' WHERE scope = 'sa'")
            await other.execute("COMMIT")
        else:
            await other.execute("ROLLBACK")
        rows = [tuple(r) for r in await asyncio.wait_for(batch, 10)]
    finally:
        await other.close()
    value = await conn.fetchval("SELECT value FROM event_partitions WHERE id = $1", part)
    if other_commits:  # the first send replays the other's result; the second is written all the same
        assert rows == [(None, "theirs", None, None, None, None), (None, None, 1, T0 + 2, None, [])]
        assert value == 0
    else:
        assert rows == [(None, None, 1, T0 + 1, part, [user]), (None, None, 2, T0 + 2, None, [])]
        assert value == 1
    stored = await conn.fetchval("SELECT result FROM idempotency WHERE scope = 'sa' AND key = 'k1'")
    assert stored == ("theirs" if other_commits else f"mine:{T0 + 1}")
    texts = await conn.fetch("SELECT seq, content FROM messages WHERE thread_id = $1 ORDER BY seq", tid)
    assert [tuple(r) for r in texts] == ([(1, "b")] if other_commits else [(1, "a"), (2, "b")])


async def test_a_counter_moved_while_the_batch_waited_for_it_gives_the_positions_after_the_move(
    conn: asyncpg.Connection, database: str
) -> None:
    """The batch reads its partitions' values as it locks them (0046): the values the lock waited for."""
    tids = _thread_ids(random.Random(7))[:2]  # two threads of one partition: one batch, one counter
    part, user = partition_of(tids[0], PARTITIONS), "8:acs:a"
    for tid in tids:
        await conn.execute(
            "INSERT INTO threads (id, topic, created_ms, created_by) VALUES ($1, 't', $2, $3)", tid, T0, user
        )
        await conn.execute("INSERT INTO participants (thread_id, user_id, joined_pos) VALUES ($1, $2, 0)", tid, user)
    before = await conn.fetchval("SELECT value FROM event_partitions WHERE id = $1", part)
    other = await asyncpg.connect(database)
    try:
        await other.execute("BEGIN")
        await other.execute("UPDATE event_partitions SET value = value + 5 WHERE id = $1", part)
        marks = [str(10**17 + k) for k in range(6)]
        args: list[Any] = [
            [tids[0], tids[1], tids[0]], [None] * 3, [None] * 3, ["text"] * 3, [user] * 3, [None] * 3,
            ["a", "b", "c"], [None] * 3, [T0 + 1, T0 + 2, T0 + 3], marks[0::2], marks[1::2], [""] * 3,
            ["chatMessageReceived"] * 3, [b"p"] * 3, [None] * 3, [part] * 3, PARTITIONS,
        ]
        batch = asyncio.ensure_future(conn.fetch(NEW, *args))
        await until_waiting_for_a_lock(other, "the batch's claim on the key")
        assert not batch.done()
        await other.execute("COMMIT")
        rows = [tuple(r) for r in await asyncio.wait_for(batch, 10)]
    finally:
        await other.close()
    first = (before + 5) * PARTITIONS + part  # the position before the batch's first event
    assert [(r[4], r[5]) for r in rows] == [(first + k * PARTITIONS, [user]) for k in range(3)]
    assert await conn.fetchval("SELECT value FROM event_partitions WHERE id = $1", part) == before + 8
    positions = await conn.fetch("SELECT position, thread_id FROM events ORDER BY position")
    assert [tuple(r) for r in positions] == [(first + k * PARTITIONS, tids[n]) for k, n in ((1, 0), (2, 1), (3, 0))]
