"""CPU per send with no sockets: the app (SQLite) called in-process, as an ASGI server would call it.

What a send costs in Threadline's own code, from the first ASGI layer to the store's commit,
without HTTP parsing or socket writes (``bench/scale.py`` measures those end to end). Waves of
``--concurrency`` sends run together, as concurrent requests on one event loop do; the figure
is the process CPU time per send (all threads), which the machine's other load disturbs less
than wall time. Compare two trees by running each several times, alternately, and taking the
minimum of each.

    cd bench && PYTHONPATH=../src ../.venv/bin/python inprocess_send.py [--sends 6400] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from threadline.server.app import running
from threadline.server.settings import Settings

API = "api-version=2024-03-07"


async def call(app: Any, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request through the app; returns the status and body it sent."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": API.encode(), "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080), "state": {},
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the app never reads past the body
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"]), bytes(sent[1].get("body", b"")) if len(sent) > 1 else b""


async def main_async(sends: int, concurrency: int) -> None:
    settings = replace(Settings.from_env(), data_dir=Path(tempfile.mkdtemp()), throttle="off").prepared()
    async with running(settings) as app:
        _, token = await app.state.identity.create(["chat"], None)
        headers = {"authorization": f"Bearer {token.token}", "content-type": "application/json", "host": "bench"}
        status, body = await call(app, "POST", "/chat/threads", b'{"topic":"bench"}', headers)
        assert status == 201, body
        path = f"/chat/threads/{json.loads(body)['chatThread']['id']}/messages"
        message = b'{"content":"hello there","type":"text"}'

        async def one() -> None:
            status, answer = await call(app, "POST", path, message, headers)
            assert status == 201, answer

        async def wave() -> None:
            await asyncio.gather(*(one() for _ in range(concurrency)))

        for _ in range(50):  # warm the paths and the caches
            await wave()
        waves = max(1, sends // concurrency)
        began, cpu = time.perf_counter(), time.process_time()
        for _ in range(waves):
            await wave()
        wall, used = time.perf_counter() - began, time.process_time() - cpu
        done = waves * concurrency
        print(f"{done} sends, {concurrency} at a time: {done / wall:.0f}/s wall, "
              f"{1e6 * used / done:.1f} us CPU per send")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=6400, help="sends measured (after a warm-up)")
    parser.add_argument("--concurrency", type=int, default=32, help="sends made together")
    args = parser.parse_args()
    asyncio.run(main_async(args.sends, args.concurrency))


if __name__ == "__main__":
    main()
