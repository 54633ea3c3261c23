"""What unauthenticated and unauthorized requests cost a server in memory (issue 9, class 5).

Starts ``threadline serve`` with the ACS rates on (the default) on loopback, warms it up,
then sends three floods of ``--requests`` requests each, every one to a fresh random thread
id of ``--id-chars`` characters, spread over the throttled thread operations (send with a
malformed body, list messages, typing, read receipts, list participants):

1. no ``Authorization`` header (answered 401);
2. a forged bearer token (answered 401);
3. the valid token of a real user who is a member of none of those threads (answered 403/404).

After each flood it prints the server's resident memory (``VmRSS``) growth and the rate
limiter's key count (``threadline_throttle_keys`` from ``/metrics``, ``n/a`` on a server
that does not export it), scaled to MiB per 10,000 requests.

Then, in-process, it fills a limiter with authenticated traffic of distinct users and
threads until it holds its bound (``--keys``, default the server's default) and prints the
memory the limiter holds there (``tracemalloc``), per window and in all.

Usage (from the repository root)::

    .venv/bin/python bench/unauth_memory.py [--requests 10000] [--id-chars 8000]
        [--database postgresql://postgres@127.0.0.1:5432/<db>] [--keys 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from urllib.parse import quote

import aiohttp

API = "api-version=2024-03-07"
#: (method, path suffix after the thread, body) of the throttled thread operations used.
OPERATIONS = [
    ("POST", "/messages", b'{"content": '),  # malformed JSON
    ("GET", "/messages", None),
    ("POST", "/typing", b"{}"),
    ("POST", "/readReceipts", b'{"chatMessageId": "1"}'),
    ("GET", "/participants", None),
]


def start(data: Path, database: str | None) -> tuple[subprocess.Popen[str], str]:
    """Launch a server on loopback and return it with its HTTP endpoint."""
    extra = ["--database", database] if database else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "threadline", "serve", "--data", str(data), "--http-port", "0",
         "--https-port", "-1", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "THREADLINE_THROTTLE": "on"},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if m := re.search(r"HTTP endpoint:\s+(\S+)", line):
            return proc, m.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise RuntimeError("server did not start")


def make_token(data: Path, database: str | None) -> str:
    """A chat token of a fresh user, minted by the CLI from the data folder."""
    extra = ["--database", database] if database else []
    out = subprocess.run([sys.executable, "-m", "threadline", "user", "--data", str(data), *extra,
                          "--scopes", "chat"], capture_output=True, text=True, check=True, timeout=60).stdout
    match = re.search(r"token:\s+(\S+)", out)
    assert match, out
    return match.group(1)


def rss_mib(pid: int) -> float:
    """The resident set size of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def throttle_keys(session: aiohttp.ClientSession, base: str) -> str:
    """The limiter's key count from /metrics, or ``n/a``."""
    async with session.get(f"{base}/metrics") as answer:
        text = await answer.text()
    match = re.search(r"^threadline_throttle_keys (\S+)$", text, re.MULTILINE)
    return str(int(float(match.group(1)))) if match else "n/a"


async def flood(session: aiohttp.ClientSession, base: str, count: int, id_chars: int,
                authorization: str | None, concurrency: int = 16) -> dict[int, int]:
    """Send ``count`` requests to random thread ids; return how many got each status."""
    statuses: dict[int, int] = {}
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    queue = iter(range(count))

    async def worker() -> None:
        for n in queue:
            method, suffix, body = OPERATIONS[n % len(OPERATIONS)]
            thread = "19:" + secrets.token_hex(id_chars // 2) + "@thread.v2"
            url = f"{base}/chat/threads/{quote(thread, safe='')}{suffix}?{API}"
            async with session.request(method, url, data=body, headers=headers) as answer:
                await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def limiter_at_its_bound(keys: int) -> None:
    """Fill a limiter past its bound with distinct authenticated keys; print what it holds."""
    from threadline.server.throttle import Throttle

    resource = str(uuid.uuid4())
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    throttle = Throttle.acs(max_keys=keys)
    operations = ["list_messages", "get_message", "send_message", "list_participants", "send_typing"]
    taken = 0
    while throttle.evictions < keys // 10:  # well past the bound: evicting
        user = f"8:acs:{resource}_{uuid.uuid4()}"
        thread = f"19:{uuid.uuid4().hex}@thread.v2"
        throttle.take(operations[taken % len(operations)], user=user, thread=thread)
        taken += 1
    held = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    print(f"limiter at its bound of {keys} windows after {taken} distinct authenticated requests: "
          f"{throttle.tracked_keys} windows, {held / 2**20:.1f} MiB ({held / throttle.tracked_keys:.0f} bytes "
          f"per window holding one request; each further request held in a window adds 8 bytes)")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        proc, base = start(data, args.database)
        try:
            token = make_token(data, args.database)
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await flood(session, base, 1000, args.id_chars, None)  # warm-up: allocator, caches
                await flood(session, base, 1000, args.id_chars, f"Bearer {token}")
                print(f"{args.requests} requests per flood, thread ids of {args.id_chars} characters, "
                      f"engine {'postgres' if args.database else 'sqlite'}")
                for name, authorization in (
                    ("no token", None),
                    ("forged token", "Bearer " + token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")),
                    ("valid token, not a member", f"Bearer {token}"),
                ):
                    before = rss_mib(proc.pid)
                    started = time.perf_counter()
                    statuses = await flood(session, base, args.requests, args.id_chars, authorization)
                    elapsed = time.perf_counter() - started
                    grown = rss_mib(proc.pid) - before
                    keys = await throttle_keys(session, base)
                    per_10k = grown * 10_000 / args.requests
                    print(f"  {name:28s} statuses {dict(sorted(statuses.items()))}  RSS +{grown:.1f} MiB "
                          f"({per_10k:.1f} MiB per 10,000)  limiter keys {keys}  {elapsed:.1f} s")
        finally:
            proc.terminate()
            proc.wait(30)
    limiter_at_its_bound(args.keys)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--id-chars", type=int, default=8000)
    parser.add_argument("--database", help="postgresql://... (default: SQLite in a temporary folder)")
    parser.add_argument("--keys", type=int, default=100_000, help="the limiter bound to fill (in-process)")
    asyncio.run(main(parser.parse_args()))
