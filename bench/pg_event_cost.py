"""PostgreSQL's own time per batch call with and without events, with no Python client on the path.

``bench/scale_store.py`` compares writes with events to writes without at the store, where the
node's Python and PostgreSQL share the wall clock. This bench takes the client out: ``pgbench``
(one client, prepared) calls ``threadline_send_batch`` with the same 32 sends again and again, as
a node's statement would, on 32 threads and on one thread, with a ``chatMessageReceived`` event
per send or with none. Each call commits (and waits for its WAL flush), as a node's does. The cases
take turns for ``--rounds`` rounds; the figures are means of the rounds' calls per second.

    PYTHONPATH=src .venv/bin/python bench/pg_event_cost.py [--seconds 4] [--rounds 4]

Needs ``pgbench`` (Debian: ``postgresql-contrib``, or the server package of 15 and later). A
database ``threadline_bench_<random>`` is created on the server and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from scale_store import _threads

from scale import bench_database
from threadline.store.positions import partition_of
from threadline.store.postgres import PostgresStore

#: What a node passes for a keyless text send: its fixed columns (see ``pg_send.send_many``).
NOW_MS = 1_800_000_000_000
CASES = ("32 threads, events", "32 threads, none", "1 thread, events", "1 thread, none")


def _text(value: str | None) -> str:
    """A text literal pgbench will not read a ``:name`` variable in (thread and user ids hold colons)."""
    if value is None:
        return "NULL"
    return "(" + " || chr(58) || ".join("'" + part.replace("'", "''") + "'" for part in value.split(":")) + ")"


def _array(values: Sequence[str | None], kind: str = "text") -> str:
    return "ARRAY[" + ",".join(_text(v) for v in values) + f"]::{kind}[]"


def _numbers(values: Sequence[int | None], kind: str) -> str:
    return "ARRAY[" + ",".join("NULL" if v is None else str(v) for v in values) + f"]::{kind}[]"


def script(targets: list[tuple[str, str]], events: bool, partitions: int) -> str:
    """One ``threadline_send_batch`` call of ``len(targets)`` keyless sends, ``(thread, sender)`` each."""
    n = len(targets)
    threads, senders = [t for t, _ in targets], [u for _, u in targets]
    marks = [str(10**17 + k) for k in range(2 * n)]  # id and sequence marks, as pg_send.prepare draws them
    nothing: list[str | None] = [None] * n
    payloads = (
        "ARRAY[" + ",".join(f"convert_to('{{\"id\":\"{m}\"}}', 'UTF8')" for m in marks[:n]) + "]::bytea[]"
        if events else "ARRAY[" + ",".join(["NULL"] * n) + "]::bytea[]"
    )
    arguments = [
        _array(threads), _array(nothing), _array(nothing), _array(["text"] * n), _array(senders),
        _array(nothing), _array(["x"] * n), _array(nothing), _numbers([NOW_MS] * n, "bigint"),
        _array(marks[:n]), _array(marks[n:]), _array([""] * n),
        _array(["chatMessageReceived" if events else None] * n), payloads,
        _numbers([NOW_MS if events else None] * n, "bigint"),
        _numbers([partition_of(t, partitions) for t in threads], "int"), str(partitions),
    ]
    return f"SELECT count(*) FROM threadline_send_batch({', '.join(arguments)});\n"


def pgbench(database: str, path: Path, seconds: float) -> float:
    """Calls per second of one pgbench client running the script at ``path``."""
    url = urlsplit(database)
    command = ["pgbench", "-n", "-M", "prepared", "-c", "1", "-T", str(max(1, round(seconds))), "-f", str(path),
               "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres",
               url.path.lstrip("/")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = re.search(r"tps = ([0-9.]+)", done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"pgbench failed: {done.stderr.strip() or done.stdout.strip()}")
    return float(found.group(1))


async def _prepare(database: str, folder: Path) -> dict[str, Path]:
    store = PostgresStore(database, max_size=2)
    await store.open()
    try:
        many = await _threads(store, 32)
        partitions = store.partitions
    finally:
        await store.close()
    paths: dict[str, Path] = {}
    for case in CASES:
        targets = many if case.startswith("32") else [many[0]] * 32
        paths[case] = folder / f"{len(paths)}.sql"
        paths[case].write_text(script(targets, case.endswith("events"), partitions))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description="PostgreSQL's time per batch call, events vs none (pgbench).")
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each case in each round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds; every other one in reverse order")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a database on the server to create the bench database from")
    args = parser.parse_args()
    if shutil.which("pgbench") is None:
        raise SystemExit("pgbench is not installed (Debian: apt-get install postgresql-contrib)")
    with bench_database(args.database) as database, tempfile.TemporaryDirectory() as folder:
        paths = asyncio.run(_prepare(database, Path(folder)))
        rates: dict[str, list[float]] = {case: [] for case in CASES}
        for round_ in range(args.rounds):
            for case in CASES if round_ % 2 == 0 else CASES[::-1]:
                rates[case].append(pgbench(database, paths[case], args.seconds))
    print(f"32 sends per call, one pgbench client; rounds: {args.rounds}, {args.seconds:.0f} s per case in each")
    print(f"{'case':<20} {'calls/s':>8} {'us/call':>8} {'us/send':>8}   rounds (calls/s)")
    means = {}
    for case in CASES:
        means[case] = sum(rates[case]) / len(rates[case])
        shown = "/".join(f"{r:.0f}" for r in rates[case])
        print(f"{case:<20} {means[case]:>8.0f} {1e6 / means[case]:>8.0f} {1e6 / means[case] / 32:>8.1f}   {shown}")
    for where in ("32 threads", "1 thread"):
        ratio = means[f"{where}, events"] / means[f"{where}, none"]
        print(f"{where}: calls with events / calls without = {100 * ratio:.0f}%")


if __name__ == "__main__":
    main()
