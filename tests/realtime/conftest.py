"""The real-time tests' server: the shared kind, with request throttling off.

These tests push messages and typing notifications faster than ACS's
per-thread rates allow; what they check is delivery, not throttling.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RunningServer, launch

NO_THROTTLE = {"THREADLINE_THROTTLE": "off"}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the real-time tests (embedded SQLite, no throttling)."""
    running = launch(tmp_path_factory.mktemp("realtime") / "data", env=NO_THROTTLE)
    yield running
    running.stop()
