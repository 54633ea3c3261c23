"""Instructions per SQLite store write, with and without its event, counted by valgrind's callgrind.

Timings on a shared 2-core machine swing by 10-20% between identical runs; instruction counts
do not. Each case runs ``bench/scale_store.py``'s write (``send_message`` with a chatMessageReceived
event, or the same write with none) ``sends`` and ``2 * sends`` times in a fresh process under
callgrind, and prints the difference divided by ``sends``: the start-up cancels out. The writer's
checkpoints and the cyclic garbage collector are off, so that when they happen to run does not
move the count (neither changes it by more than a few hundred instructions a write on average).

    PYTHONPATH=src .venv/bin/python bench/store_instructions.py [--sends 1280] [--writers 32]

Needs ``valgrind`` (``apt-get install valgrind``); a run takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


async def _writes(sends: int, writers: int, threads: int, with_events: bool) -> None:
    """The measured work: open a store, make the threads, then ``sends`` writes by ``writers`` writers."""
    sys.path.insert(0, str(HERE))
    from scale_store import _threads

    from threadline.store.base import Effects
    from threadline.store.records import MessageDraft, MessageRecord
    from threadline.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "bench.db")
        await store.open()
        assert store._writer is not None
        store._writer._checkpoint_every = 10**12  # never, during the count
        made = await _threads(store, threads)
        targets = [made[k % threads] for k in range(writers)]
        effects: Effects[MessageRecord] = Effects(
            events=(lambda m: [("chatMessageReceived", b'{"id":"%s"}' % m.id.encode())]) if with_events else None,
            reveals=(lambda m: m.created_ms) if with_events else None,
        )

        async def writer(tid: str, uid: str, count: int) -> None:
            for _ in range(count):
                draft = MessageDraft("text", sender_id=uid, content="x")
                await store.send_message(tid, draft, int(time.time() * 1000), effects)

        await asyncio.gather(*(writer(t, u, sends // writers) for t, u in targets))
        await store.close()


def _instructions(sends: int, writers: int, threads: int, with_events: bool) -> int:
    """Total instructions of one process doing ``sends`` writes (callgrind's count)."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
               "--child", str(sends), str(writers), str(threads), "1" if with_events else "0"]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=1280, help="writes in the shorter run (the longer does twice)")
    parser.add_argument("--writers", type=int, default=32, help="concurrent writers (one group a turn)")
    parser.add_argument("--child", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        gc.disable()
        sends, writers, threads, with_events = args.child
        asyncio.run(_writes(sends, writers, threads, bool(with_events)))
        return
    print(f"{'case':<28} {'instructions / write':>20}")
    for threads in (1, 32):
        per = {}
        for with_events in (True, False):
            short = _instructions(args.sends, args.writers, threads, with_events)
            long = _instructions(2 * args.sends, args.writers, threads, with_events)
            per[with_events] = (long - short) / args.sends
            label = f"{threads} thread{'s' if threads > 1 else ''}, {'with' if with_events else 'no'} event"
            print(f"{label:<28} {per[with_events]:>20,.0f}", flush=True)
        print(f"{'  without / with':<28} {100 * per[False] / per[True]:>19.1f}%", flush=True)


if __name__ == "__main__":
    main()
