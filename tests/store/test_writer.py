"""The SQLite writer's group commit: one transaction for many writes, each failing alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from threadline.store.base import StoreUnavailable
from threadline.store.writer import Writer


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def setup(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")


def rows(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(str(path)) as conn:
        return [tuple(r) for r in conn.execute("SELECT k, v FROM t ORDER BY k")]


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
        await asyncio.sleep(0.2)
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
        gate = threading.Event()
        held = asyncio.ensure_future(writer.run(lambda conn: gate.wait(5)))
        await asyncio.sleep(0.1)  # the writer is inside the first group now

        def good(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT INTO t (k, v) VALUES (1, 'would be kept')")
            return "ok"

        def bad(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT INTO c (p) VALUES (12345)")
            return "ok"

        pair = [asyncio.ensure_future(writer.run(good)), asyncio.ensure_future(writer.run(bad))]
        await asyncio.sleep(0.1)  # both queued: they form the next group
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
