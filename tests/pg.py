"""PostgreSQL and Redis for tests: reachability, skip-or-fail, throwaway databases.

Tests that need a service skip with the reason when it is down, unless
``THREADLINE_REQUIRE_SERVICES=1`` (CI sets it): then they fail, so a broken
service can never turn a CI run green by skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn, TypeVar

import asyncpg
import pytest
import redis

__all__ = [
    "ADMIN_URL",
    "REDIS_URL",
    "database_flags",
    "database_url",
    "fresh_database",
    "postgres_problem",
    "redis_problem",
    "require_postgres",
    "require_redis",
    "services_required",
]

#: A superuser connection to the server's maintenance database.
ADMIN_URL = os.environ.get("THREADLINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
#: The Redis the scale-out tests share events through.
REDIS_URL = os.environ.get("THREADLINE_TEST_REDIS", "redis://127.0.0.1:6379/0")


T = TypeVar("T")


def _blocking(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end on a loop of its own, even when called from a running loop."""

    async def main() -> T:
        return await work()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def services_required() -> bool:
    """True when missing services must fail the tests rather than skip them."""
    return os.environ.get("THREADLINE_REQUIRE_SERVICES", "") in ("1", "true", "yes")


def _unavailable(reason: str) -> NoReturn:
    if services_required():
        pytest.fail(f"{reason} (THREADLINE_REQUIRE_SERVICES=1, so this fails instead of skipping)")
    pytest.skip(reason)


def postgres_problem() -> str | None:
    """Why PostgreSQL at :data:`ADMIN_URL` cannot be used, or None when it can."""

    async def probe() -> None:
        conn = await asyncpg.connect(ADMIN_URL, timeout=3)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    try:
        _blocking(probe)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"PostgreSQL is not reachable at {ADMIN_URL}: {exc}"
    return None


def redis_problem() -> str | None:
    """Why Redis at :data:`REDIS_URL` cannot be used, or None when it can."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except (OSError, redis.RedisError) as exc:
        return f"Redis is not reachable at {REDIS_URL}: {exc}"
    return None


def require_postgres() -> None:
    """Skip (or fail, in CI) the calling test when PostgreSQL is down."""
    problem = postgres_problem()
    if problem:
        _unavailable(problem)


def require_redis() -> None:
    """Skip (or fail, in CI) the calling test when Redis is down."""
    problem = redis_problem()
    if problem:
        _unavailable(problem)


def database_url(name: str) -> str:
    """The URL of database ``name`` on the server of :data:`ADMIN_URL`."""
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(prefix: str = "threadline_test") -> Iterator[str]:
    """Create ``<prefix>_<random>``, yield its URL, drop it afterwards (even with clients left)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    _blocking(lambda: _admin(f'CREATE DATABASE "{name}"'))
    try:
        yield database_url(name)
    finally:
        _blocking(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def database_flags(engine: str, prefix: str = "threadline_test") -> Iterator[list[str]]:
    """``threadline serve`` flags for a fresh database of an engine: none for SQLite (the data folder's),
    ``--database <url>`` of a throwaway PostgreSQL database (dropped afterwards) otherwise."""
    if engine == "sqlite":
        yield []
        return
    require_postgres()
    with fresh_database(prefix) as url:
        yield ["--database", url]


async def until_waiting_for_a_lock(conn: asyncpg.Connection, what: str) -> None:
    """Return once a session of ``conn``'s database waits for a lock (a claim on a key another holds).

    Raises:
        AssertionError: none waited within about five seconds (``what`` names the wait).
    """
    for _ in range(500):
        if await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} never waited")
