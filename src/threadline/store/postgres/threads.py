"""Threads in the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import dialect
from ..base import Effects, Outcome, TooManyParticipants
from ..dialect import LISTED_THREAD_COLUMNS, LIVE_MEMBER, VISIBLE_ACTIVITY
from ..records import MessageDraft, MessageRecord, ParticipantRecord, RetentionChange, ThreadRecord, ThreadUpdate
from ..rows import THREAD_COLUMNS, access_from, dump_json, thread_from
from .core import Connection, PostgresCore
from .finish import _Finish

__all__ = ["PostgresThreads"]


class PostgresThreads(PostgresCore):
    """Threads of :class:`~threadline.store.postgres.PostgresStore`."""

    async def create_thread(
        self,
        thread: ThreadRecord,
        participants: Sequence[ParticipantRecord],
        drafts: Sequence[MessageDraft],
        effects: Effects[list[MessageRecord]],
        *,
        max_members: int | None = None,
    ) -> Outcome[list[MessageRecord]]:
        async def run(c: Connection, finish: _Finish) -> Outcome[list[MessageRecord]]:
            async def apply() -> list[MessageRecord]:
                if max_members is not None and len({p.user_id for p in participants}) > max_members:
                    raise TooManyParticipants(max_members)
                await c.execute(
                    dialect.CREATE_THREAD.postgres,
                    thread.id, thread.topic, thread.created_ms, thread.created_by,
                    dump_json(thread.metadata), dump_json(thread.retention), thread.expires_ms,
                )
                return await self._insert_messages(c, thread.id, drafts, thread.created_ms)

            outcome = await self._effects(c, effects, apply)
            if outcome.value is not None:
                joined = await self._join(c, thread.id, participants)
                outcome.events = await self._publishable(
                    c, finish, thread.id, effects, outcome.value, thread.created_ms, joined=joined
                )
            return outcome

        return await self._write_events(run)

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        row = await self._read(
            lambda c: c.fetchrow(dialect.GET_THREAD.postgres, thread_id)
        )
        return None if row is None else thread_from(row)

    async def get_access(
        self, thread_id: str, user_id: str
    ) -> tuple[ThreadRecord | None, ParticipantRecord | None]:
        row = await self._read(
            lambda c: c.fetchrow(
                dialect.GET_ACCESS.postgres,
                user_id, thread_id,
            )
        )
        return (None, None) if row is None else access_from(row)

    async def list_threads(
        self, user_id: str, *, start_ms: int | None, limit: int, after: tuple[int, str] | None
    ) -> list[ThreadRecord]:
        """List the user's threads by (last activity desc, id desc), after the ``after`` cursor."""
        sql = (
            f"SELECT {LISTED_THREAD_COLUMNS} FROM participants p JOIN threads t ON t.id = p.thread_id "
            f"WHERE p.user_id = $1 AND p.{LIVE_MEMBER}"
        )
        args: list[Any] = [user_id]
        if start_ms is not None:
            args.append(start_ms)
            sql += f" AND {VISIBLE_ACTIVITY} >= ${len(args)}"
        if after is not None:
            args += [after[0], after[1]]
            a, b = len(args) - 1, len(args)
            sql += (
                f" AND ({VISIBLE_ACTIVITY} < ${a} OR ({VISIBLE_ACTIVITY} = ${a} "
                f'AND t.id COLLATE "C" < ${b}))'
            )
        args.append(limit)
        # COLLATE "C": order ids bytewise, as SQLite does, whatever the database's collation.
        sql += f' ORDER BY {VISIBLE_ACTIVITY} DESC NULLS LAST, t.id COLLATE "C" DESC LIMIT ${len(args)}'
        rows = await self._read(lambda c: c.fetch(sql, *args))
        return [thread_from(r) for r in rows]

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
        """Set the given properties (None: unchanged); ``topicUpdated`` only when the topic changes."""

        async def run(c: Connection, finish: _Finish) -> Outcome[ThreadUpdate]:
            old = await c.fetchval(
                "SELECT topic FROM threads WHERE id = $1 AND deleted_ms IS NULL FOR UPDATE", thread_id
            )
            if old is None:
                return Outcome()
            keep = retention is None
            row = await c.fetchrow(
                dialect.UPDATE_THREAD.postgres,
                topic, dump_json(metadata), keep, dump_json(retention.policy) if retention else None,
                keep, retention.expires_ms if retention else None, thread_id,
            )
            changed = draft is not None and topic is not None and topic != old
            message = (await self._insert_messages(c, thread_id, [draft], now_ms))[0] if changed and draft else None
            outcome = Outcome(value=ThreadUpdate(thread_from(row), message))
            outcome.events = await self._publishable(c, finish, thread_id, effects, outcome.value, now_ms)
            return outcome

        return await self._write_events(run)

    async def delete_thread(
        self, thread_id: str, now_ms: int, effects: Effects[ThreadRecord], *, expired_by: int | None = None
    ) -> Outcome[ThreadRecord]:
        """Mark a live thread deleted (with ``expired_by``: only if expired by then); None if not."""

        async def run(c: Connection, finish: _Finish) -> Outcome[ThreadRecord]:
            row = await c.fetchrow(
                "UPDATE threads SET deleted_ms = $1 WHERE id = $2 AND deleted_ms IS NULL "
                f"AND ($3::bigint IS NULL OR expires_ms <= $3) RETURNING {THREAD_COLUMNS}",
                now_ms, thread_id, expired_by,
            )
            thread = None if row is None else thread_from(row)
            if thread is not None:
                await self._drop_images(c, thread_id)
            outcome = Outcome(value=thread)
            outcome.events = await self._publishable(c, finish, thread_id, effects, thread, now_ms)
            return outcome

        return await self._write_events(run)

    async def due_threads(self, now_ms: int, limit: int) -> list[str]:
        rows = await self._read(
            lambda c: c.fetch(
                dialect.DUE_THREADS.postgres,
                now_ms, limit,
            )
        )
        return [r["id"] for r in rows]
