"""The one writer of a SQLite database: a thread that commits queued writes in groups.

Every write of a :class:`~threadline.store.sqlite.SqliteStore` is a function of
the write connection. The writer thread takes the first queued write and every
other write already waiting (up to ``max_batch``), runs them in one
transaction and commits once; a write that raises rolls back alone (the group
then runs again with a SAVEPOINT per write: ``groups.py``). Only after that
COMMIT does any of them get its result, so an acknowledged write is always a
committed one.

Group commit keeps the one-writer design (no "database is locked", whatever
the concurrency) while paying BEGIN and COMMIT once per group rather than once
per write; under load the groups grow by themselves, idle they are single writes.

With ``inline=True`` an idle writer lets the event loop commit writes itself.
A write made on the loop is not run at once: it joins the writes made in the
same turn of the loop, and at the end of that turn (``call_soon``) the loop
runs them all in one transaction (as the thread does) and commits once: under
load the concurrent requests of one turn share a COMMIT, idle a write costs one
turn more than running it at once.
That saves the two thread hand-offs of a queued write (about half a
millisecond of the idle send). The loop never waits for a lock: it takes the
connection only when the thread is not using it and nothing is queued for the
thread, and begins with the connection's busy timeout at zero (the thread
raises it to the configured value for its own groups and lowers it again). If
anything is in the way (the thread holds the connection, another process holds
the database's write lock) the turn's writes go to the thread as usual.
Inline writes never checkpoint (that would fsync on the loop): the
connection's automatic checkpoint is off and the thread runs a passive
checkpoint, from a second connection, after every ``checkpoint_every`` writes.
Only for ``synchronous=NORMAL``, where COMMIT does not fsync. Writes of
unbounded size (``bulk``, the retention pruners) always go to the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from . import groups
from .base import StoreUnavailable

__all__ = ["Writer"]

T = TypeVar("T")

#: A queued write: the function, the future it answers, the loop that future belongs to.
_Item = groups.Item

#: A write's outcome: the write, its value, the error it raised (None when it did not).
_Result = groups.Result

#: Queued to ask the thread for a passive checkpoint (inline writes never checkpoint).
_CHECKPOINT = "checkpoint"

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
        connect: opens the write connection (called on the writer thread); it
            must allow use from other threads (``check_same_thread=False``)
            when ``inline`` is on.
        max_batch: the most writes one transaction holds.
        inline: let an idle writer's writes run on the event loop (see the module).
        checkpoint_every: with ``inline``, the writes between two checkpoints.
        session: what the store keeps on the connection across a transaction's writes
            (:class:`~.groups.Session`): told when a transaction begins, before its first write,
            and when the writes so far are settled or abandoned.
    """

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], *, max_batch: int = 64, inline: bool = False,
        checkpoint_every: int = 1000, session: groups.Session = groups.NO_SESSION,
    ) -> None:
        self._connect = connect
        self._session = session
        self._max_batch = max_batch
        self._inline = inline
        self._checkpoint_every = checkpoint_every
        self._queue: queue.SimpleQueue[_Item | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        #: Held by whoever uses the connection: the thread for a group, the loop for an inline write.
        self._using = threading.Lock()
        #: The writes made on the loop during its current turn (inline only; the loop's alone).
        self._turn: list[_Item] = []
        self._conn: sqlite3.Connection | None = None
        #: The connection's own busy timeout, which the thread's groups use (the loop's use 0).
        self._busy_ms = 0
        self._since_checkpoint = 0
        #: Writes run and transactions committed so far (their ratio is the mean group size).
        self.writes = 0
        self.groups = 0
        #: Of those writes, how many the event loop ran itself.
        self.inline_writes = 0
        #: Checkpoints run by the thread (with ``inline`` only; otherwise SQLite checkpoints itself).
        self.checkpoints = 0
        #: Groups rolled back because a write raised, and run again with a savepoint per write.
        self.reruns = 0

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
        """Run a write, with this turn's other writes on the loop when the writer is idle, else queued.

        Returns once the write has committed.

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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._inline and not bulk:
            if not self._turn:
                loop.call_soon(self._end_turn)
            self._turn.append((fn, future, loop))
        else:
            self._queue.put((fn, future, loop))
        return await future

    async def stop(self) -> None:
        """Commit every write queued so far, then close the connection and end the thread."""
        self._accepting = False
        self._hand_over(self._turn)  # a turn not yet ended goes to the thread, before the stop marker
        self._turn = []
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(thread.join)

    def _hand_over(self, items: list[_Item]) -> None:
        for item in items:
            self._queue.put(item)

    # -- inline (on the event loop, holding ``_using``) --------------------------------------------

    def _end_turn(self) -> None:
        """Commit the writes made during this turn of the loop, on the loop if nothing is in the way."""
        turn, self._turn = self._turn, []
        if not turn:
            return  # stop() handed them to the thread
        while turn:
            batch, turn = turn[: self._max_batch], turn[self._max_batch :]
            if not (self._queue.empty() and self._using.acquire(blocking=False)):
                break
            try:
                results = self._commit_inline(batch)
            finally:
                self._using.release()
            if results is None:
                break
            for (_, future, _), value, error in results:
                _settle(future, value, error)
        else:
            return
        self._hand_over(batch + turn)

    def _commit_inline(self, batch: list[_Item]) -> list[_Result] | None:
        """Run a turn's writes in one transaction without waiting for any lock.

        Returns:
            None when the database's write lock is taken (queue them instead),
            else each write's result or error.
        """
        conn = self._conn
        if conn is None:
            return None
        try:
            if not self._begin_at_once(conn):
                return None  # another process writes: the thread waits for it, not the loop
            done = self._together(conn, batch)
            if done is None and not self._begin_at_once(conn):
                return None  # rolled back; the thread runs the group, as if it had been busy
        except sqlite3.OperationalError as exc:
            failure = groups.unavailable(exc)
            return [(item, None, failure) for item in batch]
        results, committed = done if done is not None else self._group(conn, batch)
        self.inline_writes += committed
        return results

    def _begin_at_once(self, conn: sqlite3.Connection) -> bool:
        """:func:`~.groups.begin_at_once`, then the session's ``begin`` if it began."""
        if not groups.begin_at_once(conn):
            return False
        self._begun(conn)
        return True

    def _begun(self, conn: sqlite3.Connection) -> None:
        """Tell the session about the transaction just begun; if it raises, roll the transaction back."""
        try:
            self._session.begin(conn)
        except BaseException:
            groups.roll_back(conn)
            raise

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
                conn.execute("PRAGMA busy_timeout=0")  # the loop never waits; the thread raises it for its groups
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
        """Run a group on the thread, waiting for the database's lock as long as the busy timeout allows."""
        try:
            self._begin_waiting(conn)
            done = self._together(conn, batch)
            if done is None:
                self._begin_waiting(conn)
        except sqlite3.Error as exc:
            failure = groups.unavailable(exc)
            results: list[_Result] = [(item, None, failure) for item in batch]
        else:
            results, _ = done if done is not None else self._group(conn, batch)
        for (_, future, loop), value, error in results:
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                loop.call_soon_threadsafe(_settle, future, value, error)

    def _begin_waiting(self, conn: sqlite3.Connection) -> None:
        """Begin the thread's transaction, waiting for the database's lock as long as the busy timeout allows."""
        if self._inline:
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        finally:
            if self._inline:
                conn.execute("PRAGMA busy_timeout=0")
        self._begun(conn)

    def _together(self, conn: sqlite3.Connection, batch: list[_Item]) -> tuple[list[_Result], int] | None:
        """:func:`~.groups.run_together` (a lone write: :func:`~.groups.run_each`), counted; None if rolled back."""
        if len(batch) == 1:
            return self._group(conn, batch)
        done = groups.run_together(conn, batch, self._session)
        if done is None:
            self.reruns += 1
            return None
        return self._count(batch, *done)

    def _group(self, conn: sqlite3.Connection, batch: list[_Item]) -> tuple[list[_Result], int]:
        """:func:`~.groups.run_each`, counted."""
        return self._count(batch, *groups.run_each(conn, batch, self._session))

    def _count(self, batch: list[_Item], results: list[_Result], committed: bool) -> tuple[list[_Result], int]:
        """Count a group that committed; return its results and how many of its writes hold."""
        if not committed:
            return results, 0
        self.writes += len(batch)
        self.groups += 1
        self._count_for_checkpoint(len(batch))
        return results, sum(1 for _, _, error in results if error is None)
