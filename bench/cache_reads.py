"""Store reads of the token's user and the caller's membership per request, with the access cache on and off.

Starts ``threadline serve`` (SQLite, or PostgreSQL with ``--events`` Redis), makes a user and a thread,
sends and lists messages over HTTP, and reads the access cache counters from ``/metrics``: every
``miss`` and every ``bypass`` is one store read (``THREADLINE_CACHE_ENTRIES=0`` turns the cache off, so
every lookup is a bypass). Throttling is on, so a send also checks membership before its body is read.

    cd bench && PYTHONPATH=../src python cache_reads.py [--database postgresql://... --events redis://...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import requests

API = "api-version=2024-03-07"


def counters(base: str) -> dict[str, float]:
    text = requests.get(f"{base}/metrics", timeout=5).text
    found = re.findall(r'^threadline_access_cache_lookups_total\{kind="(\w+)",result="(\w+)"\} (\S+)$', text, re.M)
    return {f"{kind}:{result}": float(value) for kind, result, value in found}


def run(home: str, entries: str, extra: list[str], count: int) -> dict[str, float]:
    env = {**os.environ, "THREADLINE_CACHE_ENTRIES": entries, "THREADLINE_THROTTLE": "100"}
    server = subprocess.Popen(
        [sys.executable, "-m", "threadline", "serve", "--data", f"{home}/data", "--http-port", "0",
         "--https-port", "-1", *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        assert server.stdout is not None
        base = ""
        while not base:
            line = server.stdout.readline()
            if not line:
                raise SystemExit("the server did not start")
            if m := re.search(r"HTTP endpoint:\s+(\S+)", line):
                base = m.group(1)
        time.sleep(0.5)
        made = subprocess.run(
            [sys.executable, "-m", "threadline", "user", "--data", f"{home}/data", *extra[:2]],
            capture_output=True, text=True, env=env,
        )
        if made.returncode:
            raise SystemExit(made.stdout + made.stderr)
        token = re.search(r"eyJ[\w.-]+", made.stdout)
        assert token is not None, made.stdout
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token.group(0)}"
        thread = http.post(f"{base}/chat/threads?{API}", json={"topic": "bench"}, timeout=10).json()
        thread_id = thread["chatThread"]["id"]
        result: dict[str, float] = {}
        for name, call in (
            ("send", lambda: http.post(f"{base}/chat/threads/{thread_id}/messages?{API}",
                                       json={"content": "hi"}, timeout=10)),
            ("list", lambda: http.get(f"{base}/chat/threads/{thread_id}/messages?{API}&maxPageSize=20",
                                      timeout=10)),
        ):
            before = counters(base)
            for _ in range(count):
                assert call().status_code in (200, 201)
            after = counters(base)
            reads = sum(after.get(k, 0) - before.get(k, 0) for k in after if k.endswith((":miss", ":bypass")))
            result[name] = reads / count
        return result
    finally:
        server.terminate()
        server.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database")
    parser.add_argument("--events")
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    extra = ["--database", args.database] if args.database else []
    extra += ["--events", args.events] if args.events else []
    home = tempfile.mkdtemp()  # one data folder (key, resource id) for both runs
    for label, entries in (("cache off", "0"), ("cache on", "20000")):
        reads = run(home, entries, extra, args.count)
        print(f"{label:9}  user+membership store reads per send: {reads['send']:.2f}   per list: {reads['list']:.2f}")


if __name__ == "__main__":
    main()
