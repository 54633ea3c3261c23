"""Connections and the transaction plumbing every write of the SQLite store shares."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .. import dialect
from ..base import Effects, NotAllowed, Outcome, StoreError, StoreUnavailable
from ..blobs import FileBlobs
from ..dialect import ACTIVITY_WIDTH_MS, LIVE_MEMBER
from ..records import Event, MessageDraft, MessageRecord, ParticipantRecord
from ..rows import MESSAGE_COLUMNS, drafted_message, dump_json, message_values
from ..sqlite_images import SqliteImages
from ..writer import Writer
from .held import HeldEvents, WriteSession, last_position
from .members import LiveMembers, Members

__all__ = ["SqliteCore"]

#: Who receives an event already logged: a member ``p`` whose stay covers the event's position and,
#: for one revealing a message, whose window holds it; parameters: thread, position, position,
#: message time twice. (A write that changes no membership takes the live members instead, see
#: :meth:`SqliteCore._log_events`.)
_RECIPIENT = (
    "p.thread_id = ? AND p.joined_pos <= ? AND (p.left_pos IS NULL OR p.left_pos >= ?) "
    "AND (? IS NULL OR p.share_history_ms <= ?)"
)
#: An event's insert, for the writes that change memberships (the others hold theirs back: see
#: :mod:`.held`); its position is the connection's last insert rowid. No ``RETURNING``: SQLite
#: buffers what one returns in an ephemeral table it opens and closes at each run, most of such an
#: insert's cost (under callgrind ~51k instructions with ``RETURNING position``, ~15k without).
_LOG_EVENT = "INSERT INTO events (thread_id, type, payload, created_ms, message_ms) VALUES (?, ?, ?, ?, ?)"

T = TypeVar("T")


def _connect(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def _write_connection(path: str, synchronous: str) -> sqlite3.Connection:
    """The writer's connection: as any other, with its temporary storage in memory.

    A group whose write raised runs again with a SAVEPOINT per write (``groups.py``), and
    SQLite keeps a savepoint's page images in a statement journal, a temporary file by
    default: that file made a savepoint cost more than the write's own statements (~13 us a
    write, against ~1 us in memory). The journal holds only the pages one write changes.
    """
    conn = _connect(path, synchronous)
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


class SqliteCore(SqliteImages):
    """The state of a :class:`~threadline.store.sqlite.SqliteStore` and the helpers its writes share.

    Args:
        path: the database file (created when missing).
        synchronous: SQLite's ``synchronous`` pragma: ``NORMAL`` or ``FULL``.
        readers: how many threads serve reads.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", readers: int = 3) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError("synchronous must be NORMAL, FULL or EXTRA")
        self.path = str(path)
        self._synchronous = synchronous.upper()
        self._readers = readers
        self._writer: Writer | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._loop_conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._new_session()
        #: The cursor events are logged through, and the connection it belongs to (see :meth:`_log_events`).
        self._event_cursor: tuple[sqlite3.Connection, sqlite3.Cursor] | None = None
        #: image bytes, as files beside the database (see :mod:`threadline.store.blobs`).
        self.blobs = FileBlobs(Path(self.path).parent / "images")

    # -- plumbing ----------------------------------------------------------------------------------

    def _new_session(self) -> None:
        """Start afresh what the write connection keeps: nothing read through an earlier connection is kept."""
        #: The live members of recently written threads (see :mod:`.members`).
        self._members = LiveMembers()
        #: The events of the current transaction held back (see :mod:`.held`).
        self._held = HeldEvents()
        #: Whether the running write may hold its events back: all but those changing memberships.
        self._holding = True
        self._session = WriteSession(self._members, self._held)

    def _read_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self._synchronous)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._lock:
                self._read_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        executor = self._reader
        if executor is None:
            raise StoreUnavailable("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, lambda: fn(self._read_conn()))

    async def _peek(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a short read inline on the event loop's own read connection."""
        if self._writer is None:
            raise StoreUnavailable("the store is closed")
        conn = self._loop_conn
        if conn is None:
            conn = self._loop_conn = _connect(self.path, self._synchronous)
            conn.execute("PRAGMA query_only=ON")
        return fn(conn)

    async def _write(
        self, fn: Callable[[sqlite3.Connection], T], *, bulk: bool = False, keeps_members: bool = False
    ) -> T:
        """Run ``fn`` on the write connection in a committed transaction (see :mod:`threadline.store.writer`).

        ``bulk`` marks a write of unbounded size, which never runs on the event loop.
        ``keeps_members`` marks a write that changes no membership (the message and receipt
        writes): it may answer who the live members are from :attr:`_members`, and hold its
        events back to the end of the transaction (:mod:`.held`). Any other write makes the
        members forget everything, before it runs and after (see :mod:`.members`), logs the
        held events before it runs, and logs its own at once.
        """
        writer = self._writer
        if writer is None:
            raise StoreUnavailable("the store is closed")
        if keeps_members:
            return await writer.run(fn, bulk=bulk)
        members, held = self._members, self._held

        def changing(conn: sqlite3.Connection) -> T:
            members.changing()
            held.settle(conn)  # the positions held come before any this write takes
            held.forget()
            self._holding = False
            try:
                return fn(conn)
            finally:
                members.changing()
                held.forget()  # the next position is read again: this write may have taken some
                self._holding = True

        return await writer.run(changing, bulk=bulk)

    def _effects(self, conn: sqlite3.Connection, effects: Effects[T], apply: Callable[[], T]) -> Outcome[T]:
        """Run one write with its idempotency and events, inside the open transaction."""
        if effects.idempotency is not None:
            scope, key = effects.idempotency
            row = conn.execute(
                dialect.IDEMPOTENT_RESULT.sqlite, (scope, key)
            ).fetchone()
            if row is not None:
                return Outcome(replayed=row["result"])
        value = apply()
        if effects.idempotency is not None and effects.result is not None and value is not None:
            scope, key = effects.idempotency
            conn.execute(
                "INSERT INTO idempotency (scope, key, result, created_ms) VALUES (?, ?, ?, strftime('%s')*1000)",
                (scope, key, effects.result(value)),
            )
        return Outcome(value=value)

    def _log_events(
        self, conn: sqlite3.Connection, thread_id: str, items: list[tuple[str, bytes]], now_ms: int,
        message_ms: int | None, *, members: Members | None = None,
    ) -> list[Event]:
        """Append a write's events to the log.

        With ``members`` (the thread's live members, for a write that changes no membership:
        ``_publishable`` without ``on_position``) each event's recipients are those of them whose
        window holds ``message_ms``: for an event not logged yet that is exactly the recipient
        rule (every live stay began at or before the next position, and every closed stay ended
        at or before the last one taken; positions are never reused). Such a write holds its
        events back to the end of the transaction (:mod:`.held`), unless it runs as a write
        that may change memberships (:meth:`_write`).
        """
        if members is not None:
            recipients = members.window(message_ms)
            if self._holding:
                add = self._held.add
                return [
                    Event(add(conn, thread_id, kind, payload, now_ms, message_ms), thread_id, kind, payload, now_ms,
                          recipients, message_ms)
                    for kind, payload in items
                ]
        else:
            recipients = ()
        # One cursor, kept: ``conn.execute`` makes (and registers) a cursor per statement. Only the
        # writer logs events, one write at a time, so it is never shared.
        cached = self._event_cursor
        if cached is None or cached[0] is not conn:
            cached = self._event_cursor = (conn, conn.cursor())
        cursor = cached[1]
        events = []
        for kind, payload in items:
            # A bytearray binds as the same BLOB as bytes, without the adapter lookup bytes take.
            cursor.execute(_LOG_EVENT, (thread_id, kind, bytearray(payload), now_ms, message_ms))
            position: int = cursor.lastrowid  # type: ignore[assignment]  # an INSERT's rowid is never None
            events.append(Event(position, thread_id, kind, payload, now_ms, recipients, message_ms))
        return events

    @staticmethod
    def _recipients(conn: sqlite3.Connection, event: Event) -> tuple[str, ...]:
        """Members whose stay covers the event's position and, for one revealing a message, whose window holds it."""
        rows = conn.execute(
            f"SELECT p.user_id FROM participants p WHERE {_RECIPIENT}",
            (event.thread_id, event.position, event.position, event.message_ms, event.message_ms),
        ).fetchall()
        return tuple(r["user_id"] for r in rows)

    def _publishable(
        self, conn: sqlite3.Connection, thread_id: str, effects: Effects[Any], value: Any, now_ms: int,
        on_position: Callable[[int | None, int], None] | None = None, *, members: Members | None = None,
    ) -> list[Event]:
        """Store the events of a write, then let ``on_position`` adjust memberships before recipients are read.

        ``on_position`` gets the position of the write's first event (None when it has none) and the
        last position taken before this write. Without it the write changes no membership, and the
        recipients come from the thread's live members (:attr:`_members`, or ``members`` when the
        write has them already): such a write must be run with ``keeps_members`` (:meth:`_write`).
        """
        before = last_position(conn) if on_position is not None else 0
        items = effects.events(value) if effects.events is not None and value is not None else []
        reveals = effects.reveals(value) if effects.reveals is not None and items else None
        if on_position is None:
            if not items:
                return []
            if members is None:
                members = self._members.of(conn, thread_id)
            return self._log_events(conn, thread_id, items, now_ms, reveals, members=members)
        events = self._log_events(conn, thread_id, items, now_ms, reveals)
        on_position(events[0].position if events else None, before)
        for event in events:
            event.recipients = self._recipients(conn, event)
        return events

    @staticmethod
    def _next_ids(
        conn: sqlite3.Connection, thread_id: str, count: int, now_ms: int, *, live: bool = False
    ) -> list[tuple[int, int]]:
        """Allocate (sequence id, epoch-ms message id) pairs for new messages: an UPDATE, then a SELECT of the row.

        The row's ``activity_minute`` (the admin pages' index, migration 0048) is written by a
        second UPDATE only when the minute of ``now_ms`` is not the stored one.

        Each id is ``max(now, previous + 1)``; for ``count`` ids the last is
        ``max(now + count - 1, last + count)`` (as on PostgreSQL). With ``live``, the UPDATE
        also checks that the thread is not deleted (a send's check and allocation in one step).

        Raises:
            NotAllowed: with ``live``, the thread is missing or deleted.
            StoreError: without ``live``, the thread is missing.
        """
        guard = " AND deleted_ms IS NULL" if live else ""
        # An UPDATE and a SELECT, not ``UPDATE ... RETURNING``: SQLite buffers what a statement returns
        # in an ephemeral table opened and closed at each run, which cost more than the second
        # statement (under callgrind ~52k instructions against ~37k for the pair).
        updated = conn.execute(
            "UPDATE threads SET last_seq = last_seq + ?1, "
            f"last_message_id = max(?2 + ?1 - 1, last_message_id + ?1), last_message_ms = ?2 WHERE id = ?3{guard}",
            (count, now_ms, thread_id),
        ).rowcount
        if updated != 1:
            if live:
                raise NotAllowed(thread_missing=True)
            raise StoreError(f"no thread {thread_id!r}")
        row = conn.execute(
            "SELECT last_seq, last_message_id, activity_minute FROM threads WHERE id = ?", (thread_id,)
        ).fetchone()
        seq, last_id = int(row[0]), int(row[1])
        if row[2] != now_ms // ACTIVITY_WIDTH_MS:  # the admin pages' index moves once a minute, not per send
            conn.execute("UPDATE threads SET activity_minute = ?1 / ?2 WHERE id = ?3",
                         (now_ms, ACTIVITY_WIDTH_MS, thread_id))
        return [(seq - count + k, last_id - count + k) for k in range(1, count + 1)]

    @staticmethod
    def _refuse(conn: sqlite3.Connection, thread_id: str, user_id: str) -> None:
        """Raise why a user may not write to a thread, if they may not (one read).

        Raises:
            NotAllowed: the thread is missing or deleted, or the user is not a live member.
        """
        row = conn.execute(
            "SELECT t.deleted_ms IS NULL AS live, EXISTS (SELECT 1 FROM participants p WHERE p.thread_id = t.id "
            f"AND p.user_id = ? AND p.{LIVE_MEMBER}) AS member FROM threads t WHERE t.id = ?",
            (user_id, thread_id),
        ).fetchone()
        if row is None or not row["live"]:
            raise NotAllowed(thread_missing=True)
        if not row["member"]:
            raise NotAllowed(thread_missing=False)

    def _insert_messages(
        self, conn: sqlite3.Connection, thread_id: str, drafts: Sequence[MessageDraft], now_ms: int
    ) -> list[MessageRecord]:
        pairs = self._next_ids(conn, thread_id, len(drafts), now_ms)
        return self._store_messages(conn, thread_id, pairs, drafts, now_ms)

    def _store_messages(
        self, conn: sqlite3.Connection, thread_id: str, pairs: list[tuple[int, int]], drafts: Sequence[MessageDraft],
        now_ms: int,
    ) -> list[MessageRecord]:
        """Insert new messages under ids from :meth:`_next_ids` (and link their images)."""
        records = [drafted_message(thread_id, seq, mid, d, now_ms) for (seq, mid), d in zip(pairs, drafts, strict=True)]
        sql = f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        if len(records) == 1:
            conn.execute(sql, message_values(records[0]))  # a send: no executemany machinery
        else:
            conn.executemany(sql, [message_values(r) for r in records])
        for record, draft in zip(records, drafts, strict=True):
            if draft.attachments:
                self._link_images(conn, record, draft.attachments)
        return records

    @staticmethod
    def _join(conn: sqlite3.Connection, thread_id: str, members: Sequence[ParticipantRecord], pos: int) -> None:
        conn.executemany(
            "INSERT INTO participants (thread_id, user_id, display_name, share_history_ms, metadata, "
            "joined_pos) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (thread_id, p.user_id, p.display_name, p.share_history_ms, dump_json(p.metadata), pos)
                for p in members
            ],
        )
