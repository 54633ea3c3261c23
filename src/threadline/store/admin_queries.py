"""The admin reads (``/admin``, the Explorer) on both engines: every identity and thread of the resource.

Chat users only ever see their own threads; these reads cross the whole
resource, newest first, with keyset cursors, so a page costs the same
wherever it starts. They are mixed into the stores; each engine's class
supplies its own connection plumbing (``_peek`` for SQLite, ``_read`` for
PostgreSQL).

Search is a case-insensitive substring test (``instr``/``strpos``, so ``%``
and ``_`` in the text mean themselves).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .records import ThreadRecord, UserRecord
from .rows import T_THREAD_COLUMNS, thread_from, user_from

__all__ = ["PostgresAdminQueries", "SqliteAdminQueries"]

T = TypeVar("T")
_ACTIVITY = "coalesce(t.last_message_ms, t.created_ms)"
_LIVE_COUNT = "(SELECT count(*) FROM participants p WHERE p.thread_id = t.id AND p.left_pos IS NULL)"
_COUNTS = (
    "SELECT (SELECT count(*) FROM users WHERE deleted_ms IS NULL) AS users, "
    "(SELECT count(*) FROM threads WHERE deleted_ms IS NULL) AS threads, "
    "(SELECT count(*) FROM messages) AS messages, "
    "(SELECT count(*) FROM participants WHERE left_pos IS NULL) AS memberships, "
    "(SELECT count(*) FROM events) AS events"
)


def _counts(row: Any) -> dict[str, int]:
    return {name: int(row[name]) for name in ("users", "threads", "messages", "memberships", "events")}


class SqliteAdminQueries:
    """The admin reads of :class:`~threadline.store.sqlite.SqliteStore`."""

    async def _peek(self, fn: Callable[[sqlite3.Connection], T]) -> T:  # pragma: no cover - the store's own
        raise NotImplementedError

    async def admin_users(
        self, *, search: str | None, after: tuple[int, str] | None, limit: int
    ) -> list[UserRecord]:
        """Identities, deleted ones included, newest first (see :meth:`Store.admin_users`)."""
        sql = "SELECT * FROM users WHERE 1 = 1"
        args: list[Any] = []
        if search:
            sql += " AND instr(lower(id), lower(?)) > 0"
            args.append(search)
        if after is not None:
            sql += " AND (created_ms < ? OR (created_ms = ? AND id < ?))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY created_ms DESC, id DESC LIMIT ?"
        args.append(limit)
        rows = await self._peek(lambda c: c.execute(sql, args).fetchall())
        return [user_from(r) for r in rows]

    async def admin_threads(
        self, *, topic: str | None, member: str | None, after: tuple[int, str] | None, limit: int
    ) -> list[tuple[ThreadRecord, int]]:
        """Threads, deleted ones included, latest activity first, with their live member counts."""
        sql = f"SELECT {T_THREAD_COLUMNS}, {_LIVE_COUNT} AS members FROM threads t WHERE 1 = 1"
        args: list[Any] = []
        if topic:
            sql += " AND instr(lower(t.topic), lower(?)) > 0"
            args.append(topic)
        if member:
            sql += (" AND EXISTS (SELECT 1 FROM participants m WHERE m.thread_id = t.id AND m.left_pos IS NULL "
                    "AND instr(lower(m.user_id), lower(?)) > 0)")
            args.append(member)
        if after is not None:
            sql += f" AND ({_ACTIVITY} < ? OR ({_ACTIVITY} = ? AND t.id < ?))"
            args += [after[0], after[0], after[1]]
        sql += f" ORDER BY {_ACTIVITY} DESC, t.id DESC LIMIT ?"
        args.append(limit)
        rows = await self._peek(lambda c: c.execute(sql, args).fetchall())
        return [(thread_from(r), int(r["members"])) for r in rows]

    async def admin_counts(self) -> dict[str, int]:
        """Live identities and threads, messages, live memberships and kept events."""
        return _counts(await self._peek(lambda c: c.execute(_COUNTS).fetchone()))


class PostgresAdminQueries:
    """The admin reads of :class:`~threadline.store.postgres.PostgresStore` (ids ordered bytewise, as SQLite)."""

    async def _read(self, fn: Callable[[Any], Awaitable[T]]) -> T:  # pragma: no cover - the store's own
        raise NotImplementedError

    async def admin_users(
        self, *, search: str | None, after: tuple[int, str] | None, limit: int
    ) -> list[UserRecord]:
        """Identities, deleted ones included, newest first (see :meth:`Store.admin_users`)."""
        sql = "SELECT * FROM users WHERE true"
        args: list[Any] = []
        if search:
            args.append(search)
            sql += f" AND strpos(lower(id), lower(${len(args)})) > 0"
        if after is not None:
            args += [after[0], after[1]]
            a, b = len(args) - 1, len(args)
            sql += f' AND (created_ms < ${a} OR (created_ms = ${a} AND id COLLATE "C" < ${b}))'
        args.append(limit)
        sql += f' ORDER BY created_ms DESC, id COLLATE "C" DESC LIMIT ${len(args)}'
        rows = await self._read(lambda c: c.fetch(sql, *args))
        return [user_from(r) for r in rows]

    async def admin_threads(
        self, *, topic: str | None, member: str | None, after: tuple[int, str] | None, limit: int
    ) -> list[tuple[ThreadRecord, int]]:
        """Threads, deleted ones included, latest activity first, with their live member counts."""
        sql = f"SELECT {T_THREAD_COLUMNS}, {_LIVE_COUNT} AS members FROM threads t WHERE true"
        args: list[Any] = []
        if topic:
            args.append(topic)
            sql += f" AND strpos(lower(t.topic), lower(${len(args)})) > 0"
        if member:
            args.append(member)
            sql += (" AND EXISTS (SELECT 1 FROM participants m WHERE m.thread_id = t.id AND m.left_pos IS NULL "
                    f"AND strpos(lower(m.user_id), lower(${len(args)})) > 0)")
        if after is not None:
            args += [after[0], after[1]]
            a, b = len(args) - 1, len(args)
            sql += f' AND ({_ACTIVITY} < ${a} OR ({_ACTIVITY} = ${a} AND t.id COLLATE "C" < ${b}))'
        args.append(limit)
        sql += f' ORDER BY {_ACTIVITY} DESC, t.id COLLATE "C" DESC LIMIT ${len(args)}'
        rows = await self._read(lambda c: c.fetch(sql, *args))
        return [(thread_from(r), int(r["members"])) for r in rows]

    async def admin_counts(self) -> dict[str, int]:
        """Live identities and threads, messages, live memberships and kept events."""
        return _counts(await self._read(lambda c: c.fetchrow(_COUNTS)))
