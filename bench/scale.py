"""Scale-out benchmark (issues 5 and 12): every deployment's send throughput and cost, in one run.

Starts real ``threadline serve`` processes on 127.0.0.1 (plain HTTP, throttling off) and loads
them with ``wrk`` (C, one thread, a Lua script cycling through users and threads; Debian:
``apt-get install -y wrk``), so the load generator is not the bottleneck. Tokens come from the
identity API (HMAC-signed). In one run it reports:

* the raw-Starlette ceiling: a trivial POST -> 201 JSON app under uvicorn (httptools, uvloop), before
  and again right after the SQLite cases (the summary divides by the mean of the two);
* ``send_message`` at C=8 and C=32, all on one thread and spread over 32 threads (32 users, each
  its own thread), on: SQLite (one node), PostgreSQL one process, PostgreSQL ``--workers 2``, and
  two PostgreSQL nodes sharing the database and a Redis hub (two wrk processes, one per node);
* for each: requests/s, p50/p99 (wrk's), server CPU ms/op (the server processes and their
  workers, from /proc), PostgreSQL CPU ms/op (the backends connected to the bench database), the
  CPUs the whole machine had busy meanwhile (every process: wrk, servers, PostgreSQL, Redis) and the
  store's mean writes per commit (the nodes' ``/metrics``: SQLite's group commits, PostgreSQL's
  batch statements; not with ``--workers``, whose scrapes reach either worker);
* real-time delivery, send -> frame, same node and across nodes (Redis hub);
* the headline pairs at C=32 again, interleaved: the ceiling, SQLite and PostgreSQL one process up
  together, one case each in turn for ``--rounds`` rounds; the summary reads the ceiling and
  PostgreSQL/SQLite targets on the median of the rounds' ratios (``bench/scale_summary.py`` says why);
* store-level contention (``bench/scale_store.py``, its cases taking turns over 5 rounds): 32 writers
  on 32 threads vs on one thread, with and without events, on both engines; on PostgreSQL also
  unbatched (each send its own statement, past the send batching), the pair that shows the
  per-thread locking alone.

The machine is shared: read the figures as ratios within one run.

Usage::

    .venv/bin/python bench/scale.py [--seconds 5] [--database postgresql://postgres@127.0.0.1:5432/postgres]
                                    [--redis redis://127.0.0.1:6379/0] [--messages 200] [--rounds 3]

A database ``threadline_bench_<random>`` is created on that server and dropped at the end.
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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from scale_store import HEADER as STORE_HEADER
from scale_store import contention
from scale_summary import Figures, Rounds, summary
from scale_wrk import Ceiling, WrkResult, cpus_busy, machine_ticks, pids_cpu_ms, run_wrk, tree_cpu_ms

from threadline.identity import hmac as signing

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


HEADER = (f"{'case':<36} {'c':>3} {'threads':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'srv ms/op':>9} {'pg ms/op':>8} {'cpus':>5} {'errors':>6} {'sends/commit':>12}")


def row(name: str, c: int, threads: str, result: WrkResult, server_ms: float, pg_ms: float | None, busy: float,
        per_commit: float | None = None) -> str:
    ops = max(1, result.requests)
    pg = f"{pg_ms / ops:>8.2f}" if pg_ms is not None else f"{'-':>8}"
    batch = f"{per_commit:>12.1f}" if per_commit is not None else f"{'-':>12}"
    return (f"{name:<36} {c:>3} {threads:>7} {result.rps:>8.0f} {result.p50_ms:>7.2f} {result.p99_ms:>7.2f} "
            f"{server_ms / ops:>9.2f} {pg} {busy:>5.2f} {result.errors:>6} {batch}")


async def store_batches(nodes: list[Node]) -> tuple[float, float]:
    """The store's commits so far and the writes they carried, summed over the nodes' ``/metrics``."""
    commits = writes = 0.0
    async with aiohttp.ClientSession() as session:
        for node in nodes:
            async with session.get(f"{node.endpoint}/metrics") as answer:
                text = await answer.text()
            for name, value in re.findall(r"^threadline_store_(write_batches|batched_writes)_total\{[^}]*\} (\S+)$",
                                          text, re.M):
                if name == "write_batches":
                    commits += float(value)
                else:
                    writes += float(value)
    return commits, writes


async def targets(nodes: list[Node], spread: int) -> list[list[tuple[str, str]]]:
    """Per node, (path, token) of ``spread`` users each on its own thread (spread 1: one thread)."""
    per_node: list[list[tuple[str, str]]] = [[] for _ in nodes]
    async with aiohttp.ClientSession() as session:
        for i in range(spread):
            node = nodes[i % len(nodes)]
            _, token = await new_user(session, node, node.key)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            async with session.post(f"{node.endpoint}/chat/threads?{CHAT}", data=b'{"topic":"bench"}',
                                    headers=headers) as r:
                assert r.status == 201, await r.text()
                thread_id = (await r.json())["chatThread"]["id"]
            path = f"/chat/threads/{thread_id}/messages?{CHAT}"
            for k, own in enumerate(per_node):
                if k == i % len(nodes) or spread == 1:
                    own.append((path, token))
    return per_node


async def backend_pids(database: str | None) -> list[int]:
    """The PostgreSQL backends connected to the bench database (their CPU is PostgreSQL's cost)."""
    if database is None:
        return []
    name = database.rpartition("/")[2]
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


async def send_cases(label: str, nodes: list[Node], seconds: float, database: str | None, figures: Figures) -> None:
    for spread in (1, 32):
        per_node = await targets(nodes, spread)
        for c in (8, 32):
            shares = [max(1, c // len(nodes))] * len(nodes)
            plan = list(zip(nodes, per_node, shares, strict=True))
            await asyncio.gather(*(asyncio.to_thread(run_wrk, n.endpoint, t, k, 1) for n, t, k in plan))  # warm-up
            pids = await backend_pids(database)
            one_process = "workers" not in label  # a scrape reaches one worker: before and after may differ
            commits_before, writes_before = await store_batches(nodes)
            server_before = sum(tree_cpu_ms(n.process.pid) for n in nodes)
            pg_before, machine_before = pids_cpu_ms(pids), machine_ticks()
            results = await asyncio.gather(*(asyncio.to_thread(run_wrk, n.endpoint, t, k, seconds) for n, t, k in plan))
            busy = cpus_busy(machine_before, machine_ticks())
            server = sum(tree_cpu_ms(n.process.pid) for n in nodes) - server_before
            pg = pids_cpu_ms(pids) - pg_before if database else None
            commits, writes = await store_batches(nodes)
            per_commit = (writes - writes_before) / max(1.0, commits - commits_before) if one_process else None
            total = WrkResult(sum(r.rps for r in results), max(r.p50_ms for r in results),
                              max(r.p99_ms for r in results), sum(r.requests for r in results),
                              sum(r.errors for r in results))
            print(row(f"send, {label}", c, str(spread), total, server, pg, busy, per_commit), flush=True)
            ops = max(1, total.requests)
            figures[(label, c, spread)] = (total.rps, server / ops, pg / ops if pg is not None else None, busy)


async def ceiling_cases(seconds: float, figures: Figures, label: str) -> None:
    """The raw-Starlette ceiling at C=8 and C=32, recorded under ``label``.

    It runs before the SQLite cases and again right after them: on a shared machine the
    load of other work drifts, and the summary divides by the mean of the two.
    """
    ceiling = Ceiling(free_port())
    try:
        for c in (8, 32):
            before, machine_before = tree_cpu_ms(ceiling.process.pid), machine_ticks()
            result = await asyncio.to_thread(run_wrk, f"http://127.0.0.1:{ceiling.port}", [("/messages", "x")], c,
                                             seconds)
            busy = cpus_busy(machine_before, machine_ticks())
            server = tree_cpu_ms(ceiling.process.pid) - before
            name = "raw Starlette POST -> 201 (ceiling)" if label == "ceiling" else "the ceiling again"
            print(row(name, c, "-", result, server, None, busy), flush=True)
            figures[(label, c, 0)] = (result.rps, server / max(1, result.requests), None, busy)
    finally:
        ceiling.stop()


async def interleaved(root: Path, database: str, redis: str, seconds: float, rounds: int) -> Rounds:
    """The headline pairs at C=32 in turn: the ceiling, SQLite and PostgreSQL (one process) up together.

    Per spread (one thread, 32 threads), ``rounds`` rounds of one case each, every other round
    in reverse order, so that each round's three cases run within seconds of each other
    (``scale_summary``). Prints each round's rates.
    """
    got: Rounds = {}
    ceiling = Ceiling(free_port())
    try:
        async with cluster(root, 1) as sqlite, cluster(root, 1, "--database", database, "--events", redis) as pg:
            for spread in (1, 32):
                cases = [("ceiling", f"http://127.0.0.1:{ceiling.port}", [("/messages", "x")]),
                         ("SQLite", sqlite[0].endpoint, (await targets(sqlite, spread))[0]),
                         ("PostgreSQL", pg[0].endpoint, (await targets(pg, spread))[0])]
                for _, endpoint, paths in cases:
                    await asyncio.to_thread(run_wrk, endpoint, paths, 32, 1)  # warm-up
                for n in range(rounds):
                    for label, endpoint, paths in cases if n % 2 == 0 else cases[::-1]:
                        result = await asyncio.to_thread(run_wrk, endpoint, paths, 32, seconds)
                        got.setdefault((label, spread), []).append(result.rps)
                shown = "; ".join(f"{label} {'/'.join(f'{r:.0f}' for r in got[(label, spread)])}"
                                  for label, _, _ in cases)
                print(f"  {'one thread' if spread == 1 else '32 threads'}: {shown} req/s", flush=True)
    finally:
        ceiling.stop()
    return got


async def main_async(args: argparse.Namespace, database: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="threadline-bench-"))
    redis = f"{args.redis}?channel=threadline-bench:{secrets.token_hex(4)}"
    print(f"{os.cpu_count()} CPUs; {args.seconds:g} s per case; wrk, servers and PostgreSQL share this machine.\n")
    print(HEADER)
    figures: Figures = {}
    await ceiling_cases(args.seconds, figures, "ceiling")
    async with cluster(root, 1) as nodes:
        await send_cases("SQLite", nodes, args.seconds, None, figures)
    await ceiling_cases(args.seconds, figures, "ceiling, again")
    async with cluster(root, 1, "--database", database, "--events", redis) as nodes:
        await send_cases("PostgreSQL, 1 process", nodes, args.seconds, database, figures)
    async with cluster(root, 1, "--database", database, "--events", redis, "--workers", "2") as nodes:
        await send_cases("PostgreSQL, --workers 2", nodes, args.seconds, database, figures)
    async with cluster(root, 2, "--database", database, "--events", redis) as nodes:
        await send_cases("PostgreSQL, 2 nodes", nodes, args.seconds, database, figures)
        print("\nReal-time delivery, send through node A -> frame on a WebSocket (Redis hub), idle:")
        print(f"{'case':<34} {'messages':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for listen_on in (0, 1):
            print(await delivery_case(nodes, listen_on, args.messages), flush=True)
    rounds = None
    if args.rounds > 0:
        print(f"\nHeadline pairs at C=32, interleaved: {args.rounds} rounds of {args.seconds:g} s cases, "
              "ceiling / SQLite / PostgreSQL one process, every other round reversed:")
        rounds = await interleaved(root, database, redis, args.seconds, args.rounds)
    print(f"\nStore level (no HTTP), {args.seconds:g} s each:")
    print(STORE_HEADER)
    store_rows = []
    for engine, where in (("sqlite", str(root)), ("postgres", database)):
        for line in await contention(engine, where, args.seconds, rounds=5):
            print(line, flush=True)
            store_rows.append(line)
    print("\nIssue #12's targets, ratios from this run:")
    for line in summary(figures, store_rows, rounds):
        print(line)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each case")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server (its maintenance database) to create the bench database on")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the Redis for the event hub")
    parser.add_argument("--messages", type=int, default=200, help="messages per real-time delivery case")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of the headline pairs (0: none; the targets read the single cases)")
    args = parser.parse_args()
    with bench_database(args.database) as database:
        asyncio.run(main_async(args, database))


if __name__ == "__main__":
    main()
