"""The SQLite writer: where writes run (bulk ones on the thread) and how a group takes savepoints."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from threadline.store.records import UserRecord
from threadline.store.sqlite import SqliteStore
from threadline.store.writer import Writer

from .writer_helpers import connect, insert, rows, setup


def test_a_bulk_write_goes_to_the_thread_even_when_idle(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> tuple[int, Writer]:
        writer = Writer(lambda: connect(path), inline=True)
        await writer.start(setup)
        ran_on = await writer.run(insert(1), bulk=True)
        await writer.stop()
        return ran_on, writer

    ran_on, writer = asyncio.run(main())
    assert ran_on != threading.get_ident()
    assert (writer.writes, writer.inline_writes) == (1, 0)
    assert rows(path) == [(1, "v1")]


def test_the_store_writer_keeps_savepoint_journals_in_memory(tmp_path: Path) -> None:
    """Each write of a group is a SAVEPOINT; its statement journal must not be a temporary file."""

    async def main() -> tuple[int, int]:
        store = SqliteStore(tmp_path / "s.db")
        await store.open()
        try:
            await store.create_user(UserRecord("8:acs:temp", 1))
            written = await store._write(lambda c: int(c.execute("PRAGMA temp_store").fetchone()[0]))
            read = await store._peek(lambda c: int(c.execute("PRAGMA temp_store").fetchone()[0]))
            return written, read
        finally:
            await store.close()

    written, read = asyncio.run(main())
    assert written == 2  # MEMORY
    assert read == 0  # readers keep the default: their sorts may be large


def test_a_group_takes_savepoints_only_when_one_of_its_writes_raises(tmp_path: Path) -> None:
    """A clean group runs with no SAVEPOINT; one with a failing write is rolled back and run again with them."""
    path = tmp_path / "w.db"
    statements: list[str] = []
    ran: dict[int, int] = {}

    def traced() -> sqlite3.Connection:
        conn = connect(path)
        conn.set_trace_callback(statements.append)
        return conn

    def write(k: int, fails: bool):  # type: ignore[no-untyped-def]
        def run(conn: sqlite3.Connection) -> int:
            ran[k] = ran.get(k, 0) + 1
            conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, f"v{k}"))
            if fails:
                raise ValueError(f"write {k} fails after inserting")
            return k
        return run

    async def main() -> tuple[list[object], list[object], Writer, list[str]]:
        writer = Writer(traced, inline=True)
        await writer.start(setup)
        statements.clear()
        clean = await asyncio.gather(*(writer.run(write(k, False)) for k in range(10)), return_exceptions=True)
        clean_statements = list(statements)
        mixed = await asyncio.gather(*(writer.run(write(k, k == 14)) for k in range(10, 20)),
                                     return_exceptions=True)
        await writer.stop()
        return clean, mixed, writer, clean_statements

    clean, mixed, writer, clean_statements = asyncio.run(main())
    assert clean == list(range(10))
    assert not [s for s in clean_statements if "SAVEPOINT" in s]
    transaction = [s for s in clean_statements if s in ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")]
    assert transaction == ["BEGIN IMMEDIATE", "COMMIT"]
    assert isinstance(mixed[4], ValueError)
    assert [r for i, r in enumerate(mixed) if i != 4] == [k for k in range(10, 20) if k != 14]
    assert rows(path) == [(k, f"v{k}") for k in range(20) if k != 14]
    # the first run stopped at 14 and was rolled back; the second ran every write, each in a savepoint
    assert ran == {k: 1 for k in range(10)} | {k: 2 for k in range(10, 15)} | {k: 1 for k in range(15, 20)}
    assert sum(1 for s in statements if s == "SAVEPOINT write") == 10
    assert (writer.writes, writer.groups, writer.inline_writes, writer.reruns) == (20, 2, 19, 1)
