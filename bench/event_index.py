"""The PostgreSQL event log's replay reads, before and after the per-partition index (migration 0042).

Builds a log of realistic size on a throwaway database (``--events``, 200,000 by default, over
2,000 threads with a few hot ones, so partitions fill unevenly: 32 partitions, as the store has),
then times and EXPLAINs the two reads of the log after a cursor:

* ``events_since`` (a WebSocket resume, the Redis hub's gap fill) for one user in 5 threads;
* ``events_after`` (a webhook subscription's page);

each with the cursor caught up (nothing to read) and 100 events behind in every partition.

"before" is the statement the store ran until this change, on the log without ``events_partition``
and with PostgreSQL's default JIT setting; "index" is the store's statement today
(``dialect.EVENTS_SINCE`` / ``dialect.EVENTS_AFTER``) with the index, JIT still on; "after" the
same with the pool's ``jit = off`` (store/postgres/store.py).

Usage::

    .venv/bin/python bench/event_index.py [--events 200000] [--database postgresql://postgres@127.0.0.1:5432/postgres]
                                          [--plans]

A database ``threadline_bench_<random>`` is created on that server and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from typing import Any

import asyncpg

from threadline.store import dialect
from threadline.store.postgres import PostgresStore

PARTITIONS = 32
USER = "8:acs:bench_u1"

# The statements before migration 0042, as store/postgres/events.py and store/webhooks_postgres.py had them.
BEFORE_SINCE = (
    "SELECT e.position, e.thread_id, e.type, e.payload, e.created_ms, e.message_ms FROM events e "
    f"WHERE e.position > $4 AND e.position > ($1::bigint[])[e.position % {PARTITIONS} + 1] "
    f"AND {dialect.numbered(dialect.RECEIVED_BY, 2)} ORDER BY e.position LIMIT $3"
)
BEFORE_AFTER = (
    "SELECT position, thread_id, type, payload, created_ms FROM events WHERE position > $3 "
    f"AND position > ($1::bigint[])[position % {PARTITIONS} + 1] ORDER BY position LIMIT $2"
)


async def fill(conn: Any, events: int) -> None:
    """2,000 threads, 4,000 users in 5 threads each, ``events`` events: thread i gets a share falling as i grows."""
    await conn.execute(
        "INSERT INTO threads (id, topic, created_ms, created_by) "
        "SELECT '19:bench' || i || '@thread.v2', 'bench', 0, 'bench' FROM generate_series(1, 2000) i"
    )
    await conn.execute(
        "INSERT INTO participants (thread_id, user_id, joined_pos) "
        "SELECT '19:bench' || (1 + (u * 7 + k * 131) % 2000) || '@thread.v2', '8:acs:bench_u' || u, 0 "
        "FROM generate_series(1, 4000) u, generate_series(1, 5) k ON CONFLICT DO NOTHING"
    )
    await conn.execute(
        "INSERT INTO events (position, thread_id, type, payload, created_ms, message_ms) "
        f"SELECT n * {PARTITIONS} + part, tid, 'chatMessageReceived', convert_to(repeat('x', 300), 'UTF8'), "
        "1700000000000 + i * 10, 1700000000000 + i * 10 "
        "FROM (SELECT i, tid, part, row_number() OVER (PARTITION BY part ORDER BY i) AS n "
        f"FROM (SELECT i, tid, threadline_part(tid, {PARTITIONS}) AS part "
        "FROM (SELECT i, '19:bench' || (floor(2000 * power(random(), 3))::int + 1) || '@thread.v2' AS tid "
        "FROM generate_series(1, $1) i) a) b) c",
        events,
    )
    await conn.execute(
        f"UPDATE event_partitions SET value = coalesce((SELECT max(position) / {PARTITIONS} FROM events "
        f"WHERE position % {PARTITIONS} = id), 0)"
    )
    await conn.execute("ANALYZE")


async def measure(conn: Any, sql: str, args: tuple[Any, ...], show: bool) -> tuple[int, float, str]:
    """Rows, mean ms over 20 runs (after 3 warm-ups), and the plan's scan of ``events``."""
    for _ in range(3):
        rows = await conn.fetch(sql, *args)
    began = time.perf_counter()
    for _ in range(20):
        rows = await conn.fetch(sql, *args)
    ms = (time.perf_counter() - began) * 1000 / 20
    plan = [r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)]
    if show:
        print("\n".join("    " + line for line in plan))
    scans = [line.strip().removeprefix("->  ").split("  (")[0] for line in plan if " on events" in line]
    return len(rows), ms, "; ".join(dict.fromkeys(scans))


async def run(url: str, events: int, show: bool) -> None:
    store = PostgresStore(url)
    await store.open()  # every migration, 0042 included
    await store.close()
    conn = await asyncpg.connect(url)
    try:
        began = time.perf_counter()
        await fill(conn, events)
        counts = sorted(int(r[0]) for r in await conn.fetch("SELECT value FROM event_partitions"))
        print(f"log: {events} events, per partition {counts[0]}..{counts[-1]} "
              f"(filled in {time.perf_counter() - began:.1f} s)")
        heads = [int(r[0]) for r in await conn.fetch(
            f"SELECT value * {PARTITIONS} + id FROM event_partitions ORDER BY id")]
        cursors = {"caught up": heads, "100 behind": [h - 100 * PARTITIONS for h in heads]}
        print(f"{'read':<14} {'cursor':<11} {'case':<7} {'jit':<4} {'rows':>5} {'ms':>8}  scan of events")
        await conn.execute("DROP INDEX events_partition")
        for case, jit in (("before", "on"), ("index", "on"), ("after", "off")):
            if case == "index":
                began = time.perf_counter()
                await conn.execute(f"CREATE INDEX events_partition ON events ((position % {PARTITIONS}), position)")
                print(f"(index built in {time.perf_counter() - began:.2f} s)")
                await conn.execute("ANALYZE events")
            await conn.execute(f"SET jit = {jit}")
            for label, bounds in cursors.items():
                reads: list[tuple[str, str, tuple[Any, ...]]] = [
                    ("events_since", BEFORE_SINCE, (bounds, USER, 500, min(bounds))),
                    ("events_after", BEFORE_AFTER, (bounds, 500, min(bounds))),
                ] if case == "before" else [
                    ("events_since", dialect.EVENTS_SINCE.postgres(PARTITIONS), (bounds, USER, 500)),
                    ("events_after", dialect.EVENTS_AFTER.postgres(PARTITIONS), (bounds, 500)),
                ]
                for name, sql, args in reads:
                    rows, ms, scans = await measure(conn, sql, args, show)
                    print(f"{name:<14} {label:<11} {case:<7} {jit:<4} {rows:>5} {ms:>8.2f}  {scans}")
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--plans", action="store_true", help="print every EXPLAIN ANALYZE in full")
    options = parser.parse_args()
    name = f"threadline_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(options.database)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await run(options.database.rsplit("/", 1)[0] + "/" + name, options.events, options.plans)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
