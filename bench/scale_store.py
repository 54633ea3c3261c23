"""Store-level contention for bench/scale.py: 32 writers on 32 threads vs on one thread, with and without events.

No HTTP: ``send_message`` straight on a store, ``writers`` concurrent tasks for ``seconds``. On
one thread every write queues on that thread's row (and, with events, its partition's counter);
on 32 threads they queue only where threads share a partition (PostgreSQL) or on the one writer
(SQLite). "With events" is the real send (its ``chatMessageReceived``); "without" is the same
write with no event.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

from threadline.store.base import Effects, Store
from threadline.store.postgres import PostgresStore
from threadline.store.records import MessageDraft, MessageRecord, ParticipantRecord, ThreadRecord, UserRecord
from threadline.store.sqlite import SqliteStore

HEADER = f"{'store case':<44} {'writers':>7} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8}"


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


async def _run(store: Store, targets: list[tuple[str, str]], with_events: bool, seconds: float) -> tuple[
    float, float, float
]:
    effects: Effects[MessageRecord] = Effects(
        events=(lambda m: [("chatMessageReceived", b'{"id":"%s"}' % m.id.encode())]) if with_events else None,
        reveals=(lambda m: m.created_ms) if with_events else None,
    )
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def writer(tid: str, uid: str) -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            await store.send_message(tid, MessageDraft("text", sender_id=uid, content="x"),
                                     int(time.time() * 1000), effects)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(writer(t, u) for t, u in targets))
    elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, _percentile(latencies, 0.5) * 1000, _percentile(latencies, 0.99) * 1000


async def contention(engine: str, where: str, seconds: float, writers: int = 32) -> list[str]:
    """The four store cases on one engine; returns printed rows.

    Args:
        engine: ``sqlite`` or ``postgres``.
        where: a folder for the SQLite file, or the PostgreSQL URL.
        seconds: duration of each case.
        writers: concurrent writers.
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
        for with_events in (True, False):
            for name, targets in ((f"{writers} threads", many), ("1 thread", one)):
                rate, p50, p99 = await _run(store, targets, with_events, seconds)
                what = "send + event" if with_events else "send, no event"
                case = f"{label}, {what}, {name}"
                rows.append(f"{case:<44} {writers:>7} {rate:>9.0f} {p50:>8.2f} {p99:>8.2f}")
    finally:
        await store.close()
    return rows
