"""Servers for the reliability tests.

``open_server`` serves with ``--no-limits`` (no size limits, no throttling),
for tests that send a lot; ``acs_server`` serves with the ACS size limits but
no throttling, for tests of those limits; ``throttled_server`` serves with the
ACS size limits and rates. Both drain the server's output in the
background so a chatty server never blocks on a full pipe.

``open_server`` and ``acs_server`` run on every engine (SQLite, and PostgreSQL
with the Redis hub), so the authorization matrix, limits, sanitising,
idempotency and fuzz tests cover both; ``start`` (used by tests that restart a
server on its data folder) takes the engine from ``THREADLINE_TEST_DATABASE``
when set.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import ENGINES, RunningServer, launch, serving


def drain(server: RunningServer) -> None:
    """Keep reading the server's output into ``server.output`` (daemon thread)."""
    stream = server.process.stdout

    def pump() -> None:
        assert stream is not None
        for line in stream:
            server.output.append(line.rstrip())

    threading.Thread(target=pump, daemon=True).start()


def start(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> RunningServer:
    """Launch a server (engine from ``THREADLINE_TEST_DATABASE``) and drain its output."""
    database = os.environ.get("THREADLINE_TEST_DATABASE")
    extra = ["--database", database] if database else []
    server = launch(data_dir, *extra, *args, env=env)
    drain(server)
    return server


@pytest.fixture(scope="session", params=ENGINES)
def open_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server without limits or throttling, on each engine."""
    with serving(request.param, tmp_path_factory.mktemp(f"open-{request.param}") / "data", "--no-limits") as server:
        drain(server)
        yield server


@pytest.fixture(scope="session", params=ENGINES)
def acs_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with the ACS size limits, throttling off, on each engine."""
    data = tmp_path_factory.mktemp(f"acs-{request.param}") / "data"
    with serving(request.param, data, env={"THREADLINE_THROTTLE": "off"}) as server:
        drain(server)
        yield server


@pytest.fixture(scope="session")
def throttled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with the ACS size limits and rates (the default)."""
    server = start(tmp_path_factory.mktemp("throttled") / "data", env={"THREADLINE_THROTTLE": "on"})
    yield server
    server.stop()
