"""Real-time delivery benchmark: send → receipt latency and memory per idle connection.

Starts ``threadline serve`` (SQLite, plain HTTP on 127.0.0.1, ``--no-limits``)
in a temporary folder, creates ``--listeners`` users each holding one
WebSocket to ``/chat/realtime``, then measures:

* server memory per idle connection: the server's VmRSS (``/proc/<pid>/status``)
  before and after opening the last phase of connections (900 of the 1,000),
  divided by their number;
* delivery latency with 1, 100 and 1,000 listening connections (connections
  open in phases, so each row runs with exactly that many open): a sender posts
  messages one at a time (a bare ``POST /chat/threads/{id}/messages`` on a
  kept-alive aiohttp connection, so no SDK pipeline cost is counted) to a
  thread whose members are the first *k* listeners, and every listener notes
  when the message's frame arrives. Latency is measured from just before the
  request is sent to the arrival, so it includes the HTTP request, the
  database commit and the fan-out. "all served" is, per message, the time
  until the *last* of the k listeners has it; "http" is the POST's own
  round trip.

The listeners run in this process on uvloop; with 1,000 of them the client
side (reading 1,000 frames per message in one Python process) is part of
what "all served" measures. Before each row the client freezes its heap
(``gc.freeze()``), so its own garbage collector does not add pauses of tens
of milliseconds to the figures; the server does the same after starting.

Usage::

    .venv/bin/python bench/realtime.py            # 1,000 listeners, ~30 s
    .venv/bin/python bench/realtime.py --listeners 200 --messages 50

Everything is bounded: ``--timeout`` seconds overall (default 180).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from threadline.chat import ChatParticipant, CommunicationUserIdentifier
from threadline.chat.aio import ChatClient, CommunicationTokenCredential
from threadline.identity.aio import CommunicationIdentityClient

ROOT = Path(__file__).resolve().parent.parent


def rss_kib(pid: int) -> int:
    """The resident set size of a process in KiB (VmRSS).

    Args:
        pid: the process id.

    Returns:
        VmRSS in KiB.

    Raises:
        RuntimeError: the status file has no VmRSS line.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (0 < fraction <= 1)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Server:
    """The server subprocess."""

    process: subprocess.Popen[str]
    endpoint: str
    data: Path

    @property
    def connection_string(self) -> str:
        key = (self.data / "access-key").read_text().strip()
        return f"endpoint={self.endpoint}/;accesskey={key}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(data: Path) -> Server:
    """Start ``threadline serve`` and wait for its HTTP endpoint.

    Raises:
        RuntimeError: it did not start within 30 s.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "threadline", "serve", "--data", str(data), "--http-port", "0",
         "--https-port", "-1", "--no-limits", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(data.parent),
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if match := re.search(r"HTTP endpoint:\s+(\S+)", line):
            return Server(process, match.group(1), data)
    process.kill()
    raise RuntimeError("the server did not start")


@dataclass
class Listeners:
    """The listening connections and the arrival times they record."""

    count: int
    arrivals: dict[int, list[float]] = field(default_factory=dict)
    waiting: dict[int, tuple[int, asyncio.Event]] = field(default_factory=dict)

    def expect(self, seq: int, receivers: int) -> asyncio.Event:
        done = asyncio.Event()
        self.arrivals[seq] = []
        self.waiting[seq] = (receivers, done)
        return done

    def arrived(self, seq: int, when: float) -> None:
        times = self.arrivals.get(seq)
        if times is None:
            return
        times.append(when)
        receivers, done = self.waiting[seq]
        if len(times) >= receivers:
            done.set()


async def listen(ws: aiohttp.ClientWebSocketResponse, listeners: Listeners) -> None:
    """Read one connection: note message arrivals, answer pings."""
    marker = '"message":"bench:'
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        data: str = message.data
        now = time.perf_counter()
        if data.startswith('{"type":"chatMessageReceived"'):
            start = data.find(marker) + len(marker)
            listeners.arrived(int(data[start:data.index('"', start)]), now)
        elif data.startswith('{"type":"ping"'):
            await ws.send_str('{"type":"pong"}')


async def open_connections(
    url: str, tokens: list[str], session: aiohttp.ClientSession, listeners: Listeners
) -> list[aiohttp.ClientWebSocketResponse]:
    """Open one WebSocket per token and wait until each is live (``synced``)."""
    semaphore = asyncio.Semaphore(100)

    async def one(token: str) -> aiohttp.ClientWebSocketResponse:
        async with semaphore:
            ws = await session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}, autoping=True)
            while True:
                message = await ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"connection refused: {message}")
                if '"type":"synced"' in message.data:
                    break
            asyncio.get_running_loop().create_task(listen(ws, listeners))
            return ws

    return list(await asyncio.gather(*(one(t) for t in tokens)))


async def measure(
    post: aiohttp.ClientSession, url: str, token: str, receivers: int, messages: int, listeners: Listeners,
    first_seq: int,
) -> tuple[list[float], list[float], list[float]]:
    """Send messages one by one.

    Returns:
        Every (message, listener) latency, each message's last arrival, each POST's round trip (ms).
    """
    every: list[float] = []
    last: list[float] = []
    http: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for seq in range(first_seq, first_seq + messages):
        done = listeners.expect(seq, receivers)
        body = b'{"content":"bench:%d"}' % seq
        sent = time.perf_counter()
        async with post.post(url, data=body, headers=headers) as response:
            assert response.status == 201, await response.text()
            await response.read()
        http.append((time.perf_counter() - sent) * 1000)
        await asyncio.wait_for(done.wait(), 10)
        times = listeners.arrivals.pop(seq)
        every += [(t - sent) * 1000 for t in times]
        last.append((max(times) - sent) * 1000)
        await asyncio.sleep(0.005)
    return every, last, http


async def run(args: argparse.Namespace, server: Server) -> None:
    identity = CommunicationIdentityClient.from_connection_string(server.connection_string)
    semaphore = asyncio.Semaphore(50)

    async def new_user() -> tuple[str, str]:
        async with semaphore:
            user, token = await identity.create_user_and_token(["chat"])
            return str(user.properties["id"]), token.token

    started = time.perf_counter()
    users = await asyncio.gather(*(new_user() for _ in range(args.listeners + 1)))
    await identity.close()
    sender_token, listener_users = users[0][1], users[1:]
    print(f"created {len(users)} users in {time.perf_counter() - started:.1f} s")

    sender = ChatClient(server.endpoint, CommunicationTokenCredential(sender_token))
    sizes = [k for k in (1, 100, 1000) if k <= args.listeners]
    threads: dict[int, str] = {}
    for k in sizes:
        members = [ChatParticipant(identifier=CommunicationUserIdentifier(uid)) for uid, _ in listener_users[:k]]
        created = await sender.create_chat_thread(f"bench {k}", thread_participants=members)
        assert created.chat_thread is not None
        threads[k] = created.chat_thread.id

    listeners = Listeners(args.listeners)
    url = server.endpoint.replace("http://", "ws://") + "/chat/realtime"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm = await open_connections(url, [listener_users[0][1]], session, listeners)  # load the code paths
        await warm[0].close()
        await asyncio.sleep(1.0)
        # Connections open in phases, so each row is measured with exactly k connections open;
        # the last phase (the most connections, all idle while they open) also gives the memory figure.
        connections: list[aiohttp.ClientWebSocketResponse] = []
        results = []
        seq = 0
        per_connection = 0.0
        memory_sample = 0
        async with aiohttp.ClientSession() as post:
            for k in sizes:
                fresh = [t for _, t in listener_users[len(connections):k]]
                if k == sizes[-1] and len(fresh) > 1:
                    before = rss_kib(server.process.pid)
                    started = time.perf_counter()
                    connections += await open_connections(url, fresh, session, listeners)
                    opened = time.perf_counter() - started
                    await asyncio.sleep(2.0)
                    after = rss_kib(server.process.pid)
                    memory_sample = len(fresh)
                    per_connection = (after - before) * 1024 / memory_sample
                    print(f"opened {memory_sample} more connections in {opened:.1f} s (now {len(connections)})")
                    print(f"server RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB: "
                          f"{per_connection / 1024:.1f} KiB per idle connection")
                else:
                    connections += await open_connections(url, fresh, session, listeners)
                gc.collect()
                gc.freeze()  # this client's own collector would otherwise add its pauses to the figures
                post_url = f"{server.endpoint}/chat/threads/{threads[k]}/messages?api-version=2024-03-07"
                count = args.messages if k < 1000 else max(10, args.messages // 2)
                await measure(post, post_url, sender_token, k, 5, listeners, 10_000_000 + seq)  # warm-up
                every, last, http = await measure(post, post_url, sender_token, k, count, listeners, seq)
                seq += count
                results.append((k, count, every, last, http))
        for ws in connections:
            await ws.close()
    await sender.close()

    print()
    print("listeners  messages  p50 ms  p99 ms  max ms  | all served: p50 ms  p99 ms  | http p50 ms")
    for k, count, every, last, http in results:
        print(f"{k:9d}  {count:8d}  {statistics.median(every):6.2f}  {percentile(every, 0.99):6.2f}  "
              f"{max(every):6.2f}  | {statistics.median(last):17.2f}  {percentile(last, 0.99):6.2f}  | "
              f"{statistics.median(http):11.2f}")
    print(f"\nmemory: {per_connection / 1024:.1f} KiB per idle connection ({memory_sample} connections sampled)")


def main() -> None:
    """Parse arguments, start the server, run the benchmark within the time limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listeners", type=int, default=1000, help="listening connections (default 1000)")
    parser.add_argument("--messages", type=int, default=200, help="messages per measurement (default 200)")
    parser.add_argument("--timeout", type=float, default=180, help="overall limit in seconds (default 180)")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder) / "data")
        try:
            asyncio.run(asyncio.wait_for(run(args, server), args.timeout))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
