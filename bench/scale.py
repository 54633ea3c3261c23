"""Scale-out benchmark (issue 5): SQLite vs PostgreSQL, one node vs two, in one run.

Starts real ``threadline serve`` processes on 127.0.0.1 (plain HTTP, throttling off) and drives
them from this process with aiohttp and raw HTTP (tokens come from the identity API, HMAC-signed):

* ``GET /health`` on one node: the ceiling of a node on this machine;
* ``send_message`` on one SQLite node, on one PostgreSQL node, and on two PostgreSQL nodes
  sharing the database and a Redis hub (clients alternate between the nodes);

each at 8 and 32 concurrent clients (each client its own user and thread), for ``--seconds``
per case. It prints requests per second, p50/p99 latency and the server CPU milliseconds per
operation (utime+stime of the server processes from /proc, before and after the case).

Then, at the store level, the cost of the event counter: PostgreSQL ``send_message`` with its
event (which takes the single-row counter lock until commit) against the same write without an
event (no counter), at 8 and 32 concurrent writers.

Figures, ``--seconds 10``, on a 2-CPU machine shared with other work (so +-30 % from run to
run; the health ceiling moved between 2300 and 5800 req/s): two interleaved runs of the store
before 8b0367f (the counter lock held through the recipients query and ``COMMIT``) and after
(taken and released by one final message). Store level, writes/s (p99 ms)::

    send + event, c=8     before 616, 479 (50, 58)      after 766, 802 (20, 20)
    send + event, c=32    before 296, 269 (659, 676)    after 462, 626 (164, 112)
    send, no event, c=8   before 1008, 925              after 1496, 1479
    send, no event, c=32  before 977, 806               after 964, 1239

Sampling ``pg_stat_activity`` during the event case, writers waiting on a lock fell from ~5 of
8 to ~1.5, and from ~24 of 32 to ~5. HTTP sends, req/s::

    PostgreSQL, 1 node, c=8    before 219, 174    after 330, 201
    PostgreSQL, 1 node, c=32   before 301, 184    after 373, 231
    PostgreSQL, 2 nodes, c=8   before 237, 276    after 347, 206
    PostgreSQL, 2 nodes, c=32  before 271, 178    after 352, 310

Over HTTP a PostgreSQL node now spends 2-3 ms of its own CPU per send (SQLite: ~1), and the
client, both nodes and PostgreSQL share two CPUs, so on this machine CPU rather than the counter
limits the HTTP figures and a second node cannot add throughput; measure scale-out on more cores.

Usage::

    .venv/bin/python bench/scale.py [--seconds 10] [--database postgresql://postgres@127.0.0.1:5432/postgres]
                                    [--redis redis://127.0.0.1:6379/0]

A database ``threadline_bench_<random>`` is created on that server and dropped at the end.

In the two-node cluster it also times real-time delivery: one message at a time sent through node A,
received on a WebSocket held on node A (same node) or node B (across nodes, through the Redis hub).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from threadline.identity import hmac as signing
from threadline.store.base import Effects
from threadline.store.postgres import PostgresStore
from threadline.store.records import MessageDraft, MessageRecord, ParticipantRecord, ThreadRecord, UserRecord

CHAT = "api-version=2024-03-07"
IDENTITY = "api-version=2023-10-01"
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


@dataclass
class Node:
    process: subprocess.Popen[str]
    endpoint: str
    key: str = ""

    def cpu_ms(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * TICK_MS


@dataclass
class Result:
    name: str
    clients: int
    ops: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    errors: int

    def row(self) -> str:
        rps = self.ops / self.seconds
        per_op = self.cpu_ms / self.ops if self.ops else float("nan")
        return (f"{self.name:<28} {self.clients:>3} {rps:>9.0f} {self.p50_ms:>8.2f} {self.p99_ms:>8.2f} "
                f"{per_op:>10.2f} {self.errors:>6}")


HEADER = f"{'case':<28} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/op':>10} {'errors':>6}"


def launch(data: Path, *flags: str) -> Node:
    """Start a node and return once it answers /health."""
    data.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "threadline", "serve", "--data", str(data), "--http-port", "0",
         "--https-port", "-1", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "THREADLINE_THROTTLE": "off"},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if m := re.search(r"HTTP endpoint:\s+(\S+)", line):
            node = Node(process, m.group(1))
            break
    else:
        raise RuntimeError("server did not start")
    # Keep reading its output so the pipe never fills.
    asyncio.get_running_loop().run_in_executor(None, lambda: [None for _ in process.stdout or ()])
    return node


@contextlib.asynccontextmanager
async def cluster(root: Path, count: int, *flags: str) -> AsyncIterator[list[Node]]:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    shared = ["--access-key", key, "--resource-id", str(uuid.uuid4()), *flags]
    nodes = [launch(root / f"node{i}-{secrets.token_hex(3)}" / "data", *shared) for i in range(count)]
    try:
        async with aiohttp.ClientSession() as session:
            for node in nodes:
                for _ in range(200):
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(f"{node.endpoint}/health") as r:
                            if r.status == 200:
                                break
                    await asyncio.sleep(0.05)
        for node in nodes:
            node.key = key
        yield nodes
    finally:
        for node in nodes:
            node.process.terminate()
        for node in nodes:
            try:
                node.process.wait(20)
            except subprocess.TimeoutExpired:
                node.process.kill()


async def new_user(session: aiohttp.ClientSession, node: Node, key: str) -> tuple[str, str]:
    """Create an identity with a chat token through the HMAC-signed identity API."""
    body = json.dumps({"createTokenWithScopes": ["chat"]}).encode()
    path = f"/identities?{IDENTITY}"
    headers = signing.sign(signing.decode_key(key), "POST", path, urlsplit(node.endpoint).netloc, body, time.time())
    async with session.post(f"{node.endpoint}{path}", data=body,
                            headers={**headers, "Content-Type": "application/json"}) as r:
        assert r.status == 201, await r.text()
        reply = await r.json()
    return reply["identity"]["id"], reply["accessToken"]["token"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def drive(
    name: str, nodes: list[Node], clients: int, seconds: float,
    request: Callable[[aiohttp.ClientSession, int], Awaitable[int]],
    session: aiohttp.ClientSession,
) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            status = await request(session, index)
            if status in (200, 201):
                latencies.append(time.perf_counter() - began)
            else:
                errors += 1

    cpu_before = sum(n.cpu_ms() for n in nodes)
    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    cpu = sum(n.cpu_ms() for n in nodes) - cpu_before
    return Result(name, clients, len(latencies), elapsed, percentile(latencies, 0.5) * 1000,
                  percentile(latencies, 0.99) * 1000, cpu, errors)


async def send_case(name: str, nodes: list[Node], clients: int, seconds: float) -> Result:
    key = nodes[0].key
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        targets = []
        for i in range(clients):
            node = nodes[i % len(nodes)]
            _, token = await new_user(session, node, key)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            async with session.post(f"{node.endpoint}/chat/threads?{CHAT}", data=b'{"topic":"bench"}',
                                    headers=headers) as r:
                assert r.status == 201, await r.text()
                thread_id = (await r.json())["chatThread"]["id"]
            targets.append((f"{node.endpoint}/chat/threads/{thread_id}/messages?{CHAT}", headers))
        body = b'{"content":"hello from the benchmark","senderDisplayName":"bench"}'

        async def send(s: aiohttp.ClientSession, index: int) -> int:
            url, headers = targets[index]
            async with s.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status

        await drive(name, nodes, clients, min(1.0, seconds), send, session)  # warm-up
        return await drive(name, nodes, clients, seconds, send, session)


async def delivery_case(nodes: list[Node], listen_on: int, messages: int) -> str:
    """Send one message at a time through node 0; time its arrival on a WebSocket held on ``listen_on``.

    Returns:
        The printed row: p50/p99 of send -> frame, in ms.
    """
    key = nodes[0].key
    async with aiohttp.ClientSession() as session:
        listener_id, listener_token = await new_user(session, nodes[0], key)
        _, sender_token = await new_user(session, nodes[0], key)
        headers = {"Authorization": f"Bearer {sender_token}", "Content-Type": "application/json"}
        member = {"communicationIdentifier": {"rawId": listener_id, "communicationUser": {"id": listener_id}}}
        body = json.dumps({"topic": "delivery", "participants": [member]}).encode()
        async with session.post(f"{nodes[0].endpoint}/chat/threads?{CHAT}", data=body, headers=headers) as r:
            assert r.status == 201, await r.text()
            thread_id = (await r.json())["chatThread"]["id"]
        url = f"{nodes[0].endpoint}/chat/threads/{thread_id}/messages?{CHAT}"
        ws_url = nodes[listen_on].endpoint.replace("http://", "ws://") + "/chat/realtime"
        latencies: list[float] = []
        async with session.ws_connect(ws_url, headers={"Authorization": f"Bearer {listener_token}"}) as ws:
            while '"synced"' not in (await ws.receive()).data:
                pass
            for n in range(messages + 5):
                text = f"delivery:{n}"
                began = time.perf_counter()
                async with session.post(url, data=json.dumps({"content": text}).encode(), headers=headers) as r:
                    assert r.status == 201
                while True:
                    frame = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
                    if frame.get("type") == "chatMessageReceived" and frame["data"]["message"] == text:
                        break
                if n >= 5:  # the first few warm the paths
                    latencies.append((time.perf_counter() - began) * 1000)
                await asyncio.sleep(0.005)
    where = "same node" if listen_on == 0 else "across nodes"
    return (f"{'delivery, PostgreSQL, ' + where:<34} {messages:>8} {percentile(latencies, 0.5):>8.2f} "
            f"{percentile(latencies, 0.99):>8.2f}")


async def health_case(nodes: list[Node], clients: int, seconds: float) -> Result:
    url = f"{nodes[0].endpoint}/health"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients * 2)) as session:

        async def get(s: aiohttp.ClientSession, index: int) -> int:
            async with s.get(url) as response:
                await response.read()
                return response.status

        await drive("GET /health (ceiling)", nodes, clients, min(1.0, seconds), get, session)
        return await drive("GET /health (ceiling)", nodes, clients, seconds, get, session)


async def counter_cost(url: str, seconds: float, writers: int = 32) -> list[str]:
    """Store-level sends with and without their event: the price of the event counter."""
    store = PostgresStore(url, max_size=writers)
    await store.open()
    lines = []
    try:
        now = int(time.time() * 1000)
        threads = []
        for _ in range(writers):
            uid = f"8:acs:bench_{secrets.token_hex(6)}"
            await store.create_user(UserRecord(uid, now))
            tid = f"19:bench{secrets.token_hex(8)}@thread.v2"
            await store.create_thread(ThreadRecord(tid, "bench", now, uid), [ParticipantRecord(uid)],
                                      [MessageDraft("topicUpdated", topic="bench")], Effects())
            threads.append((tid, uid))
        cases = [("send_message + event (counter)", True), ("send_message, no event", False)]
        for label, with_event in cases:
            effects: Effects[MessageRecord] = Effects(
                events=(lambda m: [("chatMessageReceived", b"{}")]) if with_event else None
            )
            latencies: list[float] = []
            deadline = time.perf_counter() + seconds
            began = time.perf_counter()
            await asyncio.gather(*(_write_until(store, t, u, effects, deadline, latencies) for t, u in threads))
            elapsed = time.perf_counter() - began
            lines.append(f"{label:<34} {writers:>3} {len(latencies) / elapsed:>9.0f} "
                         f"{percentile(latencies, 0.5) * 1000:>8.2f} {percentile(latencies, 0.99) * 1000:>8.2f}")
    finally:
        await store.close()
    return lines


async def _write_until(
    store: PostgresStore, tid: str, uid: str, effects: Effects[MessageRecord], deadline: float,
    latencies: list[float],
) -> None:
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        await store.send_message(tid, MessageDraft("text", sender_id=uid, content="x"), int(time.time() * 1000),
                                 effects)
        latencies.append(time.perf_counter() - began)


@contextlib.contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    name = f"threadline_bench_{secrets.token_hex(5)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def main_async(args: argparse.Namespace, database: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="threadline-bench-"))
    redis = f"{args.redis}?channel=threadline-bench:{secrets.token_hex(4)}"
    levels = (8, 32)
    print(f"{os.cpu_count()} CPUs; {args.seconds:g} s per case; client and servers share this machine.\n")
    print(HEADER)
    async with cluster(root, 1) as nodes:
        for c in levels:
            print((await health_case(nodes, c, args.seconds)).row(), flush=True)
        for c in levels:
            print((await send_case("send, SQLite, 1 node", nodes, c, args.seconds)).row(), flush=True)
    async with cluster(root, 1, "--database", database, "--events", redis) as nodes:
        for c in levels:
            print((await send_case("send, PostgreSQL, 1 node", nodes, c, args.seconds)).row(), flush=True)
    async with cluster(root, 2, "--database", database, "--events", redis) as nodes:
        for c in levels:
            print((await send_case("send, PostgreSQL, 2 nodes", nodes, c, args.seconds)).row(), flush=True)
        print("\nReal-time delivery, send through node A -> frame on a WebSocket (Redis hub), idle:")
        print(f"{'case':<34} {'messages':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for listen_on in (0, 1):
            print(await delivery_case(nodes, listen_on, args.messages), flush=True)
    print(f"\nEvent counter cost (store level, no HTTP), {args.seconds:g} s each:")
    print(f"{'case':<34} {'c':>3} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for writers in levels:
        for line in await counter_cost(database, args.seconds, writers):
            print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each case")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server (its maintenance database) to create the bench database on")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the Redis for the event hub")
    parser.add_argument("--messages", type=int, default=200, help="messages per real-time delivery case")
    args = parser.parse_args()
    with bench_database(args.database) as database:
        asyncio.run(main_async(args, database))


if __name__ == "__main__":
    main()
