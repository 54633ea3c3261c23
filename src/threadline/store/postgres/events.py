"""The event log (and the idempotency keys) in the PostgreSQL store."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from .. import dialect
from ..base import StoreError
from ..records import Event
from ..webhooks import keep_bounds
from .core import Connection, PostgresCore

__all__ = ["PostgresEvents"]


@functools.cache
def _prune_sql(count: int) -> tuple[str, str]:
    """The pruner's two statements for ``count`` partitions (see :meth:`PostgresEvents.prune_events`).

    The first finds, per partition, the last position that may go: the one before its first
    event created at or after the cutoff, up to ``top`` (its committed head, or the webhook
    bound below it); arguments: partitions, tops, cutoff. The second deletes those ranges and
    raises the pruned marks; arguments: partitions, last positions. Positions above zero only:
    a write in progress holds its events under negative placeholders. Events from before
    partitions (0040) lie below every mark, in the partition their number falls in, and go
    with its prefix. Both read ``events_partition``, as ``position % count`` (0042).
    """
    part = f"e.position % {count}"
    last = (
        f"SELECT b.part, coalesce((SELECT e.position - {count} FROM events e WHERE {part} = b.part "
        "AND e.position > 0 AND e.position <= b.top AND e.created_ms >= $3 "
        f"ORDER BY {part}, e.position LIMIT 1), b.top) AS last "
        "FROM unnest($1::int[], $2::bigint[]) AS b(part, top)"
    )
    delete = (
        "WITH d AS (DELETE FROM events e USING unnest($1::int[], $2::bigint[]) AS f(part, last) "
        f"WHERE {part} = f.part AND e.position > 0 AND e.position <= f.last RETURNING e.position), "
        f"m AS (SELECT position % {count} AS part, max(position) AS top FROM d GROUP BY 1), "
        "u AS (UPDATE event_partitions SET pruned = greatest(pruned, m.top) FROM m WHERE id = m.part) "
        "SELECT count(*) FROM d"
    )
    return last, delete


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
        return await self._read(self._partition_marks)

    @staticmethod
    async def _partition_marks(c: Connection) -> tuple[list[int], list[int]]:
        """Per partition, in id order: its pruned mark and its head (the highest committed position).

        A partition's n-th event is at ``n * count + id`` (migration 0040), so its head is ``value * count + id``.
        """
        rows = await c.fetch("SELECT id, value, pruned FROM event_partitions ORDER BY id")
        count = len(rows)
        return [int(r["pruned"]) for r in rows], [int(r["value"]) * count + int(r["id"]) for r in rows]

    async def prune_events(self, before_ms: int) -> int:
        """Drop, per partition, the old prefix of the log that every webhook subscription has handled.

        Old: created before ``before_ms``. The log has no index by time: created_ms follows a
        partition's positions closely but not strictly (clocks step), so each partition's events
        are walked in position order (``events_partition``) up to the first one young enough,
        and those before it go. That reads only what is deleted, and one event per partition
        more; an old event after a young one waits for a later prune, and no event created at
        or after the cutoff is ever deleted. The webhook rule is per partition: an event stays
        while it is above some subscription's cursor in its partition. Raises each partition's
        pruned mark.

        Returns:
            How many events were deleted.
        """
        count = int(self.partitions)

        async def run(c: Connection) -> int:
            tokens = [str(r["cursor"]) for r in await c.fetch("SELECT cursor FROM webhook_subscriptions FOR SHARE")]
            keep = keep_bounds(tokens, count)
            _, tops = await self._partition_marks(c)
            parts = list(range(len(tops)))
            if keep is not None:
                tops = [min(top, bound) for top, bound in zip(tops, keep, strict=True)]
            find, delete = _prune_sql(count)
            lasts = {int(r["part"]): int(r["last"]) for r in await c.fetch(find, parts, tops, before_ms)}
            return int(await c.fetchval(delete, parts, [lasts[part] for part in parts]))

        return await self._write(run)

    async def prune_idempotency(self, before_ms: int) -> int:
        status = await self._write(lambda c: c.execute(dialect.PRUNE_IDEMPOTENCY.postgres, before_ms))
        return int(str(status).rsplit(" ", 1)[-1])
