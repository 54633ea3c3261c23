"""At most one batch in flight per thread: a busy thread's sends are held, in order, then go out together.

A batch is kept in flight by holding its thread's row lock from another connection (as a long
write on another node would): ``threadline_send_batch`` and ``threadline_send`` both lock the
thread row first, so the batch waits there until the test lets go.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from threadline.store import dialect
from threadline.store.base import NotAllowed, Outcome, StoreUnavailable
from threadline.store.pg_send import MAX_BATCH
from threadline.store.postgres import PostgresStore
from threadline.store.records import MessageRecord

from .helpers import T0, make_thread, make_users, send

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def opened(url: str, **options: Any) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(url, **options)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


class RowLock:
    """Another connection holding a thread's row lock in an open transaction."""

    def __init__(self, conn: asyncpg.Connection, tid: str) -> None:
        self.conn = conn
        self.tid = tid

    @classmethod
    async def take(cls, url: str, tid: str) -> RowLock:
        conn = await asyncpg.connect(url)
        await conn.execute("BEGIN")
        await conn.execute("SELECT 1 FROM threads WHERE id = $1 FOR UPDATE", tid)
        return cls(conn, tid)

    async def waiters(self) -> int:
        """Statements of the test's database waiting on a lock (the blocked batches)."""
        return int(await self.conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ))

    async def until_waiting(self, count: int) -> None:
        for _ in range(500):
            if await self.waiters() == count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {count} blocked statements, have {await self.waiters()}")

    async def release(self, *, delete_thread: bool = False) -> None:
        if delete_thread:  # the store's own delete, committed under the lock
            await self.conn.fetchrow(dialect.DELETE_THREAD.postgres, T0 + 1, self.tid, None, None)
        await self.conn.execute("COMMIT")
        await self.conn.close()


async def turns(count: int) -> None:
    """Let ``count`` turns of the event loop go by."""
    for _ in range(count):
        await asyncio.sleep(0)


def seqs(outcomes: list[Outcome[MessageRecord]]) -> list[int]:
    return [o.value.sequence_id for o in outcomes]  # type: ignore[union-attr]


async def texts(store: PostgresStore, tid: str) -> list[str]:
    listed = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=500)
    return [m.content for m in reversed(listed) if m.type == "text"]


async def test_a_hot_threads_sends_from_many_tasks_are_gap_free_in_call_order(postgres_url: str) -> None:
    async with opened(postgres_url) as store:
        a, b = await make_users(store, 2)
        tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        calls = itertools.count()
        made: list[tuple[int, int, Outcome[MessageRecord]]] = []  # (call order, task, outcome)

        async def writer(task: int) -> None:
            for k in range(12):
                order = next(calls)  # send_message hands the send over before its first await
                outcome = await send(store, tid, (a, b)[task % 2], f"{task}:{k}", T0 + 2)
                made.append((order, task, outcome))
                if k % 3 == task % 3:
                    await asyncio.sleep(0.001 * (task % 4))  # tasks drift apart: sends land in many turns

        await asyncio.gather(*(writer(t) for t in range(24)))
        statements, sends = store.send_turn.statements, store.send_turn.sends
        stored = await texts(store, tid)
    assert sends == 24 * 12 and statements < sends / 4  # held sends went out together
    made.sort(key=lambda m: m[0])
    sequence = [o.value.sequence_id for _, _, o in made]  # type: ignore[union-attr]
    assert sequence == list(range(3, 3 + 24 * 12))  # no gap, no repeat, in the order the sends were made
    positions = [o.events[0].position for _, _, o in made]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    ids = [int(o.value.id) for _, _, o in made]  # type: ignore[union-attr]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for task in range(24):
        assert [o.value.content for _, t, o in made if t == task] == [f"{task}:{k}" for k in range(12)]  # type: ignore[union-attr]
    assert stored == [o.value.content for _, _, o in made]  # type: ignore[union-attr]


async def test_sends_held_behind_a_batch_in_flight_go_out_in_one_statement_and_other_threads_pass(
    postgres_url: str,
) -> None:
    async with opened(postgres_url) as store:
        a, b = await make_users(store, 2)
        hot = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        other = (await make_thread(store, b)).value[0].thread_id  # type: ignore[index]
        lock = await RowLock.take(postgres_url, hot)
        first = [asyncio.ensure_future(send(store, hot, a, f"first{k}", T0 + 2)) for k in range(3)]
        await lock.until_waiting(1)  # the first batch is in flight, blocked on the thread's row
        held = []
        for k in range(5):  # five more turns, each with a send to the busy thread
            held.append(asyncio.ensure_future(send(store, hot, (a, b)[k % 2], f"held{k}", T0 + 3)))
            await turns(3)
        passing = await send(store, other, b, "other", T0 + 4)  # another thread is not held back
        assert (store.send_turn.statements, store.send_turn.sends) == (1, 1)  # only that one has been written
        assert not any(f.done() for f in first + held)
        await lock.release()
        written = await asyncio.gather(*first, *held)
        assert (store.send_turn.statements, store.send_turn.sends) == (3, 9)  # the five held: one statement
        stored = await texts(store, hot)
    assert seqs(written) == list(range(3, 11))
    assert stored == [f"first{k}" for k in range(3)] + [f"held{k}" for k in range(5)]
    assert passing.value is not None and passing.value.sequence_id == 3


async def test_held_sends_are_in_flight_before_the_batch_ahead_of_them_is_answered(postgres_url: str) -> None:
    """The next batch starts as soon as the one ahead commits, not after its senders have been answered."""
    async with opened(postgres_url) as store:
        a, b = await make_users(store, 2)
        tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        lock = await RowLock.take(postgres_url, tid)

        async def first() -> tuple[Outcome[MessageRecord], int]:
            outcome = await send(store, tid, a, "first", T0 + 2)
            return outcome, store.send_turn.waiting  # at the moment its sender is answered

        answered = asyncio.ensure_future(first())
        await lock.until_waiting(1)
        held = [asyncio.ensure_future(send(store, tid, (a, b)[k % 2], f"held{k}", T0 + 3)) for k in range(3)]
        await turns(3)
        assert store.send_turn.waiting == 3
        await lock.release()
        outcome, waiting = await answered
        assert waiting == 0  # the held sends were in their statement before "first" was answered
        written = await asyncio.gather(*held)
        assert (store.send_turn.statements, store.send_turn.sends) == (2, 4)
        stored = await texts(store, tid)
    assert seqs([outcome, *written]) == [3, 4, 5, 6]
    assert stored == ["first", "held0", "held1", "held2"]


async def test_a_turn_of_more_than_a_batch_to_one_thread_is_written_batch_after_batch(postgres_url: str) -> None:
    async with opened(postgres_url) as store:
        (a,) = await make_users(store, 1)
        tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
        count = MAX_BATCH + 8
        written = await asyncio.gather(*(send(store, tid, a, f"s{k}", T0 + 2) for k in range(count)))
        assert (store.send_turn.statements, store.send_turn.sends) == (2, count)
        stored = await texts(store, tid)
    assert seqs(written) == list(range(3, 3 + count))
    assert stored == [f"s{k}" for k in range(count)]


async def test_a_thread_deleted_under_a_batch_refuses_it_and_its_held_sends(postgres_url: str) -> None:
    async with opened(postgres_url) as store:
        a, b = await make_users(store, 2)
        tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        lock = await RowLock.take(postgres_url, tid)
        first = [asyncio.ensure_future(send(store, tid, s, "first", T0 + 2)) for s in (a, b)]
        await lock.until_waiting(1)
        held = [asyncio.ensure_future(send(store, tid, s, "held", T0 + 3)) for s in (a, b, a)]
        await turns(3)
        await lock.release(delete_thread=True)
        outcomes = await asyncio.gather(*first, *held, return_exceptions=True)
        late = await asyncio.gather(send(store, tid, a, "late", T0 + 4), return_exceptions=True)
        assert (store.send_turn.statements, store.send_turn.sends) == (3, 6)
    assert all(isinstance(o, NotAllowed) and o.thread_missing for o in outcomes + late)


async def test_a_refused_lone_send_releases_the_sends_held_behind_it(postgres_url: str) -> None:
    async with opened(postgres_url) as store:
        a, b, stranger = await make_users(store, 3)
        tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        lock = await RowLock.take(postgres_url, tid)
        refused = asyncio.ensure_future(send(store, tid, stranger, "not a member", T0 + 2))  # the one-send statement
        await lock.until_waiting(1)
        held = [asyncio.ensure_future(send(store, tid, s, f"held{k}", T0 + 3)) for k, s in enumerate((a, b))]
        await turns(3)
        await lock.release()
        with pytest.raises(NotAllowed) as caught:
            await refused
        written = await asyncio.gather(*held)
        assert (store.send_turn.statements, store.send_turn.sends) == (2, 3)
        stored = await texts(store, tid)
    assert caught.value.thread_missing is False
    assert seqs(written) == [3, 4] and stored == ["held0", "held1"]


async def test_a_batch_that_fails_as_a_whole_releases_the_sends_held_behind_it(postgres_url: str) -> None:
    async with opened(postgres_url, command_timeout=0.5) as store:  # the blocked batch times out
        (a,) = await make_users(store, 1)
        tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
        lock = await RowLock.take(postgres_url, tid)
        first = [asyncio.ensure_future(send(store, tid, a, f"first{k}", T0 + 2)) for k in range(2)]
        await lock.until_waiting(1)
        held = [asyncio.ensure_future(send(store, tid, a, f"held{k}", T0 + 3)) for k in range(3)]
        failed = await asyncio.gather(*first, return_exceptions=True)
        assert all(isinstance(f, StoreUnavailable) for f in failed)  # the statement timed out, for each send
        await lock.until_waiting(1)  # the held sends went out as the next batch, blocked in turn
        await lock.release()
        written = await asyncio.gather(*held)
        assert (store.send_turn.statements, store.send_turn.sends) == (2, 5)
        stored = await texts(store, tid)
    assert seqs(written) == [3, 4, 5] and stored == ["held0", "held1", "held2"]  # nothing of the failed batch


async def test_a_caller_that_gives_up_loses_or_reorders_no_other_send(postgres_url: str) -> None:
    async with opened(postgres_url) as store:
        (a,) = await make_users(store, 1)
        tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
        lock = await RowLock.take(postgres_url, tid)
        flying = asyncio.ensure_future(send(store, tid, a, "in flight", T0 + 2))
        await lock.until_waiting(1)
        held = [asyncio.ensure_future(send(store, tid, a, f"held{k}", T0 + 3)) for k in range(4)]
        await turns(3)
        flying.cancel()  # its statement has started: it commits all the same
        held[1].cancel()  # still held: never written
        await turns(3)
        await lock.release()
        kept = await asyncio.gather(held[0], held[2], held[3])
        await store.send_turn.drain()
        assert (store.send_turn.statements, store.send_turn.sends) == (2, 4)
        stored = await texts(store, tid)
    assert flying.cancelled() and held[1].cancelled()
    assert seqs(kept) == [4, 5, 6] and stored == ["in flight", "held0", "held2", "held3"]


async def test_close_waits_for_held_sends(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    (a,) = await make_users(store, 1)
    tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
    lock = await RowLock.take(postgres_url, tid)
    sends = [asyncio.ensure_future(send(store, tid, a, "first", T0 + 2))]
    await lock.until_waiting(1)
    sends += [asyncio.ensure_future(send(store, tid, a, f"held{k}", T0 + 3)) for k in range(3)]
    closing = asyncio.ensure_future(store.close())
    await asyncio.sleep(0.2)
    assert not closing.done() and not any(s.done() for s in sends)
    await lock.release()
    await closing
    assert all(s.done() for s in sends)
    assert seqs([s.result() for s in sends]) == [3, 4, 5, 6]
    assert (store.send_turn.statements, store.send_turn.sends) == (2, 4)


async def test_concurrent_turns_to_many_threads_hold_only_busy_threads(postgres_url: str) -> None:
    """Sends to many threads, two of them hot, from tasks that drift apart: every thread is gap-free."""
    async with opened(postgres_url) as store:
        (a,) = await make_users(store, 1)
        tids = [(await make_thread(store, a)).value[0].thread_id for _ in range(6)]  # type: ignore[index]

        def pick(task: int, k: int) -> str:  # every other send to the first thread: it stays busy
            return tids[0] if k % 2 else tids[(task + k) % 6]

        async def writer(task: int) -> list[tuple[str, str, Outcome[MessageRecord]]]:
            done = []
            for k in range(10):
                t = pick(task, k)
                done.append((t, f"{task}:{k}", await send(store, t, a, f"{task}:{k}", T0 + 2)))
                await asyncio.sleep(0.0005 * ((task + k) % 3))
            return done

        jobs: list[Awaitable[list[tuple[str, str, Outcome[MessageRecord]]]]] = [writer(t) for t in range(16)]
        results = [item for part in await asyncio.gather(*jobs) for item in part]
        stored = {t: await texts(store, t) for t in tids}
    for t in tids:
        mine = sorted((o.value.sequence_id, text) for tid, text, o in results if tid == t)  # type: ignore[union-attr]
        assert [s for s, _ in mine] == list(range(3, 3 + len(mine)))
        assert stored[t] == [text for _, text in mine]
        for task in range(16):
            order = [int(text.split(":")[1]) for _, text in mine if text.startswith(f"{task}:")]
            assert order == sorted(order)  # each task's sends to a thread in the order it made them
