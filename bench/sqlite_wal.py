"""WAL bytes and CPU per SQLite send: 32 writers on 32 threads vs on one thread, checkpoints off.

A SQLite transaction writes one WAL frame (a page) per page it changed, so the pages a group of
sends touches decide its I/O, and part of its CPU (each frame is copied and checksummed). On one
thread a group's sends share their pages; on 32 threads each thread's pages are its own. This
counts the WAL's growth per send with checkpoints off (the writer's own every 1,000 writes would
reset it), after 3,200 sends that give the indexes their leaves, the process's CPU per send, and
which tables and indexes the WAL's frames hold pages of (each frame's header names its page;
SQLite's ``dbstat`` table names the page's owner).
It is what measured migration 0049 (``messages_id`` keyed id first): 13.7k -> 8.5k bytes per send
on 32 threads.

    PYTHONPATH=src .venv/bin/python bench/sqlite_wal.py [--sends 6400] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sqlite3
import struct
import tempfile
import time
from pathlib import Path

from scale_store import _threads

from threadline.store.base import Effects
from threadline.store.records import MessageDraft, MessageRecord
from threadline.store.sqlite import SqliteStore

WRITERS = 32


def _frames_by_owner(path: Path) -> collections.Counter[str]:
    """How many of the WAL's frames hold a page of each table or index of the database at ``path``."""
    wal = Path(f"{path}-wal").read_bytes()
    page_size = struct.unpack(">I", wal[8:12])[0]
    frame = 24 + page_size
    pages = [struct.unpack(">I", wal[at:at + 4])[0] for at in range(32, len(wal) - frame + 1, frame)]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        owners = dict(conn.execute("SELECT pageno, name FROM dbstat").fetchall())
    finally:
        conn.close()
    return collections.Counter(str(owners.get(page, "?")) for page in pages)


async def _case(folder: Path, threads: int, sends: int) -> tuple[float, float, collections.Counter[str]]:
    """WAL bytes, CPU microseconds and frames by owner per send, ``WRITERS`` writers over ``threads`` threads."""
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
        owners = _frames_by_owner(path)  # before the store closes: its last checkpoint empties the WAL
    finally:
        await store.close()
    done = sends // WRITERS * WRITERS
    return grown / done, cpu * 1e6 / done, owners


async def _main(sends: int, rounds: int) -> None:
    print(f"{'case':<12} {'WAL bytes/send':>15} {'CPU us/send':>12}  WAL frames per send, by table or index")
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(rounds):
            for threads in (32, 1):
                wal, cpu, owners = await _case(Path(folder), threads, sends)
                label = f"{threads} thread{'s' if threads > 1 else ''}"
                done = sends // WRITERS * WRITERS
                shares = ", ".join(f"{name} {count / done:.2f}" for name, count in owners.most_common(4))
                print(f"{label:<12} {wal:>15,.0f} {cpu:>12.1f}  {shares}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=6400, help="sends measured per case")
    parser.add_argument("--rounds", type=int, default=2, help="times each case runs, in turn")
    args = parser.parse_args()
    asyncio.run(_main(args.sends, args.rounds))


if __name__ == "__main__":
    main()
