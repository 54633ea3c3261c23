"""The event log (and the idempotency keys) in the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Sequence

from .. import dialect
from ..base import StoreError
from ..records import Event
from ..webhooks import keep_bounds
from .core import Connection, PostgresCore

__all__ = ["PostgresEvents"]


class PostgresEvents(PostgresCore):
    """The event log (and the idempotency keys) of :class:`~threadline.store.postgres.PostgresStore`."""

    async def events_since(self, user_id: str, after: int | Sequence[int], limit: int) -> list[Event]:
        """Stored events after ``after`` (a cursor's, or one bound for every partition) the user received, in order."""
        count = int(self.partitions)
        bounds = [after] * count if isinstance(after, int) else list(after)
        if len(bounds) != count:
            raise StoreError(f"a cursor over {len(bounds)} partitions, not {count}")
        rows = await self._read(lambda c: c.fetch(dialect.EVENTS_SINCE.postgres(count), bounds, user_id, limit))
        return [
            Event(int(r["position"]), r["thread_id"], r["type"], bytes(r["payload"]), int(r["created_ms"]),
                  (user_id,), None if r["message_ms"] is None else int(r["message_ms"]))
            for r in rows
        ]

    async def event_bounds(self) -> tuple[list[int], list[int]]:
        """Per partition: the highest pruned position (or the start), and the highest committed one."""
        count = int(self.partitions)
        rows = await self._read(
            lambda c: c.fetch(f"SELECT id, value * {count} + id AS head, pruned FROM event_partitions ORDER BY id")
        )
        return [int(r["pruned"]) for r in rows], [int(r["head"]) for r in rows]

    async def prune_events(self, before_ms: int) -> int:
        """Drop events created before ``before_ms`` that every webhook subscription has handled.

        Raises each partition's pruned mark; returns how many. The webhook rule is per
        partition: an event stays while it is above some subscription's cursor in its partition.
        """
        count = int(self.partitions)

        async def run(c: Connection) -> int:
            tokens = [str(r["cursor"]) for r in await c.fetch("SELECT cursor FROM webhook_subscriptions FOR SHARE")]
            keep = keep_bounds(tokens, count)
            value = await c.fetchval(
                "WITH d AS (DELETE FROM events WHERE created_ms < $1 "
                f"AND ($2::bigint[] IS NULL OR position <= ($2::bigint[])[position % {count} + 1]) "
                "RETURNING position), "
                f"m AS (SELECT position % {count} AS part, max(position) AS top FROM d WHERE position > 0 GROUP BY 1), "
                "u AS (UPDATE event_partitions SET pruned = greatest(pruned, m.top) FROM m WHERE id = m.part) "
                "SELECT count(*) FROM d",
                before_ms, keep,
            )
            return int(value)

        return await self._write(run)

    async def prune_idempotency(self, before_ms: int) -> int:
        status = await self._write(lambda c: c.execute(dialect.PRUNE_IDEMPOTENCY.postgres, before_ms))
        return int(str(status).rsplit(" ", 1)[-1])
