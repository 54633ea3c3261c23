"""PostgreSQL reads the event log per partition through ``events_partition`` (migration 0042), with the same rows.

A log of 40,000 events where one hot thread fills its partition far ahead of the others: a
cursor's bounds then lie far apart, which is where a scan from the lowest bound read most of
the log. The store's own statements must plan as ranges of the index, and return exactly the
events a plain reading of the rules gives.
"""

from __future__ import annotations

import asyncpg
import pytest

from threadline.store import dialect
from threadline.store.positions import partition_of
from threadline.store.postgres import PostgresStore

from ..pg import fresh_database, require_postgres

pytestmark = pytest.mark.anyio

HOT = "19:hot@thread.v2"
USER = "8:acs:reader"


async def _fill(conn: asyncpg.Connection, partitions: int) -> None:
    """400 threads; HOT takes every other event; USER is in HOT (from the middle on), t1 and t8 (history from 12000)."""
    await conn.execute(
        "INSERT INTO threads (id, topic, created_ms, created_by) "
        "SELECT CASE WHEN i = 0 THEN $1 ELSE '19:t' || i || '@thread.v2' END, 't', 0, 'x' "
        "FROM generate_series(0, 399) i", HOT,
    )
    await conn.execute(
        "INSERT INTO events (position, thread_id, type, payload, created_ms, message_ms) "
        f"SELECT n * {partitions} + part, tid, 'chatMessageReceived', '\\x7b7d', i, "
        "CASE WHEN i % 3 = 0 THEN NULL ELSE i END "
        "FROM (SELECT i, tid, part, row_number() OVER (PARTITION BY part ORDER BY i) AS n "
        f"FROM (SELECT i, tid, threadline_part(tid, {partitions}) AS part "
        "FROM (SELECT i, CASE WHEN i % 2 = 0 THEN $1 ELSE '19:t' || (i * 7 % 399 + 1) || '@thread.v2' END AS tid "
        "FROM generate_series(1, 40000) i) a) b) c", HOT,
    )
    await conn.execute(
        f"UPDATE event_partitions SET value = coalesce((SELECT max(position) / {partitions} FROM events "
        f"WHERE position % {partitions} = id), 0)"
    )
    middle = await conn.fetchval("SELECT position FROM events WHERE thread_id = $1 AND created_ms = 20000", HOT)
    await conn.execute(
        "INSERT INTO participants (thread_id, user_id, joined_pos, share_history_ms) VALUES "
        "($1, $2, $3, 0), ('19:t1@thread.v2', $2, 0, 0), ('19:t8@thread.v2', $2, 0, 12000)",
        HOT, USER, middle,
    )
    await conn.execute("ANALYZE")


def _scans(plan: list[str]) -> list[str]:
    """The plan's nodes that read ``events`` or its indexes."""
    return [line.strip().removeprefix("->  ").split("  (")[0] for line in plan if " on events" in line]


async def test_replays_and_webhook_pages_read_each_partition_through_the_index() -> None:
    require_postgres()
    with fresh_database("threadline_event_index") as url:
        store = PostgresStore(url)
        await store.open()
        try:
            count = store.partitions
            conn = await asyncpg.connect(url)
            try:
                await _fill(conn, count)
                heads = [int(r[0]) for r in await conn.fetch(
                    f"SELECT value * {count} + id FROM event_partitions ORDER BY id")]
                hot = partition_of(HOT, count)
                assert heads[hot] > 10 * min(heads)  # the hot partition runs far ahead
                behind = [h - 40 * count for h in heads]
                await conn.execute("SET jit = off")  # as the store's pool has it
                for bounds in (heads, behind, [k for k in range(count)]):
                    for sql, args in (
                        (dialect.EVENTS_SINCE.postgres(count), (bounds, USER, 50)),
                        (dialect.EVENTS_AFTER.postgres(count), (bounds, 50)),
                    ):
                        plan = [r[0] for r in await conn.fetch("EXPLAIN " + sql, *args)]
                        # An ordered range of the index, or (for a filtered read the planner expects to
                        # read to the end) the same range as a bitmap: never a scan of the whole table.
                        assert _scans(plan) in (
                            ["Index Scan using events_partition on events e"],
                            ["Bitmap Heap Scan on events e", "Bitmap Index Scan on events_partition"],
                        ), plan
                        assert any("Index Cond: (((\"position\" % '32'::bigint) = (b.k - 1)) AND "
                                   "(\"position\" > b.after))" in line for line in plan), plan

                # The rows: what the rules say, read from the whole log.
                log = [(int(r[0]), r[1], r[2]) for r in await conn.fetch(
                    "SELECT position, thread_id, message_ms FROM events ORDER BY position")]
                stays = [tuple(r) for r in await conn.fetch(
                    "SELECT thread_id, joined_pos, left_pos, share_history_ms FROM participants WHERE user_id = $1",
                    USER)]
            finally:
                await conn.close()

            def received(position: int, thread: str, message_ms: int | None) -> bool:
                return any(t == thread and j <= position and (left is None or left >= position)
                           and (message_ms is None or share <= message_ms) for t, j, left, share in stays)

            threads = []
            for bounds in (heads, behind, list(range(count))):
                after = [(p, t) for p, t, _ in log if p > bounds[p % count]]
                mine = [(p, t) for p, t, m in log if p > bounds[p % count] and received(p, t, m)]
                for limit in (50, 100_000):
                    since = await store.events_since(USER, bounds, limit)
                    assert [(e.position, e.thread_id) for e in since] == mine[:limit]
                    page = await store.webhooks.events_after(bounds, limit)
                    assert [(e.position, e.thread_id) for e in page] == after[:limit]
                threads.append({t for _, t in mine})
            # caught up: nothing; 40 behind in every partition: the hot thread among others; from the start: all three
            assert threads[0] == set() and HOT in threads[1]
            assert threads[2] == {HOT, "19:t1@thread.v2", "19:t8@thread.v2"}
        finally:
            await store.close()
