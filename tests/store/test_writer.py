"""The SQLite writer's group commit: one transaction for many writes, each failing alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from threadline.store.base import StoreUnavailable
from threadline.store.records import UserRecord
from threadline.store.sqlite import SqliteStore
from threadline.store.writer import Writer

from .writer_helpers import connect, insert, rows, setup


def test_concurrent_writes_share_commits_and_a_failure_rolls_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> tuple[list[object], Writer]:
        writer = Writer(lambda: connect(path))
        await writer.start(setup)
        gate = threading.Event()

        def write(k: int):  # type: ignore[no-untyped-def]
            def run(conn: sqlite3.Connection) -> int:
                conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, f"v{k}"))
                if k == 0:
                    gate.wait(5)  # hold the first group so the other writes queue up behind it
                if k == 7:
                    raise ValueError("write 7 fails after inserting")
                return k
            return run

        tasks = [asyncio.ensure_future(writer.run(write(k))) for k in range(50)]
        await asyncio.sleep(0)  # every task's first step (its queue.put) runs before this one resumes
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await writer.stop()
        return results, writer

    results, writer = asyncio.run(main())
    assert isinstance(results[7], ValueError)
    assert [r for i, r in enumerate(results) if i != 7] == [k for k in range(50) if k != 7]
    assert rows(path) == [(k, f"v{k}") for k in range(50) if k != 7]  # 7's insert was rolled back alone
    assert writer.writes == 50
    assert writer.groups < 10  # the writes queued behind the first shared a few transactions


def test_no_answer_before_commit_and_stop_drains_the_queue(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> list[int]:
        writer = Writer(lambda: connect(path))
        await writer.start(setup)

        def write(k: int):  # type: ignore[no-untyped-def]
            def run(conn: sqlite3.Connection) -> int:
                conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, "x"))
                return k
            return run

        tasks = [asyncio.ensure_future(writer.run(write(k))) for k in range(20)]
        await asyncio.sleep(0)
        await writer.stop()  # queued before the stop: all committed
        done = [await t for t in tasks]
        with pytest.raises(StoreUnavailable):
            await writer.run(write(99))
        return done

    assert asyncio.run(main()) == list(range(20))
    assert [k for k, _ in rows(path)] == list(range(20))


def test_a_failed_commit_fails_the_whole_group(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    def connect_with_keys() -> sqlite3.Connection:
        conn = connect(path)
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def setup_with_child(conn: sqlite3.Connection) -> None:
        setup(conn)
        # A deferred foreign key is checked only at COMMIT, after every savepoint succeeded.
        conn.execute("CREATE TABLE c (p INTEGER REFERENCES t(k) DEFERRABLE INITIALLY DEFERRED)")

    async def main() -> tuple[object, list[object], Writer]:
        writer = Writer(connect_with_keys)
        await writer.start(setup_with_child)
        gate, entered = threading.Event(), threading.Event()

        def hold(conn: sqlite3.Connection) -> bool:
            entered.set()
            return gate.wait(30)

        held = asyncio.ensure_future(writer.run(hold))
        assert await asyncio.to_thread(entered.wait, 10)  # the writer is inside the first group now

        def good(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT INTO t (k, v) VALUES (1, 'would be kept')")
            return "ok"

        def bad(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT INTO c (p) VALUES (12345)")
            return "ok"

        pair = [asyncio.ensure_future(writer.run(good)), asyncio.ensure_future(writer.run(bad))]
        await asyncio.sleep(0)  # both queued (their first steps run before this resumes): the next group
        gate.set()
        first = await held
        results = await asyncio.gather(*pair, return_exceptions=True)
        await writer.stop()
        return first, results, writer

    first, results, writer = asyncio.run(main())
    assert first is True
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    assert rows(path) == []  # the good write shared the failed commit: nothing of it holds
    assert (writer.writes, writer.groups) == (1, 1)


# -- inline writes (the event loop commits when the writer is idle) ---------------------------------


def test_an_idle_write_runs_on_the_loop_and_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> tuple[int, Writer]:
        writer = Writer(lambda: connect(path), inline=True)
        await writer.start(setup)
        ran_on = await writer.run(insert(1))
        assert rows(path) == [(1, "v1")]  # committed before run() returned
        # the loop's writes never wait for a lock: they began with a busy timeout of 0 (the thread's
        # BEGIN waits with the connection's own: test_the_loop_never_waits_for_another_process...)
        assert await writer.run(lambda c: c.execute("PRAGMA busy_timeout").fetchone()[0]) == 0
        await writer.stop()
        return ran_on, writer

    ran_on, writer = asyncio.run(main())
    assert ran_on == threading.get_ident()  # this thread ran the loop, so it ran the write too
    assert (writer.writes, writer.groups, writer.inline_writes) == (2, 2, 2)


def test_writes_made_in_one_turn_of_the_loop_share_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    answered: list[int] = []

    async def main() -> tuple[list[object], Writer]:
        writer = Writer(lambda: connect(path), inline=True)
        await writer.start(setup)

        def write(k: int):  # type: ignore[no-untyped-def]
            def run(conn: sqlite3.Connection) -> int:
                assert not answered  # nobody of the group is answered before its COMMIT
                conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, f"v{k}"))
                if k == 7:
                    raise ValueError("write 7 fails after inserting")
                return k
            return run

        async def one(k: int) -> int:
            value: int = await writer.run(write(k))
            assert (k, f"v{k}") in rows(path)  # committed, seen from another connection
            answered.append(k)
            return value

        # gather starts the 30 tasks in one turn; each runs up to its write and waits
        results = await asyncio.gather(*(one(k) for k in range(30)), return_exceptions=True)
        await writer.stop()
        return results, writer

    results, writer = asyncio.run(main())
    assert isinstance(results[7], ValueError)
    assert [r for i, r in enumerate(results) if i != 7] == [k for k in range(30) if k != 7]
    assert rows(path) == [(k, f"v{k}") for k in range(30) if k != 7]  # 7 was rolled back alone
    assert (writer.writes, writer.groups, writer.inline_writes) == (30, 1, 29)
    assert sorted(answered) == [k for k in range(30) if k != 7]


def test_a_turn_larger_than_a_batch_commits_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> Writer:
        writer = Writer(lambda: connect(path), inline=True, max_batch=8)
        await writer.start(setup)
        await asyncio.gather(*(writer.run(insert(k)) for k in range(20)))
        await writer.stop()
        return writer

    writer = asyncio.run(main())
    assert (writer.writes, writer.groups, writer.inline_writes) == (20, 3, 20)  # 8 + 8 + 4
    assert [k for k, _ in rows(path)] == list(range(20))


def test_a_turn_not_yet_ended_at_stop_is_committed_by_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> Writer:
        writer = Writer(lambda: connect(path), inline=True)
        await writer.start(setup)
        writes = [asyncio.ensure_future(writer.run(insert(k))) for k in range(5)]
        await asyncio.sleep(0)  # the five are waiting in this turn; stop() comes before the turn ends
        await writer.stop()
        assert [w.result() != threading.get_ident() for w in writes] == [True] * 5
        return writer

    writer = asyncio.run(main())
    assert (writer.writes, writer.inline_writes) == (5, 0)
    assert [k for k, _ in rows(path)] == list(range(5))


def test_a_failed_inline_write_rolls_back_and_the_next_one_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> Writer:
        writer = Writer(lambda: connect(path), inline=True)
        await writer.start(setup)
        with pytest.raises(ValueError, match="write 1 fails"):
            await writer.run(insert(1, fail=True))
        await writer.run(insert(2))
        await writer.stop()
        return writer

    writer = asyncio.run(main())
    assert rows(path) == [(2, "v2")]
    assert writer.inline_writes == 1


def test_the_loop_never_waits_for_another_process_holding_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> tuple[int, int, Writer]:
        def patient() -> sqlite3.Connection:
            conn = connect(path)
            conn.execute("PRAGMA busy_timeout=120000")  # the thread outwaits a slow machine's ticks
            return conn

        writer = Writer(patient, inline=True)
        await writer.start(setup)
        other = sqlite3.connect(str(path), isolation_level=None)  # say, a CLI command writing
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t (k, v) VALUES (0, 'other')")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        write = asyncio.create_task(writer.run(insert(1)))
        deadline = time.monotonic() + 60
        while ticks < 10 and time.monotonic() < deadline:  # a loop blocked by the write could not tick
            await asyncio.sleep(0.01)
        assert not write.done()  # waiting for the other process, on the writer thread
        other.execute("COMMIT")
        other.close()
        ran_on = await asyncio.wait_for(write, 5)
        ticker.cancel()
        await writer.stop()
        return ran_on, ticks, writer

    ran_on, ticks, writer = asyncio.run(main())
    assert ran_on != threading.get_ident()  # the thread took it
    assert ticks >= 10  # the loop went on while the write waited
    assert rows(path) == [(0, "other"), (1, "v1")]
    assert writer.inline_writes == 0


def test_inline_writes_are_checkpointed_by_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> tuple[Writer, int]:
        writer = Writer(lambda: connect(path), inline=True, checkpoint_every=10)
        await writer.start(setup)
        for k in range(35):
            await writer.run(insert(k))
        deadline = time.monotonic() + 5
        while writer.checkpoints < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        checkpoints = writer.checkpoints
        await writer.stop()
        return writer, checkpoints

    writer, checkpoints = asyncio.run(main())
    assert writer.writes == 35
    # The first ten find the writer idle and run inline; after that, which path a write takes
    # depends on whether the thread is still busy with a checkpoint: scheduling, not asserted.
    assert 10 <= writer.inline_writes <= 35
    assert checkpoints == 3  # one per 10 writes, whichever path they took and however they were scheduled
    assert writer.checkpoints == 4  # and a last one on stop
    assert [k for k, _ in rows(path)] == list(range(35))


def test_a_full_sync_store_never_writes_inline(tmp_path: Path) -> None:
    async def main() -> tuple[int, int]:
        counts = []
        for synchronous in ("NORMAL", "FULL"):
            store = SqliteStore(tmp_path / f"{synchronous}.db", synchronous=synchronous)
            await store.open()
            await store.create_user(UserRecord("8:acs:r_00000000-0000-0000-0000-000000000001", 1))
            writer = store._writer
            assert writer is not None
            counts.append(writer.inline_writes)
            await store.close()
        return counts[0], counts[1]

    assert asyncio.run(main()) == (1, 0)
