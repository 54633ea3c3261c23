"""The one writer of a SQLite database: a thread that commits queued writes in groups.

Every write of a :class:`~threadline.store.sqlite.SqliteStore` is a function of
the write connection. The writer thread takes the first queued write and every
other write already waiting (up to ``max_batch``), runs them in one
transaction, each inside its own SAVEPOINT so that a write that fails rolls
back alone, and commits once. Only after that COMMIT does any of them get its
result, so an acknowledged write is always a committed one.

Group commit keeps the one-writer design (no "database is locked", whatever
the concurrency) while paying BEGIN and COMMIT once per group rather than once
per write; under load the groups grow by themselves, idle they are single writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .base import StoreUnavailable

__all__ = ["Writer"]

T = TypeVar("T")

#: A queued write: the function, the future it answers, the loop that future belongs to.
_Item = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the caller gave up (cancelled); the write happened all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class Writer:
    """A thread owning the only write connection, committing writes in groups.

    Args:
        connect: opens the write connection (called on the writer thread).
        max_batch: the most writes one transaction holds.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, max_batch: int = 64) -> None:
        self._connect = connect
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        #: Writes run and transactions committed so far (their ratio is the mean group size).
        self.writes = 0
        self.groups = 0

    async def start(self, setup: Callable[[sqlite3.Connection], Any]) -> None:
        """Open the connection on a new thread and run ``setup`` (migrations) outside any group.

        Raises:
            Exception: whatever ``connect`` or ``setup`` raised; the writer is then stopped.
        """
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._main, args=(setup, ready, loop), name="threadline-sqlite-writer", daemon=True
        )
        self._thread.start()
        await ready
        self._accepting = True

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Queue a write and wait until its group has committed.

        Raises:
            StoreUnavailable: the writer is not running.
            Exception: whatever ``fn`` raised (its changes were rolled back).
        """
        if not self._accepting:
            raise StoreUnavailable("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, future, loop))
        return await future

    async def stop(self) -> None:
        """Commit every write queued so far, then close the connection and end the thread."""
        self._accepting = False
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(thread.join)

    # -- the thread ---------------------------------------------------------------------------------

    def _main(
        self, setup: Callable[[sqlite3.Connection], Any], ready: asyncio.Future[None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        try:
            conn = self._connect()
            setup(conn)
        except Exception as exc:
            loop.call_soon_threadsafe(_settle, ready, None, exc)
            return
        loop.call_soon_threadsafe(_settle, ready, None, None)
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                self._commit(conn, batch)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        results: list[tuple[_Item, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for item in batch:
                conn.execute("SAVEPOINT write")
                try:
                    value = item[0](conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    results.append((item, None, exc))
                else:
                    conn.execute("RELEASE write")
                    results.append((item, value, None))
            conn.execute("COMMIT")
            self.writes += len(batch)
            self.groups += 1
        except sqlite3.Error as exc:  # BEGIN, a savepoint or COMMIT failed: nothing of the group holds
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            failure = StoreUnavailable(f"the database refused the write: {exc}")
            failure.__cause__ = exc
            results = [(item, None, failure) for item in batch]
        for (_, future, loop), value, error in results:
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                loop.call_soon_threadsafe(_settle, future, value, error)
