"""The event log (and the idempotency keys) in the SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .. import dialect
from ..records import Event
from ..webhooks import keep_bounds
from .core import SqliteCore
from .held import last_position

__all__ = ["SqliteEvents"]

#: The first event, up to a position, created at or after a time; arguments: position, time. A
#: walk of the log from its start in position order (no index by time): it reads the old events
#: before the one found.
_FIRST_YOUNG = "SELECT position FROM events WHERE position <= ? AND created_ms >= ? ORDER BY position LIMIT 1"
_DELETE_UP_TO = "DELETE FROM events WHERE position <= ?"


def _keep_bound(c: sqlite3.Connection) -> int | None:
    """The webhook rule (one partition: one bound): the highest position every subscription handled, if any."""
    keep = keep_bounds([str(r[0]) for r in c.execute("SELECT cursor FROM webhook_subscriptions")], 1)
    return keep[0] if keep is not None else None


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
            latest = last_position(c)
            if row[0] is None:
                return [latest], [latest]
            return [int(row[0]) - 1], [latest]

        return await self._peek(run)

    async def prune_events(self, before_ms: int) -> int:
        """Drop the log's prefix of events created before ``before_ms`` that every webhook subscription has handled.

        The log has no index by time: created_ms follows positions closely but not strictly
        (clocks step), so the pruner deletes up to the first event young enough, found on a
        read connection by walking the log in position order (it reads only what is about to
        be deleted, and the one event after). An old event after a young one waits for a
        later prune; no event created at or after the cutoff is ever deleted. The writer then
        runs only the range delete, under the webhook rule read again inside the write.

        Returns:
            How many events were deleted.
        """
        def last_old(c: sqlite3.Connection) -> int:
            top = _keep_bound(c)
            if top is None:
                top = last_position(c)
            first = c.execute(_FIRST_YOUNG, (top, before_ms)).fetchone()
            bound = top if first is None else int(first[0]) - 1
            low = c.execute("SELECT min(position) FROM events").fetchone()[0]
            return 0 if low is None or bound < int(low) else bound

        bound = await self._read(last_old)
        if bound <= 0:
            return 0

        def run(c: sqlite3.Connection) -> int:
            keep = _keep_bound(c)  # a rewind since the read lowers it
            return int(c.execute(_DELETE_UP_TO, (bound if keep is None else min(bound, keep),)).rowcount)

        return await self._write(run, bulk=True)

    async def prune_idempotency(self, before_ms: int) -> int:
        return await self._write(
            lambda c: c.execute(dialect.PRUNE_IDEMPOTENCY.sqlite, (before_ms,)).rowcount, bulk=True
        )
