"""The embedded store: SQLite in WAL mode behind one writer thread.

Every write goes through the one write connection, owned by a dedicated
thread, so writers never contend and "database is locked" cannot happen; the
thread commits queued writes in groups, and an idle writer lets the event
loop commit a write itself when no lock is in the way (:mod:`.writer`).
Point reads and bounded pages (tens of microseconds) run inline on the event
loop with a read connection of its own, which is cheaper than a thread hop;
long reads (backups) run on a small pool of threads. WAL lets every reader
proceed while the writer commits. ``synchronous=NORMAL`` (the
default) keeps every committed transaction through a crash of the process
(SIGKILL); ``FULL`` also survives a power loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from . import migrations
from .admin_queries import SqliteAdminQueries
from .base import Effects, NotAllowed, Outcome, StoreError, StoreUnavailable, TooManyParticipants
from .blobs import FileBlobs
from .records import (
    Event,
    MessageDraft,
    MessageRecord,
    ParticipantRecord,
    ReadReceiptRecord,
    RetentionChange,
    ThreadRecord,
    ThreadUpdate,
    UserRecord,
)
from .rows import (
    MESSAGE_COLUMNS,
    PARTICIPANT_COLUMNS,
    T_THREAD_COLUMNS,
    THREAD_COLUMNS,
    access_from,
    drafted_message,
    dump_json,
    message_from,
    message_values,
    participant_from,
    receipt_from,
    thread_from,
    user_from,
)
from .sqlite_images import SqliteImages
from .webhooks import keep_bounds
from .webhooks_sqlite import SqliteWebhooks
from .writer import Writer

__all__ = ["SqliteStore"]

T = TypeVar("T")
_LIVE_MEMBER = "left_pos IS NULL"


def _connect(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


class _ProbeDone(Exception):
    """Ends the write probe of :meth:`SqliteStore.ping`, rolling it back."""


class SqliteStore(SqliteImages, SqliteAdminQueries):
    """The :class:`~threadline.store.base.Store` on one SQLite file.

    Args:
        path: the database file (created when missing).
        synchronous: SQLite's ``synchronous`` pragma: ``NORMAL`` or ``FULL``.
        readers: how many threads serve reads.
    """

    engine = "sqlite"
    #: One writer orders every event: one partition, whose positions are the old global ones.
    partitions = 1

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
        #: image bytes, as files beside the database (see :mod:`.blobs`).
        self.blobs = FileBlobs(Path(self.path).parent / "images")

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        writer = Writer(lambda: _connect(self.path, self._synchronous), inline=self._synchronous == "NORMAL")
        await writer.start(migrate)
        self._writer = writer
        self._reader = ThreadPoolExecutor(self._readers, thread_name_prefix="threadline-sqlite-reader")

    async def close(self) -> None:
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        if writer is not None:
            await writer.stop()
        if reader is not None:
            reader.shutdown(wait=True)
        with self._lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless a read answers, :class:`StoreReadOnly` unless a write can begin."""
        await self._read(lambda c: c.execute("SELECT 1").fetchone())

        def probe(c: sqlite3.Connection) -> None:
            # BEGIN IMMEDIATE succeeds even on a read-only file: only changing a page tells. The change
            # is rolled back (the raise), so the probe leaves nothing behind.
            c.execute("UPDATE schema_migrations SET applied_ms = applied_ms "
                      "WHERE version = (SELECT max(version) FROM schema_migrations)")
            raise _ProbeDone

        with contextlib.suppress(_ProbeDone):
            await self._write(probe)

    async def resource_identity(self, resource_id: str, key_fingerprint: str) -> tuple[str, str]:
        def run(c: sqlite3.Connection) -> tuple[str, str]:
            query = "SELECT resource_id, key_fingerprint FROM resource_identity WHERE id = 1"
            row = c.execute(query).fetchone()
            if row is None:  # only the first opening writes, so a read-only database still opens
                c.execute(
                    "INSERT INTO resource_identity (id, resource_id, key_fingerprint, created_ms) "
                    "VALUES (1, ?, ?, strftime('%s')*1000)",
                    (resource_id, key_fingerprint),
                )
                row = c.execute(query).fetchone()
            return str(row[0]), str(row[1])

        return await self._write(run)

    @property
    def webhooks(self) -> SqliteWebhooks:
        """The webhook tables (subscriptions, cursors, leases, dead letters)."""
        return SqliteWebhooks(self)

    async def backup(self, path: str | Path) -> int:
        """Write a consistent copy of the database to ``path`` while the server keeps running.

        Uses SQLite's online backup API from a read connection, which sees one
        committed snapshot (WAL lets writers go on meanwhile). The copy is
        written beside ``path`` and renamed into place, so ``path`` never holds
        a partial copy; it is a self-contained file (rollback journal, no WAL).
        The image files it names are copied to ``<path>.images/``.

        Args:
            path: the file to write (replaced if it exists).

        Returns:
            The size of the copy in bytes.

        Raises:
            StoreUnavailable: the store is closed.
            sqlite3.Error: the copy could not be written or failed ``PRAGMA quick_check``.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")

        def run(conn: sqlite3.Connection) -> int:
            partial.unlink(missing_ok=True)
            copy = sqlite3.connect(str(partial), isolation_level=None)
            try:
                conn.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")
                verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    raise sqlite3.DatabaseError(f"the copy failed its check: {verdict}")
            finally:
                copy.close()
            partial.replace(target)
            self._backup_images(target)
            return target.stat().st_size

        return await self._read(run)

    # -- plumbing ----------------------------------------------------------------------------------

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

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, bulk: bool = False) -> T:
        """Run ``fn`` on the write connection in a committed transaction (see :mod:`.writer`).

        ``bulk`` marks a write of unbounded size, which never runs on the event loop.
        """
        writer = self._writer
        if writer is None:
            raise StoreUnavailable("the store is closed")
        return await writer.run(fn, bulk=bulk)

    def _effects(self, conn: sqlite3.Connection, effects: Effects[T], apply: Callable[[], T]) -> Outcome[T]:
        """Run one write with its idempotency and events, inside the open transaction."""
        if effects.idempotency is not None:
            scope, key = effects.idempotency
            row = conn.execute(
                "SELECT result FROM idempotency WHERE scope = ? AND key = ?", (scope, key)
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

    @staticmethod
    def _log_events(
        conn: sqlite3.Connection, thread_id: str, items: list[tuple[str, bytes]], now_ms: int,
        message_ms: int | None,
    ) -> list[Event]:
        events = []
        for kind, payload in items:
            cursor = conn.execute(
                "INSERT INTO events (thread_id, type, payload, created_ms, message_ms) VALUES (?, ?, ?, ?, ?)",
                (thread_id, kind, payload, now_ms, message_ms),
            )
            position = cursor.lastrowid
            assert position is not None
            events.append(Event(position, thread_id, kind, payload, now_ms, message_ms=message_ms))
        return events

    @staticmethod
    def _current_position(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row["seq"]) if row else 0

    @staticmethod
    def _recipients(conn: sqlite3.Connection, event: Event) -> tuple[str, ...]:
        """Members whose stay covers the event's position and, for one revealing a message, whose window holds it."""
        rows = conn.execute(
            "SELECT user_id FROM participants WHERE thread_id = ? AND joined_pos <= ? "
            "AND (left_pos IS NULL OR left_pos >= ?) AND (? IS NULL OR share_history_ms <= ?)",
            (event.thread_id, event.position, event.position, event.message_ms, event.message_ms),
        ).fetchall()
        return tuple(r["user_id"] for r in rows)

    def _publishable(
        self, conn: sqlite3.Connection, thread_id: str, effects: Effects[Any], value: Any, now_ms: int,
        on_position: Callable[[int | None, int], None] | None = None,
    ) -> list[Event]:
        """Store the events of a write, then let ``on_position`` adjust memberships before recipients are read.

        ``on_position`` gets the position of the write's first event (None when it has none) and the
        last position taken before this write.
        """
        before = self._current_position(conn) if on_position is not None else 0
        items = effects.events(value) if effects.events is not None and value is not None else []
        reveals = effects.reveals(value) if effects.reveals is not None and items else None
        events = self._log_events(conn, thread_id, items, now_ms, reveals)
        if on_position is not None:
            on_position(events[0].position if events else None, before)
        for event in events:
            event.recipients = self._recipients(conn, event)
        return events

    @staticmethod
    def _next_ids(conn: sqlite3.Connection, thread_id: str, count: int, now_ms: int) -> list[tuple[int, int]]:
        """Allocate (sequence id, epoch-ms message id) pairs for new messages, in one statement.

        Each id is ``max(now, previous + 1)``; for ``count`` ids the last is
        ``max(now + count - 1, last + count)`` (as on PostgreSQL).
        """
        row = conn.execute(
            "UPDATE threads SET last_seq = last_seq + ?1, "
            "last_message_id = max(?2 + ?1 - 1, last_message_id + ?1), last_message_ms = ?2 "
            "WHERE id = ?3 RETURNING last_seq, last_message_id",
            (count, now_ms, thread_id),
        ).fetchone()
        if row is None:
            raise StoreError(f"no thread {thread_id!r}")
        seq, last_id = int(row["last_seq"]), int(row["last_message_id"])
        return [(seq - count + k, last_id - count + k) for k in range(1, count + 1)]

    def _insert_messages(
        self, conn: sqlite3.Connection, thread_id: str, drafts: Sequence[MessageDraft], now_ms: int
    ) -> list[MessageRecord]:
        pairs = self._next_ids(conn, thread_id, len(drafts), now_ms)
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

    # -- users -------------------------------------------------------------------------------------

    async def create_user(self, user: UserRecord) -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT INTO users (id, created_ms, token_generation) VALUES (?, ?, ?)",
                (user.id, user.created_ms, user.token_generation),
            )
        )

    async def get_user(self, user_id: str) -> UserRecord | None:
        row = await self._peek(
            lambda c: c.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        )
        return None if row is None else user_from(row)

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserRecord]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}

        def run(c: sqlite3.Connection) -> list[sqlite3.Row]:
            marks = ",".join("?" * len(ids))
            return c.execute(f"SELECT * FROM users WHERE id IN ({marks})", ids).fetchall()

        return {row["id"]: user_from(row) for row in await self._peek(run)}

    async def revoke_tokens(self, user_id: str) -> int | None:
        def run(c: sqlite3.Connection) -> int | None:
            row = c.execute(
                "UPDATE users SET token_generation = token_generation + 1 "
                "WHERE id = ? AND deleted_ms IS NULL RETURNING token_generation",
                (user_id,),
            ).fetchone()
            return None if row is None else int(row[0])

        return await self._write(run)

    async def delete_user(self, user_id: str, now_ms: int) -> bool:
        def run(c: sqlite3.Connection) -> bool:
            done = c.execute(
                "UPDATE users SET deleted_ms = ?, token_generation = token_generation + 1 "
                "WHERE id = ? AND deleted_ms IS NULL",
                (now_ms, user_id),
            ).rowcount
            if done:
                c.execute(
                    f"UPDATE participants SET left_pos = ? WHERE user_id = ? AND {_LIVE_MEMBER}",
                    (self._current_position(c), user_id),
                )
            return bool(done)

        return await self._write(run)

    # -- threads -------------------------------------------------------------------------------------

    async def create_thread(
        self,
        thread: ThreadRecord,
        participants: Sequence[ParticipantRecord],
        drafts: Sequence[MessageDraft],
        effects: Effects[list[MessageRecord]],
        *,
        max_members: int | None = None,
    ) -> Outcome[list[MessageRecord]]:
        def run(c: sqlite3.Connection) -> Outcome[list[MessageRecord]]:
            def apply() -> list[MessageRecord]:
                if max_members is not None and len({p.user_id for p in participants}) > max_members:
                    raise TooManyParticipants(max_members)
                c.execute(
                    "INSERT INTO threads (id, topic, created_ms, created_by, metadata, retention, expires_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (thread.id, thread.topic, thread.created_ms, thread.created_by,
                     dump_json(thread.metadata), dump_json(thread.retention), thread.expires_ms),
                )
                return self._insert_messages(c, thread.id, drafts, thread.created_ms)

            outcome = self._effects(c, effects, apply)
            if outcome.value is not None:
                outcome.events = self._publishable(
                    c, thread.id, effects, outcome.value, thread.created_ms,
                    lambda pos, last: self._join(c, thread.id, participants, pos or last + 1),
                )
            return outcome

        return await self._write(run)

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        row = await self._peek(
            lambda c: c.execute(f"SELECT {THREAD_COLUMNS} FROM threads WHERE id = ?", (thread_id,)).fetchone()
        )
        return None if row is None else thread_from(row)

    async def get_access(
        self, thread_id: str, user_id: str
    ) -> tuple[ThreadRecord | None, ParticipantRecord | None]:
        def run(c: sqlite3.Connection) -> tuple[ThreadRecord | None, ParticipantRecord | None]:
            row = c.execute(
                f"SELECT {T_THREAD_COLUMNS}, p.user_id, p.display_name, p.share_history_ms "
                f"FROM threads t LEFT JOIN participants p "
                f"ON p.thread_id = t.id AND p.user_id = ? AND p.{_LIVE_MEMBER} WHERE t.id = ?",
                (user_id, thread_id),
            ).fetchone()
            return (None, None) if row is None else access_from(row)

        return await self._peek(run)

    async def list_threads(
        self, user_id: str, *, start_ms: int | None, limit: int, after: tuple[int, str] | None
    ) -> list[ThreadRecord]:
        def run(c: sqlite3.Connection) -> list[ThreadRecord]:
            sql = (
                f"SELECT {T_THREAD_COLUMNS} FROM participants p JOIN threads t ON t.id = p.thread_id "
                f"WHERE p.user_id = ? AND p.{_LIVE_MEMBER}"
            )
            args: list[Any] = [user_id]
            if start_ms is not None:
                sql += " AND t.last_message_ms >= ?"
                args.append(start_ms)
            if after is not None:
                sql += " AND (t.last_message_ms < ? OR (t.last_message_ms = ? AND t.id < ?))"
                args += [after[0], after[0], after[1]]
            sql += " ORDER BY t.last_message_ms DESC, t.id DESC LIMIT ?"
            args.append(limit)
            return [thread_from(r) for r in c.execute(sql, args).fetchall()]

        return await self._peek(run)

    async def update_thread(
        self,
        thread_id: str,
        *,
        topic: str | None,
        metadata: dict[str, str] | None,
        draft: MessageDraft | None,
        now_ms: int,
        effects: Effects[ThreadUpdate],
        retention: RetentionChange | None = None,
    ) -> Outcome[ThreadUpdate]:
        def run(c: sqlite3.Connection) -> Outcome[ThreadUpdate]:
            old = c.execute(
                "SELECT topic FROM threads WHERE id = ? AND deleted_ms IS NULL", (thread_id,)
            ).fetchone()
            if old is None:
                return Outcome()
            keep = retention is None
            row = c.execute(
                "UPDATE threads SET topic = coalesce(?, topic), metadata = coalesce(?, metadata), "
                "retention = CASE WHEN ? THEN retention ELSE ? END, "
                f"expires_ms = CASE WHEN ? THEN expires_ms ELSE ? END WHERE id = ? RETURNING {THREAD_COLUMNS}",
                (topic, dump_json(metadata), keep, dump_json(retention.policy) if retention else None,
                 keep, retention.expires_ms if retention else None, thread_id),
            ).fetchone()
            changed = draft is not None and topic is not None and topic != old["topic"]
            message = self._insert_messages(c, thread_id, [draft], now_ms)[0] if changed and draft else None
            outcome = Outcome(value=ThreadUpdate(thread_from(row), message))
            outcome.events = self._publishable(c, thread_id, effects, outcome.value, now_ms)
            return outcome

        return await self._write(run)

    async def delete_thread(
        self, thread_id: str, now_ms: int, effects: Effects[ThreadRecord], *, expired_by: int | None = None
    ) -> Outcome[ThreadRecord]:
        dropped: list[str] = []

        def run(c: sqlite3.Connection) -> Outcome[ThreadRecord]:
            dropped.clear()
            row = c.execute(
                "UPDATE threads SET deleted_ms = ? WHERE id = ? AND deleted_ms IS NULL "
                f"AND (? IS NULL OR expires_ms <= ?) RETURNING {THREAD_COLUMNS}",
                (now_ms, thread_id, expired_by, expired_by),
            ).fetchone()
            thread = None if row is None else thread_from(row)
            if thread is not None:
                dropped.extend(self._drop_images(c, thread_id))
            outcome = Outcome(value=thread)
            outcome.events = self._publishable(c, thread_id, effects, thread, now_ms)
            return outcome

        outcome = await self._write(run)
        await self.blobs.delete(dropped)
        return outcome

    async def due_threads(self, now_ms: int, limit: int) -> list[str]:
        rows = await self._peek(
            lambda c: c.execute(
                "SELECT id FROM threads WHERE expires_ms <= ? AND deleted_ms IS NULL ORDER BY expires_ms LIMIT ?",
                (now_ms, limit),
            ).fetchall()
        )
        return [r["id"] for r in rows]

    # -- participants ----------------------------------------------------------------------------------

    async def list_participants(self, thread_id: str, *, skip: int, limit: int) -> list[ParticipantRecord]:
        rows = await self._peek(
            lambda c: c.execute(
                f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE thread_id = ? AND {_LIVE_MEMBER} "
                "ORDER BY id LIMIT ? OFFSET ?",
                (thread_id, limit, skip),
            ).fetchall()
        )
        return [participant_from(r) for r in rows]

    async def count_participants(self, thread_id: str) -> int:
        row = await self._peek(
            lambda c: c.execute(
                f"SELECT count(*) FROM participants WHERE thread_id = ? AND {_LIVE_MEMBER}", (thread_id,)
            ).fetchone()
        )
        return int(row[0])

    async def add_participants(
        self,
        thread_id: str,
        participants: Sequence[ParticipantRecord],
        draft: MessageDraft,
        now_ms: int,
        effects: Effects[MessageRecord | None],
        *,
        max_members: int | None = None,
    ) -> Outcome[MessageRecord | None]:
        def run(c: sqlite3.Connection) -> Outcome[MessageRecord | None]:
            def apply() -> MessageRecord | None:
                # The one writer makes this read and the insert below atomic: the count is exact.
                live = {
                    r["user_id"]
                    for r in c.execute(
                        f"SELECT user_id FROM participants WHERE thread_id = ? AND {_LIVE_MEMBER}",
                        (thread_id,),
                    )
                }
                # Members already in are left exactly as they are (share time, name, metadata).
                fresh = list({p.user_id: p for p in participants if p.user_id not in live}.values())
                if not fresh:
                    return None
                if max_members is not None and len(live) + len(fresh) > max_members:
                    raise TooManyParticipants(max_members)
                draft.participants = fresh
                return self._insert_messages(c, thread_id, [draft], now_ms)[0]

            outcome = self._effects(c, effects, apply)
            if outcome.value is not None:
                added = outcome.value.participants or []
                outcome.events = self._publishable(
                    c, thread_id, effects, outcome.value, now_ms,
                    lambda pos, last: self._join(c, thread_id, added, pos or last + 1),
                )
            return outcome

        return await self._write(run)

    async def remove_participant(
        self, thread_id: str, user_id: str, draft: MessageDraft, now_ms: int,
        effects: Effects[MessageRecord | None],
    ) -> Outcome[MessageRecord | None]:
        def run(c: sqlite3.Connection) -> Outcome[MessageRecord | None]:
            row = c.execute(
                f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE thread_id = ? AND user_id = ? "
                f"AND {_LIVE_MEMBER}",
                (thread_id, user_id),
            ).fetchone()
            if row is None:
                return Outcome()
            draft.participants = [participant_from(row)]
            message = self._insert_messages(c, thread_id, [draft], now_ms)[0]
            outcome: Outcome[MessageRecord | None] = Outcome(value=message)

            def leave(pos: int | None, last: int) -> None:
                # With no event of its own, the member has heard everything up to now and nothing after.
                c.execute(
                    f"UPDATE participants SET left_pos = ? WHERE thread_id = ? AND user_id = ? AND {_LIVE_MEMBER}",
                    (pos if pos is not None else last, thread_id, user_id),
                )

            outcome.events = self._publishable(c, thread_id, effects, message, now_ms, leave)
            return outcome

        return await self._write(run)

    # -- messages ------------------------------------------------------------------------------------------

    async def send_message(
        self, thread_id: str, draft: MessageDraft, now_ms: int, effects: Effects[MessageRecord]
    ) -> Outcome[MessageRecord]:
        def run(c: sqlite3.Connection) -> Outcome[MessageRecord]:
            # Inside the write (the one writer): a removed member can never send, nor replay a key.
            row = c.execute(
                "SELECT t.deleted_ms IS NULL AS live, EXISTS (SELECT 1 FROM participants p WHERE p.thread_id = t.id "
                f"AND p.user_id = ? AND p.{_LIVE_MEMBER}) AS member FROM threads t WHERE t.id = ?",
                (draft.sender_id, thread_id),
            ).fetchone()
            if row is None or not row["live"]:
                raise NotAllowed(thread_missing=True)
            if not row["member"]:
                raise NotAllowed(thread_missing=False)
            outcome = self._effects(c, effects, lambda: self._insert_messages(c, thread_id, [draft], now_ms)[0])
            if outcome.value is not None:
                outcome.events = self._publishable(c, thread_id, effects, outcome.value, now_ms)
            return outcome

        return await self._write(run)

    async def get_message(self, thread_id: str, message_id: str) -> MessageRecord | None:
        def run(c: sqlite3.Connection) -> MessageRecord | None:
            row = c.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = ? AND id = ?", (thread_id, message_id)
            ).fetchone()
            message = None if row is None else message_from(row)
            if message is not None:
                self._fill_attachments(c, [message])
            return message

        return await self._peek(run)

    async def list_messages(
        self, thread_id: str, *, before_seq: int | None, min_created_ms: int, limit: int
    ) -> list[MessageRecord]:
        def run(c: sqlite3.Connection) -> list[MessageRecord]:
            sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = ? AND created_ms >= ?"
            args: list[Any] = [thread_id, min_created_ms]
            if before_seq is not None:
                sql += " AND seq < ?"
                args.append(before_seq)
            sql += " ORDER BY seq DESC LIMIT ?"
            args.append(limit)
            messages = [message_from(r) for r in c.execute(sql, args).fetchall()]
            self._fill_attachments(c, messages)
            return messages

        return await self._peek(run)

    async def update_message(
        self,
        thread_id: str,
        message_id: str,
        *,
        content: str | None,
        metadata: dict[str, str] | None,
        now_ms: int,
        effects: Effects[MessageRecord],
        attachments: Sequence[str] | None = None,
    ) -> Outcome[MessageRecord]:
        dropped: list[str] = []

        def relink(c: sqlite3.Connection, message: MessageRecord) -> None:
            if attachments is None:
                self._fill_attachments(c, [message])
                return
            dropped[:] = self._drop_images(c, thread_id, message_id=message_id, keep=attachments)
            self._link_images(c, message, attachments)

        outcome = await self._write(
            lambda c: self._change_message(
                c, thread_id, message_id, "content = coalesce(?, content), metadata = coalesce(?, metadata), "
                "edited_ms = ?", (content, dump_json(metadata), now_ms), now_ms, effects, relink,
            )
        )
        await self.blobs.delete(dropped)
        return outcome

    async def delete_message(
        self, thread_id: str, message_id: str, now_ms: int, effects: Effects[MessageRecord]
    ) -> Outcome[MessageRecord]:
        dropped: list[str] = []

        def drop(c: sqlite3.Connection, message: MessageRecord) -> None:
            dropped[:] = self._drop_images(c, thread_id, message_id=message_id)

        outcome = await self._write(
            lambda c: self._change_message(
                c, thread_id, message_id, "deleted_ms = ?", (now_ms,), now_ms, effects, drop
            )
        )
        await self.blobs.delete(dropped)
        return outcome

    def _change_message(
        self, c: sqlite3.Connection, thread_id: str, message_id: str, assignments: str, values: tuple[Any, ...],
        now_ms: int, effects: Effects[MessageRecord],
        then: Callable[[sqlite3.Connection, MessageRecord], None] | None = None,
    ) -> Outcome[MessageRecord]:
        """Change a live message (raising its version) and log the change's events; None if not live.

        ``then`` runs on the changed message before its events are made (its images).
        """
        row = c.execute(
            f"UPDATE messages SET {assignments}, version = max(version + 1, ?) "
            f"WHERE thread_id = ? AND id = ? AND deleted_ms IS NULL RETURNING {MESSAGE_COLUMNS}",
            (*values, now_ms, thread_id, message_id),
        ).fetchone()
        message = None if row is None else message_from(row)
        if message is not None and then is not None:
            then(c, message)
        outcome = Outcome(value=message)
        outcome.events = self._publishable(c, thread_id, effects, message, now_ms)
        return outcome

    # -- read receipts -------------------------------------------------------------------------------------

    async def send_read_receipt(
        self, receipt: ReadReceiptRecord, effects: Effects[ReadReceiptRecord]
    ) -> Outcome[ReadReceiptRecord]:
        def run(c: sqlite3.Connection) -> Outcome[ReadReceiptRecord]:
            def apply() -> ReadReceiptRecord:
                c.execute(
                    "INSERT INTO read_receipts (thread_id, user_id, message_id, read_ms) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (thread_id, user_id) DO UPDATE SET message_id = excluded.message_id, "
                    "read_ms = excluded.read_ms",
                    (receipt.thread_id, receipt.user_id, receipt.message_id, receipt.read_ms),
                )
                return receipt

            outcome = self._effects(c, effects, apply)
            if outcome.value is not None:
                outcome.events = self._publishable(c, receipt.thread_id, effects, receipt, receipt.read_ms)
            return outcome

        return await self._write(run)

    async def list_read_receipts(
        self, thread_id: str, *, skip: int, limit: int, min_message_ms: int = 0
    ) -> list[ReadReceiptRecord]:
        window = (
            " AND EXISTS (SELECT 1 FROM messages m WHERE m.thread_id = r.thread_id AND m.id = r.message_id "
            "AND m.created_ms >= ?)" if min_message_ms > 0 else ""
        )
        args = (thread_id, min_message_ms, limit, skip) if window else (thread_id, limit, skip)
        rows = await self._peek(
            lambda c: c.execute(
                "SELECT r.thread_id, r.user_id, r.message_id, r.read_ms FROM read_receipts r "
                f"WHERE r.thread_id = ?{window} ORDER BY r.read_ms DESC, r.user_id LIMIT ? OFFSET ?",
                args,
            ).fetchall()
        )
        return [receipt_from(r) for r in rows]

    # -- events ----------------------------------------------------------------------------------------------

    async def events_since(self, user_id: str, after: int | Sequence[int], limit: int) -> list[Event]:
        if not isinstance(after, int):
            (after,) = after  # one partition
        def run(c: sqlite3.Connection) -> list[Event]:
            rows = c.execute(
                "SELECT e.position, e.thread_id, e.type, e.payload, e.created_ms, e.message_ms FROM events e "
                "WHERE e.position > ? AND EXISTS (SELECT 1 FROM participants p WHERE p.thread_id = e.thread_id "
                "AND p.user_id = ? AND p.joined_pos <= e.position "
                "AND (p.left_pos IS NULL OR p.left_pos >= e.position) "
                "AND (e.message_ms IS NULL OR p.share_history_ms <= e.message_ms)) ORDER BY e.position LIMIT ?",
                (after, user_id, limit),
            ).fetchall()
            return [
                Event(r["position"], r["thread_id"], r["type"], bytes(r["payload"]), r["created_ms"], (user_id,),
                      r["message_ms"])
                for r in rows
            ]

        return await self._peek(run)

    async def event_bounds(self) -> tuple[list[int], list[int]]:
        def run(c: sqlite3.Connection) -> tuple[list[int], list[int]]:
            row = c.execute("SELECT min(position), max(position) FROM events").fetchone()
            latest = self._current_position(c)
            if row[0] is None:
                return [latest], [latest]
            return [int(row[0]) - 1], [latest]

        return await self._peek(run)

    async def prune_events(self, before_ms: int) -> int:
        def run(c: sqlite3.Connection) -> int:
            # Keep what a webhook subscription has not handled yet (one partition: one bound).
            keep = keep_bounds([str(r[0]) for r in c.execute("SELECT cursor FROM webhook_subscriptions")], 1)
            bound = keep[0] if keep is not None else None
            return int(c.execute(
                "DELETE FROM events WHERE created_ms < ? AND (? IS NULL OR position <= ?)", (before_ms, bound, bound)
            ).rowcount)

        return await self._write(run, bulk=True)

    async def prune_idempotency(self, before_ms: int) -> int:
        return await self._write(
            lambda c: c.execute("DELETE FROM idempotency WHERE created_ms < ?", (before_ms,)).rowcount,
            bulk=True,
        )


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply the pending migrations on an open connection; return the versions applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_ms INTEGER NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for migration in migrations.load("sqlite"):
        if migration.version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, strftime('%s')*1000)",
                (migration.version, migration.name),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(migration.version)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations hold no ';' inside literals)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
