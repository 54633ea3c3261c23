""":class:`~.webhooks.WebhookStore` on SQLite (the engine's writer thread and readers)."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import webhooks as wh
from .dialect import EVENTS_AFTER
from .positions import Cursor
from .records import Event
from .sqlite.held import last_position
from .webhooks import (
    DeadLetterRecord,
    Progress,
    SubscriptionRecord,
    dead_from,
    read_cursor,
    recipients_at,
    subscription_from,
    subscription_params,
)

if TYPE_CHECKING:
    from .sqlite import SqliteStore

__all__ = ["SqliteWebhooks"]

#: The first event after a position created at or after a time; arguments: position, time.
_FIRST_SINCE = "SELECT position FROM events WHERE position > ? AND created_ms >= ? ORDER BY position LIMIT 1"


class SqliteWebhooks:
    """Webhook tables of a :class:`~.sqlite.SqliteStore`."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def add_subscription(self, sub: SubscriptionRecord) -> None:
        def run(c: sqlite3.Connection) -> None:
            sub.cursor = Cursor([last_position(c)]).token()  # one partition
            c.execute(wh.ADD_SUBSCRIPTION.sqlite, subscription_params(sub))

        await self._store._write(run)

    async def get_subscription(self, sub_id: str) -> SubscriptionRecord | None:
        row = await self._store._read(lambda c: c.execute(wh.GET_SUBSCRIPTION.sqlite, (sub_id,)).fetchone())
        return subscription_from(row) if row is not None else None

    async def list_subscriptions(self) -> list[SubscriptionRecord]:
        rows = await self._store._read(lambda c: c.execute(wh.LIST_SUBSCRIPTIONS).fetchall())
        return [subscription_from(r) for r in rows]

    async def remove_subscription(self, sub_id: str) -> bool:
        def run(c: sqlite3.Connection) -> bool:
            c.execute(wh.DROP_DEADLETTERS.sqlite, (sub_id,))
            return c.execute(wh.REMOVE_SUBSCRIPTION.sqlite, (sub_id,)).rowcount > 0

        return await self._store._write(run)

    async def activate(self, sub_id: str, code: str | None) -> bool:
        def run(c: sqlite3.Connection) -> bool:
            return c.execute(wh.ACTIVATE.sqlite, (sub_id, code, code)).rowcount > 0

        return await self._store._write(run)

    async def acquire_lease(self, sub_id: str, owner: str, now_ms: int, ttl_ms: int) -> bool:
        def run(c: sqlite3.Connection) -> bool:
            return c.execute(wh.ACQUIRE_LEASE.sqlite, (owner, now_ms + ttl_ms, sub_id, owner, now_ms)).rowcount > 0

        return await self._store._write(run)

    async def release_lease(self, sub_id: str, owner: str) -> None:
        await self._store._write(lambda c: c.execute(wh.RELEASE_LEASE.sqlite, (sub_id, owner)))

    async def save_progress(self, sub_id: str, owner: str, now_ms: int, progress: Progress) -> bool:
        def run(c: sqlite3.Connection) -> bool:
            done = c.execute(
                wh.SAVE_PROGRESS.sqlite,
                (progress.cursor, progress.attempts, progress.first_attempt_ms, progress.next_attempt_ms,
                 sub_id, owner, now_ms),
            ).rowcount > 0
            if not done:
                return False
            for d in progress.dead:
                c.execute(
                    wh.ADD_DEAD.sqlite,
                    (sub_id, d.event_id, d.event_type, d.thread_id, d.position, d.envelope, d.reason,
                     d.attempts, d.created_ms),
                )
            for dead_id in progress.replayed:
                c.execute(wh.DROP_DEAD.sqlite, (dead_id, sub_id))
            return True

        return await self._store._write(run)

    async def events_after(self, after: Sequence[int], limit: int) -> list[Event]:
        (low,) = after  # one partition

        def run(c: sqlite3.Connection) -> list[Event]:
            rows = c.execute(EVENTS_AFTER.sqlite, (low, limit)).fetchall()
            if not rows:
                return []
            threads = sorted({r["thread_id"] for r in rows})
            members: dict[str, list[Any]] = defaultdict(list)
            marks = ", ".join("?" * len(threads))
            for m in c.execute(
                f"SELECT thread_id, user_id, joined_pos, left_pos FROM participants WHERE thread_id IN ({marks}) "
                "AND (left_pos IS NULL OR left_pos > ?)", (*threads, low),
            ).fetchall():
                members[m["thread_id"]].append(m)
            return [
                Event(int(r["position"]), r["thread_id"], r["type"], bytes(r["payload"]), int(r["created_ms"]),
                      recipients_at(members[r["thread_id"]], int(r["position"])))
                for r in rows
            ]

        return await self._store._read(run)

    async def latest_positions(self) -> list[int]:
        return [await self._store._read(last_position)]

    async def list_deadletters(self, sub_id: str, limit: int) -> list[DeadLetterRecord]:
        rows = await self._store._read(lambda c: c.execute(wh.LIST_DEADLETTERS.sqlite, (sub_id, limit)).fetchall())
        return [dead_from(r) for r in rows]

    async def request_replay(self, sub_id: str) -> int:
        return await self._store._write(lambda c: c.execute(wh.REQUEST_REPLAY.sqlite, (sub_id,)).rowcount)

    async def rewind(self, sub_id: str, since_ms: int) -> str | None:
        # The log has no index by time: the first event created at or after since_ms (the lowest
        # such position, as created_ms may step back) is found by walking the kept log in position
        # order on a read connection. A rare admin operation, so a scan bounded by the retained
        # log is acceptable; the write only looks at the events appended since that read.
        def first_since(c: sqlite3.Connection) -> tuple[int | None, int]:
            row = c.execute(_FIRST_SINCE, (0, since_ms)).fetchone()
            return (int(row[0]) if row is not None else None), last_position(c)

        found, seen = await self._store._read(first_since)

        def run(c: sqlite3.Connection) -> str | None:
            current = c.execute(wh.GET_CURSOR.sqlite, (sub_id,)).fetchone()
            if current is None:
                return None
            first = found
            if first is None:
                row = c.execute(_FIRST_SINCE, (seen, since_ms)).fetchone()
                first = int(row[0]) if row is not None else None
            target = first - 1 if first is not None else last_position(c)
            token = Cursor([min(target, read_cursor(current[0], 1).after[0])]).token()
            c.execute(wh.REWIND.sqlite, (token, sub_id))
            return token

        return await self._store._write(run)
