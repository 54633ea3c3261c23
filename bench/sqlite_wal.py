"""WAL bytes and CPU per SQLite send: 32 writers on 32 threads vs on one thread, checkpoints off.

A SQLite transaction writes one WAL frame (a page) per page it changed, so the pages a group of
sends touches decide its I/O, and part of its CPU (each frame is copied and checksummed). On one
thread a group's sends share their pages; on 32 threads each thread's pages are its own. This
counts the WAL's growth per send with checkpoints off (the writer's own every 1,000 writes would
reset it), after 3,200 sends that give the indexes their leaves, and the process's CPU per send.
It is what measured migration 0049 (``messages_id`` keyed id first): 13.7k -> 8.5k bytes per send
on 32 threads.

    PYTHONPATH=src .venv/bin/python bench/sqlite_wal.py [--sends 6400] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from scale_store import _threads

from threadline.store.base import Effects
from threadline.store.records import MessageDraft, MessageRecord
from threadline.store.sqlite import SqliteStore

WRITERS = 32


async def _case(folder: Path, threads: int, sends: int) -> tuple[float, float]:
    """WAL bytes and CPU microseconds per send, ``WRITERS`` writers spread over ``threads`` threads."""
    path = folder / f"wal-{threads}-{time.monotonic_ns()}.db"
    store = SqliteStore(path)
    await store.open()
    assert store._writer is not None and store._writer._conn is not None
    store._writer._checkpoint_every = 10**12  # never: the WAL only grows
    made = await _threads(store, WRITERS)
    targets = [made[k % threads] for k in range(WRITERS)]
    effects: Effects[MessageRecord] = Effects(
        events=lambda m: [("chatMessageReceived", b'{"id":"%s"}' % m.id.encode())], reveals=lambda m: m.created_ms,
    )

    async def writer(tid: str, uid: str, count: int) -> None:
        for _ in range(count):
            draft = MessageDraft("text", sender_id=uid, content="hello there")
            await store.send_message(tid, draft, int(time.time() * 1000), effects)

    try:
        await asyncio.gather(*(writer(t, u, 100) for t, u in targets))  # the indexes get their leaves
        store._writer._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        wal = Path(f"{path}-wal")
        before, cpu = wal.stat().st_size, time.process_time()
        await asyncio.gather(*(writer(t, u, sends // WRITERS) for t, u in targets))
        cpu, grown = time.process_time() - cpu, wal.stat().st_size - before
    finally:
        await store.close()
    done = sends // WRITERS * WRITERS
    return grown / done, cpu * 1e6 / done


async def _main(sends: int, rounds: int) -> None:
    print(f"{'case':<12} {'WAL bytes/send':>15} {'CPU us/send':>12}")
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(rounds):
            for threads in (32, 1):
                wal, cpu = await _case(Path(folder), threads, sends)
                label = f"{threads} thread{'s' if threads > 1 else ''}"
                print(f"{label:<12} {wal:>15,.0f} {cpu:>12.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=6400, help="sends measured per case")
    parser.add_argument("--rounds", type=int, default=2, help="times each case runs, in turn")
    args = parser.parse_args()
    asyncio.run(_main(args.sends, args.rounds))


if __name__ == "__main__":
    main()
