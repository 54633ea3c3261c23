"""A real webhook receiver for the tests: a Starlette app under uvicorn on loopback, in a thread.

It answers the two handshakes as Event Grid clients do (echoing ``validationResponse``; granting
``WebHook-Allowed-Origin``) unless told otherwise, records every request, and answers deliveries
as its ``plan`` says (a status, or a delay before answering), so tests can make it fail, hang,
answer slowly and recover.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> list[Any]:
        """The events of a body: an array, or one CloudEvents object (no batching)."""
        value = self.json
        return value if isinstance(value, list) else [value]


@dataclass
class Receiver:
    """Records requests; ``plan`` pops one action per delivery (``int`` status or ``("sleep", s)``)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    plan: list[Any] = field(default_factory=list)
    echo_validation: bool = True
    grant_origin: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliveries(self, path: str | None = None) -> list[Received]:
        with self.lock:
            found = [r for r in self.requests
                     if r.method == "POST" and r.headers.get("aeg-event-type") == "Notification"
                     and (path is None or r.path == path)]
        return sorted(found, key=lambda r: r.at)  # by arrival, not by answer

    def events(self, path: str | None = None, *, ok_only: bool = True) -> list[dict[str, Any]]:
        """Every event of every delivery (answered 2xx when ``ok_only``), in arrival order."""
        out: list[dict[str, Any]] = []
        for r in self.deliveries(path):
            if ok_only and r.headers.get("x-test-status", "200") != "200":
                continue
            out.extend(r.events)
        return out

    def wait(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.02)
        raise AssertionError(f"condition not met in {timeout}s; {len(self.requests)} requests received")


def _app(rec: Receiver) -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        entry = Received(request.method, request.url.path, headers, body, time.monotonic())
        if request.method == "OPTIONS":
            with rec.lock:
                rec.requests.append(entry)
            if not rec.grant_origin:
                return Response(status_code=200)
            origin = headers.get("webhook-request-origin", "")
            return Response(status_code=200, headers={"WebHook-Allowed-Origin": origin})
        if headers.get("aeg-event-type") == "SubscriptionValidation":
            with rec.lock:
                rec.requests.append(entry)
            if not rec.echo_validation:
                return Response(status_code=200)
            code = json.loads(body)[0]["data"]["validationCode"]
            return JSONResponse({"validationResponse": code})
        with rec.lock:
            action = rec.plan.pop(0) if rec.plan else 200
        status = 200
        if action == "endless":  # a 200 whose body trickles on for 10 s: only a size cap makes it quick
            async def trickle() -> Any:
                for _ in range(1000):
                    yield b"x" * 16384
                    await asyncio.sleep(0.01)

            entry.headers["x-test-status"] = "200"
            with rec.lock:
                rec.requests.append(entry)
            return StreamingResponse(trickle(), status_code=200)
        if isinstance(action, tuple) and action[0] == "sleep":
            await asyncio.sleep(action[1])
            status = action[2] if len(action) > 2 else 200
        elif isinstance(action, int):
            status = action
        # Past the servers' 2 s test timeout, Threadline has given up on this answer.
        late = isinstance(action, tuple) and action[1] >= 2.0
        entry.headers["x-test-status"] = "late" if late else str(status)
        with rec.lock:
            rec.requests.append(entry)
        if 300 <= status < 400:
            return Response(status_code=status, headers={"Location": "/redirected"})
        return Response(status_code=status)

    return Starlette(routes=[Route("/{path:path}", hook, methods=["POST", "OPTIONS", "GET"])])


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    """Serve a :class:`Receiver` on a free loopback port for the block."""
    rec = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(_app(rec), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    rec.url = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
