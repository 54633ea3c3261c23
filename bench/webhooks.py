#!/usr/bin/env python3
"""Webhook delivery: commit -> receiver latency (idle and under load) and batched throughput, in one run.

A Threadline server (SQLite by default, ``--database postgresql://...`` for PostgreSQL) and a
Starlette receiver under uvicorn run on loopback. Three phases:

1. **idle**: a probe thread sends one message every ``--probe-interval`` s; a batch-1 subscription
   filtered to the probe thread receives them. Latency = receipt time - send start (the send's
   commit happens in between, so this bounds commit -> receiver from above).
2. **load**: the same probe while ``--load-clients`` clients send as fast as they can, up to
   ``--load-rate`` sends/s in total, to other threads (the target is 1,000/s; what this machine
   reached is reported).
3. **throughput**: ``--burst`` messages are sent first; then a subscription with ``--batch``
   events per POST is rewound over them (``:replay`` with ``since``); events/s = burst / (last
   receipt - first receipt).

Usage::

    python bench/webhooks.py                      # SQLite, default knobs
    python bench/webhooks.py --database postgresql://postgres@127.0.0.1/bench --seconds 10

Prints a JSON report. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
from durability import CHAT_VERSION, Server, create_thread, free_port, new_user

from threadline.identity.hmac import sign

ADMIN_VERSION = "2025-03-15"


class Receiver:
    """Records the receipt time of each message body."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.posts = 0

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = json.loads(await request.body())
            now = time.perf_counter()
            if body and body[0].get("eventType") == "Microsoft.EventGrid.SubscriptionValidationEvent":
                return JSONResponse({"validationResponse": body[0]["data"]["validationCode"]})
            with self.lock:
                self.posts += 1
                for event in body:
                    self.seen.setdefault(event["data"]["messageBody"], now)
            return Response(status_code=200)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])


def serve_receiver(receiver: Receiver) -> tuple[str, uvicorn.Server]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(receiver.app(), log_level="warning", lifespan="off"))
    threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


def admin(url: str, key: bytes, method: str, path: str, body: Any) -> Any:
    target = f"{path}?api-version={ADMIN_VERSION}"
    raw = json.dumps(body).encode()
    headers = sign(key, method, target, url.split("://", 1)[1], raw, time.time())
    headers["Content-Type"] = "application/json"
    answer = requests.request(method, url + target, data=raw, headers=headers, timeout=10)
    answer.raise_for_status()
    return answer.json()


def subscribe_and_wait(url: str, key: bytes, hook: str, **options: Any) -> str:
    sub = admin(url, key, "POST", "/admin/webhooks", {"url": hook, "events": ["ChatMessageReceivedInThread"],
                                                      **options})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if admin(url, key, "GET", f"/admin/webhooks/{sub['id']}", None)["status"] == "active":
            return str(sub["id"])
        time.sleep(0.05)
    raise RuntimeError("the subscription did not become active")


def send(session: requests.Session, url: str, token: str, thread_id: str, body: str) -> None:
    response = session.post(
        f"{url}/chat/threads/{quote(thread_id, safe='')}/messages?api-version={CHAT_VERSION}",
        json={"content": body}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {"count": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


def probe(url: str, token: str, thread_id: str, rec: Receiver, count: int, interval: float, tag: str) -> list[float]:
    session = requests.Session()
    started: dict[str, float] = {}
    for i in range(count):
        body = f"{tag}-{i}"
        started[body] = time.perf_counter()
        send(session, url, token, thread_id, body)
        time.sleep(interval)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(b in rec.seen for b in started):
        time.sleep(0.02)
    return [rec.seen[b] - t for b, t in started.items() if b in rec.seen]


def load(url: str, token: str, threads: list[str], rate: float, seconds: float, stop: threading.Event,
         counter: list[int]) -> None:
    session = requests.Session()
    interval = 1.0 / rate if rate > 0 else 0.0
    deadline = time.monotonic() + seconds
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        begin = time.monotonic()
        send(session, url, token, threads[i % len(threads)], f"load-{threading.get_ident()}-{i}")
        counter[0] += 1
        i += 1
        time.sleep(max(0.0, interval - (time.monotonic() - begin)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="postgresql://... (default: SQLite in a temporary folder)")
    parser.add_argument("--poll-ms", type=int, default=250, help="THREADLINE_WEBHOOK_POLL_MS of the server")
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--probe-interval", type=float, default=0.05)
    parser.add_argument("--load-clients", type=int, default=8)
    parser.add_argument("--load-rate", type=float, default=1000.0, help="total sends/s aimed at")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the load phase")
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)

    rec = Receiver()
    hook, receiver_server = serve_receiver(rec)
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        extra = ["--no-limits"] + (["--database", args.database] if args.database else [])
        env = {"THREADLINE_WEBHOOK_ALLOW": "127.0.0.1/32", "THREADLINE_WEBHOOK_POLL_MS": str(args.poll_ms)}
        server = Server(data, free_port(), extra, env)
        server.start()
        try:
            key = base64.b64decode((data / "access-key").read_text().strip())
            user, token = new_user(server.url, key)
            probe_thread = create_thread(server.url, token, [user])
            others = [create_thread(server.url, token, [user]) for _ in range(16)]
            subscribe_and_wait(server.url, key, hook + "/probe", subjectPrefix=f"thread/{probe_thread}/")
            idle = probe(server.url, token, probe_thread, rec, args.probes, args.probe_interval, "idle")

            stop, counter = threading.Event(), [0]
            per_client = args.load_rate / max(1, args.load_clients)
            workers = [threading.Thread(target=load, args=(server.url, token, others, per_client, args.seconds,
                                                           stop, counter), daemon=True)
                       for _ in range(args.load_clients)]
            began = time.monotonic()
            for w in workers:
                w.start()
            count = max(1, int(args.seconds / max(args.probe_interval, 0.05)) - 4)
            loaded = probe(server.url, token, probe_thread, rec, count, args.probe_interval, "loaded")
            stop.set()
            for w in workers:
                w.join(60)
            load_rate = counter[0] / (time.monotonic() - began)

            # Throughput: a backlog of --burst events, replayed (rewound) into a fresh batched subscription.
            burst_thread = create_thread(server.url, token, [user])
            session = requests.Session()
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
            for i in range(args.burst):
                send(session, server.url, token, burst_thread, f"burst-{i}")
            sub_id = subscribe_and_wait(server.url, key, hook + "/burst", subjectPrefix=f"thread/{burst_thread}/",
                                        batchSize=args.batch)
            posts_before = rec.posts
            first = time.perf_counter()
            admin(server.url, key, "POST", f"/admin/webhooks/{sub_id}/:replay", {"since": since})
            deadline = time.monotonic() + 120
            names = [f"burst-{i}" for i in range(args.burst)]
            while time.monotonic() < deadline and not all(n in rec.seen for n in names):
                time.sleep(0.05)
            got = [rec.seen[n] for n in names if n in rec.seen]
            # From the first receipt: the rewind hands the subscription to a fresh worker first (<= 2 s).
            throughput = (len(got) - 1) / (max(got) - min(got)) if len(got) > 1 else 0.0
            startup = (min(got) - first) if got else 0.0
            report = {
                "engine": "postgres" if args.database else "sqlite", "poll_ms": args.poll_ms,
                "idle": percentiles(idle),
                "under_load": {**percentiles(loaded), "sends_per_s": round(load_rate, 1),
                               "target_sends_per_s": args.load_rate},
                "throughput": {"events": len(got), "batch": args.batch, "events_per_s": round(throughput, 1),
                               "first_after_replay_s": round(startup, 2),
                               "posts": rec.posts - posts_before},
            }
            print(json.dumps(report, indent=2))
        finally:
            server.stop()
            receiver_server.should_exit = True
    return 0


if __name__ == "__main__":
    sys.exit(main())
