"""The real app in this process, on a real store, for tests that send thousands of requests.

:class:`InProcessServer` opens the store of an engine (a SQLite file, or a
throwaway PostgreSQL database), builds the app with :func:`create_app` and
runs it on an event loop of its own thread; tests call it through
``httpx.ASGITransport`` with :meth:`InProcessServer.request`, synchronously, so
hypothesis can drive it. Nothing is mocked: the same routes, services and
store serve the request as under uvicorn, minus the sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from threadline.identity.hmac import sign
from threadline.server.app import create_app, open_hub, open_store
from threadline.server.settings import Settings

from ..pg import fresh_database, require_postgres

T = TypeVar("T")

CHAT = "2025-03-15"  # the latest: its bodies carry the most fields
IDENTITY = "2023-10-01"
HOST = "threadline.test"


class InProcessServer:
    """The app on its own loop thread; requests are sent synchronously.

    Args:
        data_dir: the data folder (keys; the SQLite file when ``database`` is None).
        database: a PostgreSQL URL, or None for SQLite.
    """

    def __init__(self, data_dir: Path, database: str | None) -> None:
        self.settings = Settings(
            data_dir=data_dir, http_port=-1, https_port=-1, database=database, throttle="off"
        ).prepared()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._store = open_store(self.settings)
        self.run(self._store.open())
        self._hub = open_hub(self.settings, self._store)
        self.run(self._hub.start())
        app = create_app(self.settings, self._store, self._hub)
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{HOST}")

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the app's loop; a request that hangs fails after ``timeout`` seconds."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self._client.aclose())
        self.run(self._hub.stop())
        self.run(self._store.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def request(
        self, method: str, target: str, *, body: bytes = b"", headers: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Send one request; ``target`` is the path and query exactly as put on the wire."""
        return self.run(self._client.request(method, target, content=body, headers=headers or {}))

    def signed_headers(self, method: str, target: str, body: bytes) -> dict[str, Any]:
        """The HMAC headers of an identity request, as the official SDKs sign it."""
        headers: dict[str, Any] = sign(self.settings.key_bytes, method, target, HOST, body, time.time())
        headers["Content-Type"] = "application/json"
        return headers

    def identity(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        """A correctly signed identity request."""
        target = f"{path}?api-version={IDENTITY}"
        body = json.dumps(payload).encode() if payload is not None else b""
        return self.request(method, target, body=body, headers=self.signed_headers(method, target, body))

    def new_user(self) -> tuple[str, str]:
        """Create an identity with a chat token; return its id and token."""
        made = self.identity("POST", "/identities", {"createTokenWithScopes": ["chat"]})
        assert made.status_code == 201, made.text
        return made.json()["identity"]["id"], made.json()["accessToken"]["token"]

    def chat(self, token: str, method: str, path: str, payload: Any = None) -> httpx.Response:
        """A chat request with a bearer token."""
        body = json.dumps(payload).encode() if payload is not None else b""
        return self.request(method, f"{path}?api-version={CHAT}", body=body,
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def q(value: str) -> str:
    """Percent-encode a path segment."""
    return quote(value, safe="")


@contextlib.contextmanager
def in_process(engine: str, data_dir: Path) -> Iterator[InProcessServer]:
    """An :class:`InProcessServer` on ``sqlite`` or ``postgres`` (a database of its own, dropped after)."""
    if engine == "sqlite":
        server = InProcessServer(data_dir, None)
        try:
            yield server
        finally:
            server.close()
        return
    require_postgres()
    with fresh_database("threadline_inproc") as url:
        server = InProcessServer(data_dir, url)
        try:
            yield server
        finally:
            server.close()
