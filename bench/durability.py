#!/usr/bin/env python3
"""Durability under SIGKILL: acknowledged messages survive crashes exactly once, in order.

Many client threads send messages over raw HTTP (bearer tokens, each send
carrying a ``repeatability-request-id``) while the server process is killed
with SIGKILL at random moments and restarted. A client whose send fails
(connection refused or reset, 5xx) retries the *same* message with the *same*
repeatability id until it is acknowledged, as an SDK would, and only then sends
its next one.

Afterwards every thread is read back page by page and checked:

* every acknowledged send (201) is present exactly once, under the id the
  server acknowledged, with its content intact;
* each client's messages have increasing sequence ids in send order;
* no content appears twice (no duplicate from a retried send).

Usage::

    python bench/durability.py                       # 20 kills, 8 clients
    python bench/durability.py --kills 3 --json      # the CI variant (tests/reliability)
    python bench/durability.py --kills 0 --messages 250    # throughput only (8 x 250 sends)
    python bench/durability.py --kills 0 --messages 250 --throttle-scale 1000  # ... with throttling on
    python bench/durability.py --kills 5 --database postgresql://postgres@127.0.0.1/dur   # on PostgreSQL

Exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from threadline.identity.hmac import sign

CHAT_VERSION = "2024-03-07"
IDENTITY_VERSION = "2023-10-01"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A ``threadline serve`` subprocess on a fixed port, killable and restartable.

    Args:
        data_dir: the data folder (kept across restarts).
        port: the HTTP port (kept across restarts).
        extra: extra ``serve`` flags.
        env: extra environment variables.
    """

    def __init__(self, data_dir: Path, port: int, extra: list[str], env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.extra = extra
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = (data_dir.parent / "server.log").open("ab")
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 30) -> None:
        """Start the process and wait until ``/health`` answers.

        Raises:
            RuntimeError: it did not become healthy in time.
        """
        cmd = [sys.executable, "-m", "threadline", "serve", "--data", str(self.data_dir), "--http-port",
               str(self.port), "--https-port", "-1", *self.extra]
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM the process (SIGKILL after 20 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def identity_call(url: str, key: bytes, method: str, path: str, body: dict[str, Any] | None) -> Any:
    """One HMAC-signed identity request; returns the JSON answer (None for no body).

    Raises:
        requests.HTTPError: a non-success status.
    """
    target = f"{path}?api-version={IDENTITY_VERSION}"
    raw = json.dumps(body).encode() if body is not None else b""
    host = url.split("://", 1)[1]
    headers = sign(key, method, target, host, raw, time.time())
    headers["Content-Type"] = "application/json"
    response = requests.request(method, url + target, data=raw, headers=headers, timeout=10)
    response.raise_for_status()
    return response.json() if response.content else None


def new_user(url: str, key: bytes) -> tuple[str, str]:
    """Create an identity with a chat token; return (user id, token)."""
    made = identity_call(url, key, "POST", "/identities", {"createTokenWithScopes": ["chat"]})
    return made["identity"]["id"], made["accessToken"]["token"]


def create_thread(url: str, token: str, members: list[str]) -> str:
    """Create a thread holding ``members``; return its id."""
    body: dict[str, Any] = {
        "topic": "durability",
        "participants": [{"communicationIdentifier": {"rawId": m, "communicationUser": {"id": m}}} for m in members],
    }
    response = requests.post(
        f"{url}/chat/threads?api-version={CHAT_VERSION}", json=body,
        headers={"Authorization": f"Bearer {token}"}, timeout=10,
    )
    response.raise_for_status()
    thread_id: str = response.json()["chatThread"]["id"]
    return thread_id


def list_all_messages(url: str, token: str, thread_id: str) -> list[dict[str, Any]]:
    """Every message of a thread, following nextLinks (newest first, as served)."""
    items: list[dict[str, Any]] = []
    link: str | None = f"/chat/threads/{quote(thread_id, safe='')}/messages?maxPageSize=200&api-version={CHAT_VERSION}"
    while link:
        response = requests.get(url + link, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        response.raise_for_status()
        page = response.json()
        items += page["value"]
        link = page.get("nextLink")
    return items


@dataclass
class Ack:
    """One acknowledged send."""

    client: int
    n: int
    message_id: str
    content: str


@dataclass
class Client:
    """A sending client: one user in one thread, sending ``<client>:<n>:<padding>`` messages."""

    index: int
    user_id: str
    token: str
    thread_id: str
    acks: list[Ack] = field(default_factory=list)
    attempts: int = 0
    failures: int = 0

    def content(self, n: int) -> str:
        """The content of message ``n``: its identity plus non-ASCII padding to check it stays intact."""
        return f"{self.index}:{n}:" + "żółw-🐢-" * (1 + n % 5)

    def run(self, url: str, stop: threading.Event, limit: int | None, give_up_after: float) -> None:
        """Send until ``stop`` is set (or ``limit`` messages are acknowledged).

        Each message is retried with the same repeatability id until acknowledged;
        a message unacknowledged for ``give_up_after`` seconds stops the client.
        """
        session = requests.Session()
        path = f"{url}/chat/threads/{quote(self.thread_id, safe='')}/messages?api-version={CHAT_VERSION}"
        n = 0
        while not stop.is_set() and (limit is None or n < limit):
            content = self.content(n)
            key = f"dur-{self.index}-{n}-{base64.b32encode(os.urandom(5)).decode()}"
            first = time.monotonic()
            while True:
                self.attempts += 1
                try:
                    response = session.post(
                        path, json={"content": content, "type": "text"}, timeout=10,
                        headers={"Authorization": f"Bearer {self.token}", "repeatability-request-id": key},
                    )
                except requests.RequestException:
                    response = None
                    session.close()
                    session = requests.Session()
                if response is not None and response.status_code == 201:
                    self.acks.append(Ack(self.index, n, response.json()["id"], content))
                    break
                if response is not None and response.status_code < 500 and response.status_code != 429:
                    raise RuntimeError(f"client {self.index}: unexpected {response.status_code} {response.text}")
                self.failures += 1
                if time.monotonic() - first > give_up_after:
                    return
                time.sleep(0.02)
            n += 1


@dataclass
class Report:
    """What a run found."""

    kills: int = 0
    kills_survived: int = 0
    clients: int = 0
    acknowledged: int = 0
    checked: int = 0
    missing: int = 0
    duplicates: int = 0
    corrupted: int = 0
    out_of_order: int = 0
    send_attempts: int = 0
    failed_attempts: int = 0
    seconds: float = 0.0
    sends_per_second: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every check held."""
        return (self.kills_survived == self.kills and self.acknowledged > 0 and self.checked == self.acknowledged
                and not (self.missing or self.duplicates or self.corrupted or self.out_of_order or self.problems))


def verify(url: str, clients: list[Client], report: Report) -> None:
    """Read every thread back and check the acknowledged sends (see the module docstring)."""
    threads: dict[str, Client] = {}
    for client in clients:
        threads.setdefault(client.thread_id, client)
    by_content: dict[str, list[dict[str, Any]]] = {}
    for thread_id, reader in threads.items():
        for message in list_all_messages(url, reader.token, thread_id):
            if message["type"] == "text":
                by_content.setdefault(message["content"]["message"], []).append(message)
    counts = Counter({content: len(found) for content, found in by_content.items()})
    report.duplicates = sum(c - 1 for c in counts.values() if c > 1)
    for client in clients:
        last_seq = 0
        for ack in client.acks:
            found = by_content.get(ack.content, [])
            if not found:
                report.missing += 1
                report.problems.append(f"missing: client {ack.client} message {ack.n} ({ack.message_id})")
                continue
            report.checked += 1
            message = found[0]
            if message["id"] != ack.message_id or message["content"]["message"] != ack.content:
                report.corrupted += 1
                report.problems.append(f"changed: client {ack.client} message {ack.n}: {message['id']}")
            seq = int(message["sequenceId"])
            if seq <= last_seq:
                report.out_of_order += 1
                report.problems.append(f"order: client {ack.client} message {ack.n} has seq {seq} <= {last_seq}")
            last_seq = seq


def run(
    *, kills: int, clients: int, threads: int, messages: int | None, seed: int, min_gap: float, max_gap: float,
    extra: list[str], work_dir: Path, throttle_scale: float | None = None,
) -> Report:
    """Run the scenario and return its report (see the module docstring).

    Args:
        kills: how many times to SIGKILL and restart the server (0: a plain throughput run).
        clients: concurrent sending clients.
        threads: threads the clients share (clients are dealt round-robin).
        messages: per-client message count to stop at (None: send until the kills are done).
        seed: seeds the kill timing.
        min_gap: shortest time between a restart and the next kill, in seconds.
        max_gap: longest such time.
        extra: extra ``serve`` flags.
        work_dir: where the data folder and server log go.
        throttle_scale: serve with ACS limits and the ACS rates times this factor
            (``THREADLINE_THROTTLE``); None serves with ``--no-limits``.

    Returns:
        The report; ``report.ok`` tells whether every check held.
    """
    rng = random.Random(seed)
    report = Report(kills=kills, clients=clients)
    data = work_dir / "data"
    if throttle_scale is None:
        server = Server(data, free_port(), ["--no-limits", *extra])
    else:
        server = Server(data, free_port(), extra, {"THREADLINE_THROTTLE": str(throttle_scale)})
    server.start()
    try:
        key = base64.b64decode((data / "access-key").read_text().strip())
        users = [new_user(server.url, key) for _ in range(clients)]
        owner_ids = [u for u, _ in users]
        thread_ids = [
            create_thread(server.url, users[t][1], owner_ids[t::threads]) for t in range(min(threads, clients))
        ]
        crew = [Client(i, u, tok, thread_ids[i % len(thread_ids)]) for i, (u, tok) in enumerate(users)]
        stop = threading.Event()
        workers = [
            threading.Thread(target=c.run, args=(server.url, stop, messages, 60.0), daemon=True) for c in crew
        ]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        for _ in range(kills):
            time.sleep(rng.uniform(min_gap, max_gap))
            server.kill()
            time.sleep(rng.uniform(0.0, 0.3))  # clients see refused connections meanwhile
            server.start()
            report.kills_survived += 1
        if kills:
            time.sleep(rng.uniform(min_gap, max_gap))
            stop.set()
        for worker in workers:
            worker.join(120)
        report.seconds = round(time.monotonic() - started, 2)
        if any(w.is_alive() for w in workers):
            report.problems.append("a client did not finish")
        report.acknowledged = sum(len(c.acks) for c in crew)
        report.send_attempts = sum(c.attempts for c in crew)
        report.failed_attempts = sum(c.failures for c in crew)
        report.sends_per_second = round(report.acknowledged / report.seconds, 1) if report.seconds else 0.0
        # A final restart proves the data is on disk, not just in the last process.
        server.kill()
        server.start()
        verify(server.url, crew, report)
    finally:
        server.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line entry; prints the report and returns 0 when every check held."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--messages", type=int, help="per-client count (default: until the kills are done)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-gap", type=float, default=0.3)
    parser.add_argument("--max-gap", type=float, default=1.5)
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default="NORMAL")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--throttle-scale", type=float,
                        help="serve with throttling on, ACS rates times this factor (default: --no-limits)")
    parser.add_argument("--work-dir", type=Path, help="keep the data folder and log here")
    parser.add_argument("--database", help="a PostgreSQL URL (an empty database) instead of SQLite")
    args = parser.parse_args(argv)
    if args.kills == 0 and args.messages is None:
        parser.error("--kills 0 needs --messages")
    extra = ["--database", args.database] if args.database else ["--synchronous", args.synchronous]
    with tempfile.TemporaryDirectory(prefix="threadline-durability-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        report = run(
            kills=args.kills, clients=args.clients, threads=args.threads, messages=args.messages, seed=args.seed,
            min_gap=args.min_gap, max_gap=args.max_gap, extra=extra, work_dir=work,
            throttle_scale=args.throttle_scale,
        )
    if args.json:
        print(json.dumps({**asdict(report), "ok": report.ok}))
    else:
        print(f"kills survived:        {report.kills_survived}/{report.kills}")
        print(f"clients:               {report.clients}")
        print(f"messages acknowledged: {report.acknowledged}")
        print(f"messages checked:      {report.checked}")
        print(f"missing:               {report.missing}")
        print(f"duplicates:            {report.duplicates}")
        print(f"changed content:       {report.corrupted}")
        print(f"out of order:          {report.out_of_order}")
        print(f"send attempts:         {report.send_attempts} ({report.failed_attempts} failed and retried)")
        print(f"elapsed:               {report.seconds} s ({report.sends_per_second} acknowledged sends/s)")
        for problem in report.problems[:20]:
            print(f"  {problem}")
        print("OK" if report.ok else "FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
