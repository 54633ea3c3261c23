"""Slowloris benchmark: does a flood of never-finished requests take the server down?

Starts ``threadline serve`` (SQLite, plain HTTP on 127.0.0.1, default
connection limits unless ``--server-arg`` adds flags) in a temporary folder,
then opens ``--sockets`` connections to it as fast as it can. Each sends the
start of a request head and then one more header line every ``--trickle``
seconds, never the blank line that ends the head: the classic slowloris. A
socket the server closes is reopened (so the attack keeps the pressure on for
the whole run). Meanwhile a probe asks ``GET /health`` on a fresh connection
every half second (5 s timeout).

Every two seconds it prints, and at the end it summarises:

* ``held``: connections the server holds open (its open file descriptors from
  ``/proc/<pid>/fd``, and ``threadline_connections_open`` from ``/metrics``);
* ``attack open``: how many of the attacker's sockets are open at that moment;
* ``health``: probes answered ``200`` / failed, and the slowest answer.

Usage::

    .venv/bin/python bench/slowloris.py                       # 20,000 sockets, 60 s
    .venv/bin/python bench/slowloris.py --sockets 2000 --duration 20 \\
        --server-arg=--max-connections=500 --server-arg=--header-timeout=5

Traffic goes to 127.0.0.1 only. Bounded: the attack runs ``--duration``
seconds; the socket count is capped by this process's open-file limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HEAD = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n"


@dataclass
class Server:
    """The server subprocess."""

    process: subprocess.Popen[bytes]
    host: str
    port: int

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(data: Path, extra: list[str]) -> Server:
    """Start ``threadline serve`` on a free loopback port and wait for its banner."""
    log = data.parent / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "threadline", "serve", "--data", str(data), "--http-port", "0",
             "--https-port", "-1", "--host", "127.0.0.1", *extra],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log.read_text("utf-8", "replace") if log.exists() else ""
        if match := re.search(r"HTTP endpoint:\s+http://([\d.]+):(\d+)", text):
            return Server(process, match.group(1), int(match.group(2)))
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start:\n" + (log.read_text() if log.exists() else ""))


class Loris(asyncio.Protocol):
    """One slowloris socket: it only ever writes, and notes when the server closes it."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stats.open += 1
        self.transport.write(HEAD)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.stats.answered += 1  # the server answered (408...) instead of waiting

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.open -= 1
        self.stats.closed_by_server += 1
        self.transport = None


@dataclass
class Stats:
    open: int = 0
    opened: int = 0
    failed_connects: int = 0
    closed_by_server: int = 0
    answered: int = 0
    health_ok: int = 0
    health_failed: int = 0
    health_worst: float = 0.0
    held_fds: list[int] = field(default_factory=list)
    held_metric: list[int] = field(default_factory=list)


async def probe(host: str, port: int, stats: Stats, stop: float) -> None:
    """``GET /health`` on a fresh connection every half second."""
    while time.monotonic() < stop:
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            if answer.startswith(b"HTTP/1.1 200"):
                stats.health_ok += 1
                stats.health_worst = max(stats.health_worst, time.perf_counter() - started)
            else:
                stats.health_failed += 1
        except (OSError, TimeoutError):
            stats.health_failed += 1
        await asyncio.sleep(0.5)


async def metric(host: str, port: int, name: str) -> int | None:
    """One gauge from ``/metrics`` (None when it cannot be read)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        text = (await asyncio.wait_for(reader.read(), 5)).decode("utf-8", "replace")
        writer.close()
    except (OSError, TimeoutError):
        return None
    match = re.search(rf"^{name} ([\d.e+]+)$", text, re.MULTILINE)
    return int(float(match.group(1))) if match else None


async def attack(args: argparse.Namespace, server: Server) -> Stats:
    loop = asyncio.get_running_loop()
    stats = Stats()
    lorises: list[Loris] = []
    stop = time.monotonic() + args.duration
    probing = asyncio.create_task(probe(server.host, server.port, stats, stop))

    async def connect() -> None:
        try:
            _, protocol = await loop.create_connection(lambda: Loris(stats), server.host, server.port)
            lorises.append(protocol)
            stats.opened += 1
        except OSError:
            stats.failed_connects += 1

    async def keep_up() -> None:
        """Open sockets until ``--sockets`` are open; reopen those the server closed."""
        while time.monotonic() < stop:
            lorises[:] = [lo for lo in lorises if lo.transport is not None]
            missing = args.sockets - len(lorises)
            for start in range(0, missing, 500):
                await asyncio.gather(*(connect() for _ in range(min(500, missing - start))))
                if time.monotonic() >= stop:
                    return
            await asyncio.sleep(0.2)

    async def trickle() -> None:
        while time.monotonic() < stop:
            await asyncio.sleep(args.trickle)
            for lo in list(lorises):
                if lo.transport is not None:
                    lo.transport.write(b"X-Slow: 1\r\n")

    async def report() -> None:
        while time.monotonic() < stop:
            await asyncio.sleep(2)
            held = server.open_fds()
            gauge = await metric(server.host, server.port, "threadline_connections_open")
            stats.held_fds.append(held)
            if gauge is not None:
                stats.held_metric.append(gauge)
            print(f"  attack open {stats.open:6d}  server fds {held:6d}  connections_open {gauge}  "
                  f"health ok {stats.health_ok} failed {stats.health_failed} worst {stats.health_worst:.3f}s",
                  flush=True)

    tasks = [asyncio.create_task(t) for t in (keep_up(), trickle(), report())]
    await asyncio.gather(probing, *tasks)
    for lo in lorises:
        if lo.transport is not None:
            lo.transport.abort()
    await asyncio.sleep(0.5)
    return stats


def main() -> None:
    """Run the attack against a fresh server and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sockets", type=int, default=20_000, help="slowloris sockets (default 20000)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of attack (default 60)")
    parser.add_argument("--trickle", type=float, default=5, help="seconds between header lines (default 5)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for threadline serve")
    args = parser.parse_args()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if args.sockets > soft - 64:
        print(f"this process may open {soft} files: using {soft - 64} sockets", flush=True)
        args.sockets = soft - 64
    args.duration = min(args.duration, 600)
    with tempfile.TemporaryDirectory(prefix="threadline-slowloris-") as tmp:
        server = start_server(Path(tmp) / "data", args.server_arg)
        try:
            print(f"server pid {server.process.pid} on {server.host}:{server.port}; idle fds {server.open_fds()}")
            import uvloop

            stats = uvloop.run(attack(args, server))
        finally:
            alive = server.process.poll() is None
            server.stop()
    print(f"sockets asked: {args.sockets}, opened over the run: {stats.opened}, failed connects: "
          f"{stats.failed_connects}, closed by the server: {stats.closed_by_server}, answered: {stats.answered}")
    print(f"server held at most {max(stats.held_fds or [0])} fds, "
          f"threadline_connections_open at most {max(stats.held_metric or [0])}")
    print(f"/health: {stats.health_ok} ok, {stats.health_failed} failed, slowest {stats.health_worst:.3f} s; "
          f"server alive at the end: {alive}")


if __name__ == "__main__":
    main()
