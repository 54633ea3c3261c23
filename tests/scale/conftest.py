"""Fixtures for scale-out tests: a PostgreSQL database for the session, Redis, and
clusters of server processes that share both.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from threadline.store.postgres import PostgresStore

from ..conftest import RunningServer, launch
from ..pg import REDIS_URL, fresh_database, require_postgres, require_redis


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    require_postgres()
    with fresh_database("threadline_scale") as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    """The test Redis, with a channel of this test's own (clusters never hear each other)."""
    require_redis()
    return f"{REDIS_URL}?channel=threadline-test:{secrets.token_hex(6)}"


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(postgres_url, min_size=1, max_size=4)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@dataclass
class Cluster:
    """Server processes sharing one database, one Redis channel and one key."""

    database: str
    events: str
    access_key: str
    resource_id: str
    nodes: list[RunningServer] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        return ["--database", self.database, "--events", self.events,
                "--access-key", self.access_key, "--resource-id", self.resource_id]


@pytest.fixture
def cluster(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> Iterator[Callable[[int], Cluster]]:
    """Start ``n`` nodes on the session's database (each with its own data folder)."""
    started: list[RunningServer] = []

    def start(n: int) -> Cluster:
        made = Cluster(postgres_url, redis_url, base64.b64encode(secrets.token_bytes(32)).decode(),
                       str(uuid.uuid4()))
        for i in range(n):
            node = launch(tmp_path / f"node{len(started)}-{i}" / "data", *made.flags)
            started.append(node)
            made.nodes.append(node)
        return made

    yield start
    for node in started:
        node.stop()


class TcpProxy:
    """A loopback TCP proxy that can cut every connection, to play a Redis outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.up = True

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        self.up = False
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def resume(self) -> None:
        self.up = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
