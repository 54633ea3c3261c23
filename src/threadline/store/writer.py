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

With ``inline=True`` an idle writer lets the event loop run a write itself:
when nothing is queued and the thread is not inside a group, the loop takes
the connection's lock without waiting, begins with a busy timeout of zero and
commits, saving the two thread hand-offs (about half a millisecond of the
idle send). If anything is in the way (the thread holds the connection,
another process holds the database's write lock) the write goes to the
thread as usual, so the loop never waits on a lock. Inline writes never
checkpoint (that would fsync on the loop): the connection's automatic
checkpoint is off and the thread runs a passive checkpoint, from a second
connection, after every ``checkpoint_every`` writes. Only for ``synchronous=NORMAL``, where COMMIT
does not fsync. Writes of unbounded size (``bulk``, the retention pruners)
always go to the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .base import StoreReadOnly, StoreUnavailable

__all__ = ["Writer"]

T = TypeVar("T")

#: A queued write: the function, the future it answers, the loop that future belongs to.
_Item = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]

#: Queued to ask the thread for a passive checkpoint (inline writes never checkpoint).
_CHECKPOINT = "checkpoint"

def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the caller gave up (cancelled); the write happened all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    kind = StoreReadOnly if readonly(exc) else StoreUnavailable
    failure = kind(f"the database refused the write: {exc}")
    failure.__cause__ = exc
    return failure


def readonly(exc: BaseException) -> bool:
    """Whether SQLite refused a write because the database (file, folder or medium) is read-only."""
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_READONLY


class Writer:
    """A thread owning the only write connection, committing writes in groups.

    Args:
        connect: opens the write connection (called on the writer thread); it
            must allow use from other threads (``check_same_thread=False``)
            when ``inline`` is on.
        max_batch: the most writes one transaction holds.
        inline: let an idle writer's writes run on the event loop (see the module).
        checkpoint_every: with ``inline``, the writes between two checkpoints.
    """

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], *, max_batch: int = 64, inline: bool = False,
        checkpoint_every: int = 250,
    ) -> None:
        self._connect = connect
        self._max_batch = max_batch
        self._inline = inline
        self._checkpoint_every = checkpoint_every
        self._queue: queue.SimpleQueue[_Item | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        #: Held by whoever uses the connection: the thread for a group, the loop for an inline write.
        self._using = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        #: The connection's own busy timeout, which the thread's writes keep (inline ones use 0).
        self._busy_ms = 0
        self._since_checkpoint = 0
        #: Writes run and transactions committed so far (their ratio is the mean group size).
        self.writes = 0
        self.groups = 0
        #: Of those writes, how many the event loop ran itself.
        self.inline_writes = 0
        #: Checkpoints run by the thread (with ``inline`` only; otherwise SQLite checkpoints itself).
        self.checkpoints = 0

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

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, bulk: bool = False) -> T:
        """Run a write, inline when the writer is idle, else queued; return once it has committed.

        Args:
            fn: the write, a function of the write connection.
            bulk: the write's size has no bound (pruning): always the thread's,
                so the loop is never held for it.

        Raises:
            StoreUnavailable: the writer is not running, or the database refused the transaction.
            Exception: whatever ``fn`` raised (its changes were rolled back).
        """
        if not self._accepting:
            raise StoreUnavailable("the store is closed")
        if self._inline and not bulk and self._queue.empty() and self._using.acquire(blocking=False):
            try:
                ran, value = self._run_inline(fn)
            finally:
                self._using.release()
            if ran:
                await asyncio.sleep(0)  # a write stays a point where other tasks get their turn
                return value  # type: ignore[return-value]
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

    # -- inline (on the event loop, holding ``_using``) --------------------------------------------

    def _run_inline(self, fn: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None]:
        """Try one write in its own transaction without waiting for any lock.

        Returns:
            ``(False, None)`` when the database's write lock is taken (queue it
            instead), else ``(True, fn's result)``.

        Raises:
            StoreUnavailable: BEGIN or COMMIT failed for another reason.
            Exception: whatever ``fn`` raised, after the rollback.
        """
        conn = self._conn
        if conn is None:
            return False, None
        try:
            conn.execute("PRAGMA busy_timeout=0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return False, None  # another process writes: the thread waits for it, not the loop
            raise _unavailable(exc) from None
        try:
            value = fn(conn)
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if readonly(exc):
                raise _unavailable(exc) from None  # type: ignore[arg-type]
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise _unavailable(exc) from None
        self.writes += 1
        self.groups += 1
        self.inline_writes += 1
        self._count_for_checkpoint(1)
        return True, value

    def _count_for_checkpoint(self, writes: int) -> None:
        if not self._inline:
            return
        # Counted when asked for, not when run: every write counts towards exactly one checkpoint,
        # so the checkpoints asked for are writes // checkpoint_every whatever the scheduling.
        self._since_checkpoint += writes
        while self._since_checkpoint >= self._checkpoint_every:
            self._since_checkpoint -= self._checkpoint_every
            self._queue.put(_CHECKPOINT)

    # -- the thread ---------------------------------------------------------------------------------

    def _main(
        self, setup: Callable[[sqlite3.Connection], Any], ready: asyncio.Future[None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        conn: sqlite3.Connection | None = None
        checkpointer: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            setup(conn)
            if self._inline:
                conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run here, never inline
                self._busy_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
                checkpointer = self._connect()
        except Exception as exc:
            if conn is not None:
                conn.close()
            loop.call_soon_threadsafe(_settle, ready, None, exc)
            return
        self._conn = conn
        loop.call_soon_threadsafe(_settle, ready, None, None)
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                batch: list[_Item] = []
                checkpoint = 0
                for item in self._take(first):
                    if item is None:
                        stopping = True
                    elif isinstance(item, str):
                        checkpoint += 1
                    else:
                        batch.append(item)
                if batch:
                    with self._using:
                        self._commit(conn, batch)
                if checkpointer is not None and (checkpoint or stopping):
                    self._checkpoint(checkpointer, max(checkpoint, 1))
        finally:
            with self._using:
                self._conn = None
                conn.close()
            if checkpointer is not None:
                checkpointer.close()

    def _take(self, first: _Item | str | None) -> list[_Item | str | None]:
        """The first item and every other one waiting, up to a batch, stopping at the stop marker."""
        items = [first]
        while first is not None and len(items) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            if item is None:
                break
        return items

    def _checkpoint(self, checkpointer: sqlite3.Connection, requests: int) -> None:
        """Copy the WAL into the database from a connection of its own; it serves ``requests`` requests.

        A passive checkpoint takes no write lock, so inline writes go on while
        it copies and syncs; only queued writes wait for it, as they waited
        for SQLite's automatic checkpoint before.
        """
        with contextlib.suppress(sqlite3.Error):  # a busy reader only shortens it; the next one goes on
            checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self.checkpoints += requests

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
                    results.append((item, None, _unavailable(exc) if readonly(exc) else exc))  # type: ignore[arg-type]
                else:
                    conn.execute("RELEASE write")
                    results.append((item, value, None))
            conn.execute("COMMIT")
            self.writes += len(batch)
            self.groups += 1
            self._count_for_checkpoint(len(batch))
        except sqlite3.Error as exc:  # BEGIN, a savepoint or COMMIT failed: nothing of the group holds
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            failure = _unavailable(exc)
            results = [(item, None, failure) for item in batch]
        for (_, future, loop), value, error in results:
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                loop.call_soon_threadsafe(_settle, future, value, error)
