"""How the SQLite writer runs a group of writes in one transaction (``writer.py`` decides where and when).

A group first runs with no savepoint between its writes (:func:`run_together`); only if one of
them raises is it rolled back and run again with a savepoint per write (:func:`run_each`), so
that the failing write fails alone and the others hold. Either way nothing is answered before
the COMMIT: the callers settle the writes' futures with what these return.

A :class:`Session` is what the store keeps on the write connection between statements (the
SQLite store's events held back until the end of their transaction, its live members): the
writer tells it when a transaction begins, and these functions when the writes so far must be
settled (before a COMMIT or a RELEASE) or abandoned (before a rollback).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any, Protocol

from .base import StoreReadOnly, StoreUnavailable

__all__ = [
    "NO_SESSION", "Item", "Result", "Session", "begin_at_once", "readonly", "roll_back", "run_each", "run_together",
    "unavailable",
]

#: A queued write: the function, the future it answers, the loop that future belongs to.
Item = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]

#: A write's outcome: the write, its value, the error it raised (None when it did not).
Result = tuple[Item, Any, "BaseException | None"]


class Session(Protocol):
    """What a store keeps on the write connection across the writes of a transaction."""

    def begin(self, conn: sqlite3.Connection) -> None:
        """A transaction has begun, before its first write."""

    def settle(self, conn: sqlite3.Connection) -> None:
        """Write what the writes so far held back: a COMMIT or a RELEASE follows (it may raise: the writes fail)."""

    def abandon(self) -> None:
        """The changes since the last :meth:`settle` are being rolled back: forget what they held back."""


class _NoSession:
    def begin(self, conn: sqlite3.Connection) -> None:
        pass

    def settle(self, conn: sqlite3.Connection) -> None:
        pass

    def abandon(self) -> None:
        pass


#: The session of a writer given none.
NO_SESSION: Session = _NoSession()


def unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    kind = StoreReadOnly if readonly(exc) else StoreUnavailable
    failure = kind(f"the database refused the write: {exc}")
    failure.__cause__ = exc
    return failure


def begin_at_once(conn: sqlite3.Connection) -> bool:
    """Begin a write transaction without waiting (the busy timeout is 0 outside the thread's groups).

    Returns:
        False when another connection holds the database's write lock.

    Raises:
        sqlite3.OperationalError: SQLite refused for another reason.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False
        raise
    return True


def readonly(exc: BaseException) -> bool:
    """Whether SQLite refused a write because the database (file, folder or medium) is read-only."""
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_READONLY


def run_together(
    conn: sqlite3.Connection, batch: list[Item], session: Session = NO_SESSION
) -> tuple[list[Result], bool] | None:
    """Run writes in the transaction just begun, with no savepoint between them, and commit.

    A savepoint per write costs more than most writes' own statements (SQLite copies each page a
    write changes into the statement journal, for every write again): in-process, ~8 us of a
    ~104 us send. So a group first runs without them. If any write raises, the whole transaction
    is rolled back and None returned: the caller begins again and runs the group through
    :func:`run_each`, so that only the failing write fails. A write is a function of the
    connection alone, so running it a second time does what its first run would have done
    (a write that keeps something outside the database clears it first); writes that raise are
    rare (a check that fails inside the write), and one costs its group a second run.

    Returns:
        Each write's result and whether the transaction committed (if COMMIT failed, every
        write fails with :class:`StoreUnavailable`), or None when a write raised.
    """
    values = []
    try:
        for item in batch:
            values.append(item[0](conn))
        session.settle(conn)
    except Exception:
        session.abandon()
        roll_back(conn)
        return None
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:  # nothing of the group holds
        session.abandon()
        roll_back(conn)
        failure = unavailable(exc)
        return [(item, None, failure) for item in batch], False
    return [(item, value, None) for item, value in zip(batch, values, strict=True)], True


def run_each(
    conn: sqlite3.Connection, batch: list[Item], session: Session = NO_SESSION
) -> tuple[list[Result], bool]:
    """Run writes in the transaction just begun, each in its own SAVEPOINT, and commit.

    Each write is settled before its RELEASE, so what it held back is inside its savepoint.
    One that raises (or whose settling raises) is rolled back alone (a lone write needs no savepoint: its failure rolls
    back the transaction); if a savepoint or COMMIT fails, every write fails with
    :class:`StoreUnavailable` and nothing of the group holds.

    Returns:
        Each write's result or error, and whether the transaction committed.
    """
    results: list[Result] = []
    alone = len(batch) == 1
    try:
        for item in batch:
            if not alone:
                conn.execute("SAVEPOINT write")
            try:
                value = item[0](conn)
                session.settle(conn)
            except Exception as exc:
                session.abandon()
                conn.execute("ROLLBACK" if alone else "ROLLBACK TO write")
                if not alone:
                    conn.execute("RELEASE write")
                results.append((item, None, unavailable(exc) if readonly(exc) else exc))  # type: ignore[arg-type]
            else:
                if not alone:
                    conn.execute("RELEASE write")
                results.append((item, value, None))
        if conn.in_transaction:
            conn.execute("COMMIT")
    except sqlite3.Error as exc:  # a savepoint or COMMIT failed: nothing of the group holds
        session.abandon()
        roll_back(conn)
        failure = unavailable(exc)
        return [(item, None, failure) for item in batch], False
    return results, True


def roll_back(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any; an error doing so is ignored."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
