"""Store-level contention for bench/scale.py: 32 writers on 32 threads vs on one thread, with and without events.

No HTTP: ``send_message`` straight on a store, ``writers`` concurrent tasks for ``seconds``. On
one thread every write queues on that thread's row (and, with events, its partition's counter);
on 32 threads they queue only where threads share a partition (PostgreSQL) or on the one writer
(SQLite). "With events" is the real send (its ``chatMessageReceived``); "without" is the same
write with no event.

On PostgreSQL ``send_message`` batches (``pg_send.SendTurn``): the sends of a turn share one
statement and a thread has one batch in flight, so on one thread the writers' sends pile up into
big batches and one thread is about as fast as 32 on a small, CPU-bound machine. The "unbatched"
pair shows the locking alone: each write its own ``threadline_send`` statement
(``pg_send.send_in_one_statement``), one per writer, on 32 threads vs on one. The last column is
the mean sends per statement (PostgreSQL through ``send_message``).

Alone: ``PYTHONPATH=src .venv/bin/python bench/scale_store.py [--engine postgres] [--seconds 5] [--rounds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path

from threadline.store import pg_send
from threadline.store.base import Effects, Outcome, Store
from threadline.store.postgres import PostgresStore
from threadline.store.records import MessageDraft, MessageRecord, ParticipantRecord, ThreadRecord, UserRecord
from threadline.store.sqlite import SqliteStore

#: The width of a row's case label: ``scale.store_rate`` reads the figures after it.
LABEL = 44
HEADER = f"{'store case':<{LABEL}} {'writers':>7} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'sends/stmt':>10}"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _threads(store: Store, count: int) -> list[tuple[str, str]]:
    now = int(time.time() * 1000)
    made = []
    for _ in range(count):
        uid = f"8:acs:bench_{secrets.token_hex(6)}"
        await store.create_user(UserRecord(uid, now))
        tid = f"19:bench{secrets.token_hex(8)}@thread.v2"
        await store.create_thread(ThreadRecord(tid, "bench", now, uid), [ParticipantRecord(uid)],
                                  [MessageDraft("topicUpdated", topic="bench")], Effects())
        made.append((tid, uid))
    return made


async def _unbatched(store: PostgresStore, tid: str, draft: MessageDraft, now_ms: int,
                     effects: Effects[MessageRecord]) -> Outcome[MessageRecord]:
    """One send as its own ``threadline_send`` statement, past ``SendTurn``."""
    send = pg_send.prepare(tid, draft, now_ms, effects)
    partitions = store.partitions
    return await store._retrying(lambda c: pg_send.send_in_one_statement(c, send, partitions))


async def _run(store: Store, targets: list[tuple[str, str]], with_events: bool, seconds: float,
               unbatched: bool = False) -> tuple[int, float, list[float]]:
    """Writes for ``seconds``; returns how many, the time they took and each one's latency (s)."""
    effects: Effects[MessageRecord] = Effects(
        events=(lambda m: [("chatMessageReceived", b'{"id":"%s"}' % m.id.encode())]) if with_events else None,
        reveals=(lambda m: m.created_ms) if with_events else None,
    )
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def writer(tid: str, uid: str) -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            draft = MessageDraft("text", sender_id=uid, content="x")
            if unbatched and isinstance(store, PostgresStore):
                await _unbatched(store, tid, draft, int(time.time() * 1000), effects)
            else:
                await store.send_message(tid, draft, int(time.time() * 1000), effects)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(writer(t, u) for t, u in targets))
    return len(latencies), time.perf_counter() - began, latencies


async def contention(engine: str, where: str, seconds: float, writers: int = 32, rounds: int = 1) -> list[str]:
    """The store cases on one engine; returns printed rows.

    Four on each engine (with/without events, on 32 threads/on one), and on PostgreSQL the
    "unbatched" pair (see the module).

    Args:
        engine: ``sqlite`` or ``postgres``.
        where: a folder for the SQLite file, or the PostgreSQL URL.
        seconds: duration of each case.
        writers: concurrent writers.
        rounds: run the cases in turn this many times (``seconds / rounds`` each, every other
            round in reverse order) and report each case over all of its rounds: on a shared
            machine the cases then see the same background load, and their ratios are steadier.

    Returns:
        One printed row per case.
    """
    store: Store
    if engine == "sqlite":
        store = SqliteStore(Path(where) / f"store-{secrets.token_hex(3)}.db")
    else:
        store = PostgresStore(where, max_size=writers)
    await store.open()
    rows = []
    try:
        many = await _threads(store, writers)
        one = [many[0]] * writers
        label = "SQLite" if engine == "sqlite" else "PostgreSQL"
        kinds = [("send + event", True, False), ("send, no event", False, False)]
        if isinstance(store, PostgresStore):
            kinds.append(("unbatched send", True, True))
        cases = [(f"{label}, {what}, {name}", with_events, unbatched, targets)
                 for what, with_events, unbatched in kinds
                 for name, targets in ((f"{writers} threads", many), ("1 thread", one))]
        turn = store.send_turn if isinstance(store, PostgresStore) else None
        #: per case: writes, seconds, latencies, statements and sends through the turn
        seen: dict[str, tuple[int, float, list[float], int, int]] = {case[0]: (0, 0.0, [], 0, 0) for case in cases}
        for round_ in range(rounds):
            for case, with_events, unbatched, targets in cases if round_ % 2 == 0 else cases[::-1]:
                before = (turn.statements, turn.sends) if turn is not None else (0, 0)
                count, elapsed, latencies = await _run(store, targets, with_events, seconds / rounds, unbatched)
                after = (turn.statements, turn.sends) if turn is not None else (0, 0)
                was = seen[case]
                seen[case] = (was[0] + count, was[1] + elapsed, was[2] + latencies,
                              was[3] + after[0] - before[0], was[4] + after[1] - before[1])
        for case, *_ in cases:
            count, elapsed, latencies, statements, sends = seen[case]
            p50, p99 = _percentile(latencies, 0.5) * 1000, _percentile(latencies, 0.99) * 1000
            batch = f"{sends / statements:>10.1f}" if statements else f"{'-':>10}"
            rows.append(f"{case:<{LABEL}} {writers:>7} {count / elapsed:>9.0f} {p50:>8.2f} {p99:>8.2f} {batch}")
    finally:
        await store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="Store-level contention (no HTTP), as in bench/scale.py.")
    parser.add_argument("--engine", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each case")
    parser.add_argument("--writers", type=int, default=32, help="concurrent writers")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the cases in turn this many times, seconds/rounds each (steadier ratios)")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server (its maintenance database) to create the bench database on")
    args = parser.parse_args()
    from scale import bench_database  # scale imports this module: only here, when run alone

    print(HEADER)
    engines = ("sqlite", "postgres") if args.engine == "both" else (args.engine,)
    for engine in engines:
        if engine == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                rows = asyncio.run(contention("sqlite", folder, args.seconds, args.writers, args.rounds))
        else:
            with bench_database(args.database) as database:
                rows = asyncio.run(contention("postgres", database, args.seconds, args.writers, args.rounds))
        for row in rows:
            print(row, flush=True)


if __name__ == "__main__":
    main()
