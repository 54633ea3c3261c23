""":class:`~.webhooks.WebhookStore` on PostgreSQL (the engine's pool)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import webhooks as wh
from .dialect import EVENTS_AFTER
from .positions import Cursor
from .records import Event
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
    from asyncpg import Connection

    from .postgres import PostgresStore

__all__ = ["PostgresWebhooks"]


def _count(status: str) -> int:
    return int(str(status).rsplit(" ", 1)[-1])


class PostgresWebhooks:
    """Webhook tables of a :class:`~.postgres.PostgresStore`."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def add_subscription(self, sub: SubscriptionRecord) -> None:
        async def run(c: Connection) -> None:
            sub.cursor = Cursor(await self._heads(c)).token()
            await c.execute(wh.ADD_SUBSCRIPTION.postgres, *subscription_params(sub))

        await self._store._write(run)

    async def get_subscription(self, sub_id: str) -> SubscriptionRecord | None:
        row = await self._store._read(lambda c: c.fetchrow(wh.GET_SUBSCRIPTION.postgres, sub_id))
        return subscription_from(row) if row is not None else None

    async def list_subscriptions(self) -> list[SubscriptionRecord]:
        rows = await self._store._read(lambda c: c.fetch(wh.LIST_SUBSCRIPTIONS))
        return [subscription_from(r) for r in rows]

    async def remove_subscription(self, sub_id: str) -> bool:
        async def run(c: Connection) -> bool:
            await c.execute(wh.DROP_DEADLETTERS.postgres, sub_id)
            return _count(await c.execute(wh.REMOVE_SUBSCRIPTION.postgres, sub_id)) > 0

        return await self._store._write(run)

    async def activate(self, sub_id: str, code: str | None) -> bool:
        async def run(c: Connection) -> bool:
            return _count(await c.execute(wh.ACTIVATE.postgres, sub_id, code, code)) > 0

        return await self._store._write(run)

    async def acquire_lease(self, sub_id: str, owner: str, now_ms: int, ttl_ms: int) -> bool:
        async def run(c: Connection) -> bool:
            return _count(await c.execute(wh.ACQUIRE_LEASE.postgres, owner, now_ms + ttl_ms, sub_id, owner, now_ms)) > 0

        return await self._store._write(run)

    async def release_lease(self, sub_id: str, owner: str) -> None:
        async def run(c: Connection) -> None:
            await c.execute(wh.RELEASE_LEASE.postgres, sub_id, owner)

        await self._store._write(run)

    async def save_progress(self, sub_id: str, owner: str, now_ms: int, progress: Progress) -> bool:
        async def run(c: Connection) -> bool:
            done = _count(await c.execute(
                wh.SAVE_PROGRESS.postgres,
                progress.cursor, progress.attempts, progress.first_attempt_ms, progress.next_attempt_ms,
                sub_id, owner, now_ms,
            )) > 0
            if not done:
                return False
            for d in progress.dead:
                await c.execute(
                    wh.ADD_DEAD.postgres,
                    sub_id, d.event_id, d.event_type, d.thread_id, d.position, d.envelope, d.reason,
                    d.attempts, d.created_ms,
                )
            for dead_id in progress.replayed:
                await c.execute(wh.DROP_DEAD.postgres, dead_id, sub_id)
            return True

        return await self._store._write(run)

    async def events_after(self, after: Sequence[int], limit: int) -> list[Event]:
        bounds, low = list(after), min(after)

        async def run(c: Connection) -> list[Event]:
            # Per partition, after its own bound (a partition's positions rise in commit order).
            rows = await c.fetch(EVENTS_AFTER.postgres(len(bounds)), bounds, limit)
            if not rows:
                return []
            threads = sorted({r["thread_id"] for r in rows})
            members: dict[str, list[Any]] = defaultdict(list)
            for m in await c.fetch(
                "SELECT thread_id, user_id, joined_pos, left_pos FROM participants WHERE thread_id = ANY($1::text[]) "
                "AND (left_pos IS NULL OR left_pos > $2)", threads, low,
            ):
                members[m["thread_id"]].append(m)
            return [
                Event(int(r["position"]), r["thread_id"], r["type"], bytes(r["payload"]), int(r["created_ms"]),
                      recipients_at(members[r["thread_id"]], int(r["position"])))
                for r in rows
            ]

        return await self._store._read(run)

    async def latest_positions(self) -> list[int]:
        return await self._store._read(self._heads)

    async def _heads(self, c: Connection) -> list[int]:
        """Per partition, the highest committed position."""
        return (await self._store._partition_marks(c))[1]

    async def list_deadletters(self, sub_id: str, limit: int) -> list[DeadLetterRecord]:
        rows = await self._store._read(lambda c: c.fetch(wh.LIST_DEADLETTERS.postgres, sub_id, limit))
        return [dead_from(r) for r in rows]

    async def request_replay(self, sub_id: str) -> int:
        async def run(c: Connection) -> int:
            return _count(await c.execute(wh.REQUEST_REPLAY.postgres, sub_id))

        return await self._store._write(run)

    async def rewind(self, sub_id: str, since_ms: int) -> str | None:
        async def run(c: Connection) -> str | None:
            current = await c.fetchval(wh.GET_CURSOR.postgres, sub_id)
            if current is None:
                return None
            # Per partition: just before its first kept event created at or after since_ms, else its head.
            # The log has no index by time: each partition's kept events are walked in position order
            # (events_partition) up to the first one that recent. A rare admin operation, so a scan
            # bounded by the retained log is acceptable.
            pruned, target = await self._store._partition_marks(c)
            count = len(target)
            for r in await c.fetch(
                f"SELECT b.part, (SELECT e.position FROM events e WHERE e.position % {count} = b.part "
                f"AND e.position > b.pruned AND e.created_ms >= $3 ORDER BY e.position % {count}, e.position "
                "LIMIT 1) AS low FROM unnest($1::int[], $2::bigint[]) AS b(part, pruned)",
                list(range(count)), pruned, since_ms,
            ):
                if r["low"] is not None:
                    target[int(r["part"])] = int(r["low"]) - count
            after = read_cursor(str(current), count).after
            token = Cursor([min(a, t) for a, t in zip(after, target, strict=True)]).token()
            await c.execute(wh.REWIND.postgres, token, sub_id)
            return token

        return await self._store._write(run)
