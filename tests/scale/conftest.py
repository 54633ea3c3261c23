"""Fixtures for scale-out tests: a PostgreSQL database for the session, Redis, and
clusters of server processes that share both.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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


def _channel_url() -> str:
    require_redis()
    return f"{REDIS_URL}?channel=threadline-test:{secrets.token_hex(6)}"


@pytest.fixture
def redis_url() -> str:
    """The test Redis, with a channel of this test's own (clusters never hear each other)."""
    return _channel_url()


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


class Launcher:
    """Starts clusters (nodes in parallel, each with its own data folder) and stops them all."""

    def __init__(self, database: str, root: Path) -> None:
        self.database = database
        self.root = root
        self.started: list[RunningServer] = []

    def __call__(self, n: int, *extra: str) -> Cluster:
        made = Cluster(self.database, _channel_url(), base64.b64encode(secrets.token_bytes(32)).decode(),
                       str(uuid.uuid4()))
        homes: list[Path] = []
        for _ in range(n):
            home = self.root / f"node{len(self.started) + len(homes)}"
            home.mkdir()
            homes.append(home)
        with ThreadPoolExecutor(n) as pool:
            # Throttling is per node and beside the point here: these tests load one thread on purpose.
            nodes = list(pool.map(
                lambda home: launch(home / "data", *made.flags, *extra, env={"THREADLINE_THROTTLE": "off"}), homes
            ))
        self.started += nodes
        made.nodes += nodes
        return made

    def stop(self) -> None:
        """Kill every node (as ``start_server`` does): the state is all in PostgreSQL."""
        for node in self.started:
            node.stop(signal.SIGKILL)


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Start clusters of ``n`` nodes on the session's database, for one test."""
    launcher = Launcher(postgres_url, tmp_path)
    yield launcher
    launcher.stop()


@pytest.fixture(scope="module")
def trio(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three nodes shared by a module's tests (each test makes its own users and threads)."""
    launcher = Launcher(postgres_url, tmp_path_factory.mktemp("trio"))
    yield launcher(3)
    launcher.stop()


class TcpProxy:
    """A loopback TCP proxy that can cut every connection, to play a Redis outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.up = True
        self.held = False

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
                    while self.held:  # a silent link: connected, but nothing gets through
                        await asyncio.sleep(0.02)
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

    def hold(self, held: bool = True) -> None:
        """Stop (or, with False, restart) forwarding without closing anything."""
        self.held = held

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
