"""Threads in the SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from .. import dialect
from ..base import Effects, Outcome, TooManyParticipants
from ..dialect import LISTED_THREAD_COLUMNS, LIVE_MEMBER, VISIBLE_ACTIVITY
from ..records import MessageDraft, MessageRecord, ParticipantRecord, RetentionChange, ThreadRecord, ThreadUpdate
from ..rows import THREAD_COLUMNS, access_from, dump_json, thread_from
from .core import SqliteCore

__all__ = ["SqliteThreads"]


class SqliteThreads(SqliteCore):
    """Threads of :class:`~threadline.store.sqlite.SqliteStore`."""

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
                    dialect.CREATE_THREAD.sqlite,
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
            lambda c: c.execute(dialect.GET_THREAD.sqlite, (thread_id,)).fetchone()
        )
        return None if row is None else thread_from(row)

    async def get_access(
        self, thread_id: str, user_id: str
    ) -> tuple[ThreadRecord | None, ParticipantRecord | None]:
        def run(c: sqlite3.Connection) -> tuple[ThreadRecord | None, ParticipantRecord | None]:
            row = c.execute(
                dialect.GET_ACCESS.sqlite,
                (user_id, thread_id),
            ).fetchone()
            return (None, None) if row is None else access_from(row)

        return await self._peek(run)

    async def list_threads(
        self, user_id: str, *, start_ms: int | None, limit: int, after: tuple[int, str] | None
    ) -> list[ThreadRecord]:
        def run(c: sqlite3.Connection) -> list[ThreadRecord]:
            sql = (
                f"SELECT {LISTED_THREAD_COLUMNS} FROM participants p JOIN threads t ON t.id = p.thread_id "
                f"WHERE p.user_id = ? AND p.{LIVE_MEMBER}"
            )
            args: list[Any] = [user_id]
            if start_ms is not None:
                sql += f" AND {VISIBLE_ACTIVITY} >= ?"
                args.append(start_ms)
            if after is not None:
                sql += f" AND ({VISIBLE_ACTIVITY} < ? OR ({VISIBLE_ACTIVITY} = ? AND t.id < ?))"
                args += [after[0], after[0], after[1]]
            sql += f" ORDER BY {VISIBLE_ACTIVITY} DESC, t.id DESC LIMIT ?"
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
                dialect.UPDATE_THREAD.sqlite,
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
                dialect.DUE_THREADS.sqlite,
                (now_ms, limit),
            ).fetchall()
        )
        return [r["id"] for r in rows]
