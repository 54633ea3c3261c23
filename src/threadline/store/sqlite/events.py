"""The event log (and the idempotency keys) in the SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .. import dialect
from ..records import Event
from ..webhooks import keep_bounds
from .core import SqliteCore

__all__ = ["SqliteEvents"]


class SqliteEvents(SqliteCore):
    """The event log (and the idempotency keys) of :class:`~threadline.store.sqlite.SqliteStore`."""

    async def events_since(self, user_id: str, after: int | Sequence[int], limit: int) -> list[Event]:
        if not isinstance(after, int):
            (after,) = after  # one partition
        def run(c: sqlite3.Connection) -> list[Event]:
            rows = c.execute(dialect.EVENTS_SINCE.sqlite, (after, user_id, limit)).fetchall()
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
            lambda c: c.execute(dialect.PRUNE_IDEMPOTENCY.sqlite, (before_ms,)).rowcount, bulk=True
        )
