"""Every store contract test runs on both engines: SQLite on a temporary file, and
PostgreSQL on a database created for this session (emptied before each test).

``engine.open()`` opens one more store on the same database, to play a second
node in the concurrency tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from threadline.store.base import Store
from threadline.store.postgres import PostgresStore
from threadline.store.sqlite import SqliteStore

from ..pg import fresh_database, require_postgres

_TABLES = (
    "users, threads, participants, messages, read_receipts, idempotency, events, images, image_blobs, "
    "webhook_subscriptions, webhook_deadletters"
)


class Engine:
    """Opens stores of one engine on one database and closes them at the end."""

    def __init__(self, name: str, make: Callable[[], Store], url: str) -> None:
        self.name = name
        self.url = url
        self._make = make
        self._opened: list[Store] = []

    async def open(self) -> Store:
        """Open another store (another "node") on the same database."""
        store = self._make()
        await store.open()
        self._opened.append(store)
        return store

    @property
    def first(self) -> Store:
        """The store opened first."""
        return self._opened[0]

    async def close(self) -> None:
        for store in reversed(self._opened):
            await store.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    require_postgres()
    with fresh_database() as url:
        yield url


async def _empty(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY; UPDATE event_partitions SET value = 0, pruned = id")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    """The engine under test, with an empty database."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        made = Engine("sqlite", lambda: SqliteStore(path), str(path))
    else:
        url = request.getfixturevalue("postgres_url")
        made = Engine("postgres", lambda: PostgresStore(url), url)
    await made.open()  # applies the migrations
    if made.name == "postgres":
        await _empty(made.url)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def store(engine: Engine) -> Store:
    """The first store opened on the engine's database."""
    return engine.first
