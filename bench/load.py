"""Load benchmark of one embedded-SQLite server (issue 2).

Starts ``threadline serve --no-limits`` on loopback, then from one client thread (asyncio + aiohttp):

* ``send_message`` throughput and p50/p99 latency with 1, 8 and 32 concurrent clients;
* ``GET /health`` under the same load: the ceiling of this server on this machine;
* ``list_messages`` pages per second over a 10,000-message thread, 50 per page.

Figures are printed as absolute numbers and as a ratio of the ceiling, since the machine is
shared and noisy. Usage: ``.venv/bin/python bench/load.py [--seconds 5] [--messages 10000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

API = "api-version=2024-03-07"


def start_server(data: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "threadline", "serve", "--data", str(data), "--http-port", "0",
         "--https-port", "-1", "--no-limits"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if m := re.search(r"HTTP endpoint:\s+(\S+)", line):
            return proc, m.group(1)
    raise RuntimeError("server did not start")


async def token_for(session: aiohttp.ClientSession, endpoint: str, data: Path) -> str:
    # The CLI mints tokens straight from the data folder; no HMAC client needed here.
    out = subprocess.run([sys.executable, "-m", "threadline", "user", "--data", str(data), "--scopes", "chat"],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"token:\s+(\S+)", out)
    assert match
    return match.group(1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(session: aiohttp.ClientSession, make_request, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            async with make_request() as response:
                await response.read()
                assert response.status in (200, 201), response.status
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - began
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "n": len(latencies),
    }


async def main(seconds: float, messages: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        proc, endpoint = start_server(data)
        try:
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(connector=connector) as session:
                token = await token_for(session, endpoint, data)
                auth = {"Authorization": f"Bearer {token}"}
                async with session.post(f"{endpoint}/chat/threads?{API}", json={"topic": "bench"},
                                        headers=auth) as r:
                    thread = (await r.json())["chatThread"]["id"]
                send_url = f"{endpoint}/chat/threads/{thread}/messages?{API}"
                body = {"content": "hello from the benchmark", "senderDisplayName": "bench"}

                def send():  # type: ignore[no-untyped-def]
                    return session.post(send_url, json=body, headers=auth)

                def health():  # type: ignore[no-untyped-def]
                    return session.get(f"{endpoint}/health")

                print(f"server: {endpoint} (SQLite, one process); client: one asyncio thread; {seconds:.0f} s per case")
                print(f"{'case':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'of ceiling':>12}")
                for clients in (1, 8, 32):
                    ceiling = await drive(session, health, clients, seconds)
                    sent = await drive(session, send, clients, seconds)
                    print(f"{'GET /health  c=' + str(clients):<28}{ceiling['rps']:>10.0f}{ceiling['p50_ms']:>10.2f}"
                          f"{ceiling['p99_ms']:>10.2f}{'100%':>12}")
                    print(f"{'send_message c=' + str(clients):<28}{sent['rps']:>10.0f}{sent['p50_ms']:>10.2f}"
                          f"{sent['p99_ms']:>10.2f}{sent['rps'] / ceiling['rps']:>11.0%}")

                async with session.post(f"{endpoint}/chat/threads?{API}", json={"topic": "big"}, headers=auth) as r:
                    big = (await r.json())["chatThread"]["id"]
                big_url = f"{endpoint}/chat/threads/{big}/messages?{API}"
                queue = iter(range(messages))

                async def filler() -> None:
                    for _ in queue:
                        async with session.post(big_url, json=body, headers=auth) as r:
                            assert r.status == 201
                began = time.perf_counter()
                await asyncio.gather(*(filler() for _ in range(32)))
                fill = time.perf_counter() - began

                pages = items = 0
                began = time.perf_counter()
                while time.perf_counter() - began < seconds:
                    url: str | None = f"{big_url}&maxPageSize=50"
                    while url:
                        async with session.get(url, headers=auth) as r:
                            page = await r.json()
                        pages += 1
                        items += len(page["value"])
                        link = page.get("nextLink")
                        url = f"{endpoint}{link}" if link else None
                elapsed = time.perf_counter() - began
                print(f"filled a {messages}-message thread in {fill:.1f} s ({messages / fill:.0f} sends/s at c=32)")
                print(f"list_messages: {pages / elapsed:.0f} pages/s of 50 ({items / elapsed:.0f} messages/s), "
                      f"{pages} pages read")
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.messages))
