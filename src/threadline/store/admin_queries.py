"""The admin reads (``/admin``, the Explorer) on both engines: every identity and thread of the resource.

Chat users only ever see their own threads; these reads cross the whole
resource, newest first, with keyset cursors, so a page costs the same
wherever it starts. They are mixed into the stores; each engine's class
supplies its own connection plumbing (``_peek`` for SQLite, ``_read`` for
PostgreSQL).

Search is a case-insensitive substring test (``instr``/``strpos``, so ``%``
and ``_`` in the text mean themselves). Each statement is written once, with
``?``, for both engines (:class:`~.dialect.Engine` spells the differences).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .dialect import ACTIVITY_WIDTH_MS, POSTGRES, SQLITE, Engine
from .records import ThreadRecord, UserRecord
from .rows import T_THREAD_COLUMNS, thread_from, user_from

__all__ = ["AdminQueries", "PostgresAdminQueries", "SqliteAdminQueries"]

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


class AdminQueries:
    """The admin reads, over the engine's :meth:`_rows` (see :meth:`Store.admin_users` and its neighbours)."""

    #: the engine the statements are rendered for.
    _sql: Engine

    async def _rows(self, sql: str, args: list[Any]) -> list[Any]:  # pragma: no cover - each engine's own
        """Run a read on the engine and return its rows."""
        raise NotImplementedError

    async def admin_users(
        self, *, search: str | None, after: tuple[int, str] | None, limit: int
    ) -> list[UserRecord]:
        """Identities, deleted ones included, newest first (see :meth:`Store.admin_users`)."""
        sql = "SELECT * FROM users WHERE true"
        args: list[Any] = []
        if search:
            sql += f" AND {self._sql.find}(lower(id), lower(?)) > 0"
            args.append(search)
        page = self._sql.newest_first(sql, args, key="created_ms", ident="id", after=after, limit=limit)
        return [user_from(r) for r in await self._rows(*page)]

    async def admin_threads(
        self, *, topic: str | None, member: str | None, after: tuple[int, str] | None, limit: int
    ) -> list[tuple[ThreadRecord, int]]:
        """Threads, deleted ones included, latest activity first, with their live member counts."""
        find = self._sql.find
        sql = f"SELECT {T_THREAD_COLUMNS}, {_LIVE_COUNT} AS members FROM threads t WHERE true"
        args: list[Any] = []
        if topic:
            sql += f" AND {find}(lower(t.topic), lower(?)) > 0"
            args.append(topic)
        if member:
            sql += (" AND EXISTS (SELECT 1 FROM participants m WHERE m.thread_id = t.id AND m.left_pos IS NULL "
                    f"AND {find}(lower(m.user_id), lower(?)) > 0)")
            args.append(member)
        page = self._sql.newest_first(
            sql, args, key=_ACTIVITY, ident="t.id", after=after, limit=limit,
            coarse=("t.activity_minute", ACTIVITY_WIDTH_MS),
        )
        return [(thread_from(r), int(r["members"])) for r in await self._rows(*page)]

    async def admin_counts(self) -> dict[str, int]:
        """Live identities and threads, messages, live memberships and kept events."""
        return _counts((await self._rows(_COUNTS, []))[0])


class SqliteAdminQueries(AdminQueries):
    """The admin reads of :class:`~threadline.store.sqlite.SqliteStore`."""

    _sql = SQLITE

    async def _peek(self, fn: Callable[[sqlite3.Connection], T]) -> T:  # pragma: no cover - the store's own
        raise NotImplementedError

    async def _rows(self, sql: str, args: list[Any]) -> list[Any]:
        return await self._peek(lambda c: c.execute(sql, args).fetchall())


class PostgresAdminQueries(AdminQueries):
    """The admin reads of :class:`~threadline.store.postgres.PostgresStore` (ids ordered bytewise, as SQLite)."""

    _sql = POSTGRES

    async def _read(self, fn: Callable[[Any], Awaitable[T]]) -> T:  # pragma: no cover - the store's own
        raise NotImplementedError

    async def _rows(self, sql: str, args: list[Any]) -> list[Any]:
        return list(await self._read(lambda c: c.fetch(sql, *args)))
