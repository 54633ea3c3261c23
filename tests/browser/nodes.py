"""Two Threadline nodes sharing one PostgreSQL database and one Redis channel."""

from __future__ import annotations

import base64
import contextlib
import secrets
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import RunningServer, launch
from tests.pg import REDIS_URL, fresh_database, require_postgres, require_redis

__all__ = ["restartable", "two_nodes"]


@contextlib.contextmanager
def two_nodes(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Start two nodes of one deployment (same key, resource, database and event channel)."""
    require_postgres()
    require_redis()
    key, resource = base64.b64encode(secrets.token_bytes(32)).decode(), str(uuid.uuid4())
    for name in ("node1", "node2"):  # the files the SDK helpers read the connection string from
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "access-key").write_text(key + "\n")
        (tmp_path / name / "resource-id").write_text(resource + "\n")
    channel = f"{REDIS_URL}?channel=threadline-test:{secrets.token_hex(6)}"
    with fresh_database("threadline_browser_nodes") as url:
        started: list[RunningServer] = []
        try:
            for name in ("node1", "node2"):
                started.append(launch(tmp_path / name, "--database", url, "--events", channel,
                                      env={"THREADLINE_THROTTLE": "off"}))
            yield started[0], started[1]
        finally:
            for node in started:
                node.stop(signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def restartable(engine: str, data: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Arguments (fixed ports) and environment for a server that can be killed and started again."""
    args = ["--https-port", str(_free_port()), "--http-port", str(_free_port())]
    env = {"THREADLINE_THROTTLE": "off"}
    if engine == "sqlite":
        yield args, env
        return
    from tests.pg import REDIS_URL, fresh_database, require_postgres, require_redis

    require_postgres()
    require_redis()
    with fresh_database("threadline_browser") as url:
        yield [*args, "--database", url, "--events", f"{REDIS_URL}?channel=threadline-test:{secrets.token_hex(6)}"], env
