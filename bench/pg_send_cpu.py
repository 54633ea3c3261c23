"""PostgreSQL's own CPU per send at store level: batches of K sends on 32 threads vs on one thread.

``send_message`` straight on a :class:`PostgresStore`, K at a time (one ``threadline_send_batch``
statement each, as a node's turn makes them), with a ``chatMessageReceived`` event each. The CPU
is the store's pooled backends' (``/proc``), so the Python side is not counted; the last line is
how many of the thread rows' updates were HOT (no index entry written: migration 0048).

    PYTHONPATH=src .venv/bin/python bench/pg_send_cpu.py [--batch 12] [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import asyncpg
from scale_store import _threads
from scale_wrk import pids_cpu_ms

from scale import backend_pids, bench_database
from threadline.store.base import Effects
from threadline.store.postgres import PostgresStore
from threadline.store.records import MessageDraft, MessageRecord


async def _main(database: str, batch: int, seconds: float, rounds: int) -> None:
    store = PostgresStore(database, max_size=8)
    await store.open()
    try:
        many = await _threads(store, 32)
        effects: Effects[MessageRecord] = Effects(
            events=lambda m: [("chatMessageReceived", b'{"id":"%s"}' % m.id.encode())],
            reveals=lambda m: m.created_ms,
        )
        print(f"{'case':<12} {'sends':>7} {'statements':>10} {'PostgreSQL us/send':>18} {'wall us/send':>12}")
        for _ in range(rounds):
            for name, targets in (("32 threads", many), ("1 thread", [many[0]] * 32)):
                pids = await backend_pids(database)
                cpu, statements, sends = pids_cpu_ms(pids), store.send_turn.statements, 0
                began = time.perf_counter()
                while time.perf_counter() - began < seconds:
                    wave = [targets[(sends + k) % 32] for k in range(batch)]
                    await asyncio.gather(*(
                        store.send_message(tid, MessageDraft("text", sender_id=uid, content="x"),
                                           int(time.time() * 1000), effects)
                        for tid, uid in wave
                    ))
                    sends += batch
                wall = time.perf_counter() - began
                used = pids_cpu_ms(pids) - cpu
                print(f"{name:<12} {sends:>7} {store.send_turn.statements - statements:>10} "
                      f"{1000 * used / sends:>18.1f} {1e6 * wall / sends:>12.1f}", flush=True)
        conn = await asyncpg.connect(database)
        try:
            row = await conn.fetchrow(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'threads'")
        finally:
            await conn.close()
        print(f"thread row updates: {row['n_tup_upd']}, HOT: {row['n_tup_hot_upd']} (statistics lag up to a second)")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=12, help="sends made together (one statement)")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each case")
    parser.add_argument("--rounds", type=int, default=3, help="times each case runs, in turn")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server (its maintenance database) to create the bench database on")
    args = parser.parse_args()
    with bench_database(args.database) as database:
        asyncio.run(_main(database, args.batch, args.seconds, args.rounds))


if __name__ == "__main__":
    main()
