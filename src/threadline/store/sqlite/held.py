"""Events held back to the end of their transaction, then logged by one INSERT, in the SQLite store.

A send's event was one ``INSERT`` of its own: under callgrind ~20k instructions a row, of a
~212k-instruction send (``bench/scale_store.py``'s write), most of it the statement's own
machinery. The writes that change no membership (send, message edit and delete, read receipt,
whose recipients come from :mod:`.members`) now only take a position for their events, in
memory, and :class:`HeldEvents` logs a transaction's rows with one multi-row ``INSERT`` when it
is settled: before its COMMIT, or before the RELEASE of each write's savepoint when a group runs
again write by write (``groups.py``). ~12k instructions a row.

Positions stay exactly what ``AUTOINCREMENT`` gave: the first one taken in a transaction is the
``sqlite_sequence`` counter plus one, read then, and the insert of explicit positions raises that
counter as an ``AUTOINCREMENT`` insert would. Nothing else may take a position while rows are
held: every other write (a membership change logs its events at once, by ``AUTOINCREMENT``)
settles the held rows before it runs and makes the next position be read again after it
(:meth:`~threadline.store.sqlite.core.SqliteCore._write`). A transaction that begins, or changes
rolled back, forget everything held.
"""

from __future__ import annotations

import sqlite3

from .members import LiveMembers

__all__ = ["HeldEvents", "WriteSession", "last_position"]

#: The most rows one INSERT logs (6 parameters each: well under SQLite's limit).
_MOST_ROWS = 64
_INSERT = "INSERT INTO events (position, thread_id, type, payload, created_ms, message_ms) VALUES "
#: The INSERT of ``n`` rows, by ``n``.
_INSERTS = {n: _INSERT + ", ".join(["(?, ?, ?, ?, ?, ?)"] * n) for n in range(1, _MOST_ROWS + 1)}


def last_position(conn: sqlite3.Connection) -> int:
    """The last position the event log gave out (``AUTOINCREMENT``'s counter; 0 before the first)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row[0]) if row else 0


class HeldEvents:
    """The events of the current transaction not logged yet, and the next position to take."""

    def __init__(self) -> None:
        self._args: list[object] = []
        self._rows = 0
        self._next: int | None = None

    def add(
        self, conn: sqlite3.Connection, thread_id: str, kind: str, payload: bytes, created_ms: int,
        message_ms: int | None,
    ) -> int:
        """Hold an event back; returns its position."""
        position = self._next
        if position is None:
            position = last_position(conn) + 1
        self._next = position + 1
        # A bytearray binds as the same BLOB as bytes, without the adapter lookup bytes take.
        self._args += (position, thread_id, kind, bytearray(payload), created_ms, message_ms)
        self._rows += 1
        return position

    def settle(self, conn: sqlite3.Connection) -> None:
        """Log the held rows (the next position taken stays right: the counter is raised to the last)."""
        rows = self._rows
        if not rows:
            return
        args, self._args, self._rows = self._args, [], 0
        if rows <= _MOST_ROWS:
            conn.execute(_INSERTS[rows], args)
            return
        width = 6 * _MOST_ROWS
        for start in range(0, len(args), width):
            chunk = args[start:start + width]
            conn.execute(_INSERTS[len(chunk) // 6], chunk)

    def forget(self) -> None:
        """Drop the held rows, and read the next position again when one is taken."""
        self._args, self._rows, self._next = [], 0, None


class WriteSession:
    """The :class:`~threadline.store.groups.Session` of the SQLite store's write connection.

    Args:
        members: the live members kept in memory (:mod:`.members`).
        events: the events held back (:class:`HeldEvents`).
    """

    def __init__(self, members: LiveMembers, events: HeldEvents) -> None:
        self.members = members
        self.events = events

    def begin(self, conn: sqlite3.Connection) -> None:
        """A transaction begins: members as :meth:`LiveMembers.begin`; nothing held, the position read again."""
        self.events.forget()
        self.members.begin(conn)

    def settle(self, conn: sqlite3.Connection) -> None:
        """Log the held events."""
        self.events.settle(conn)

    def abandon(self) -> None:
        """What was held is rolled back with its writes."""
        self.events.forget()
