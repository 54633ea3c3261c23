"""Shared fixtures: a real Threadline server in a subprocess, on loopback.

``server`` (session-wide) serves HTTP and HTTPS on free ports from a fresh
data folder; ``start_server`` starts more, with their own settings. Tests talk
to them with the official SDKs and ours, exactly as users do.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunningServer:
    """A server process and how to reach it."""

    process: subprocess.Popen[str]
    data_dir: Path
    http_endpoint: str
    https_endpoint: str
    output: list[str] = field(default_factory=list)
    engine: str = "sqlite"

    @property
    def cert_path(self) -> str:
        """The CA certificate to pass as ``connection_verify``."""
        return str(self.data_dir / "tls" / "ca.pem")

    @property
    def access_key(self) -> str:
        return (self.data_dir / "access-key").read_text().strip()

    @property
    def resource_id(self) -> str:
        return (self.data_dir / "resource-id").read_text().strip()

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.https_endpoint}/;accesskey={self.access_key}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Stop the process (SIGTERM by default) and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def launch(
    data_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    timeout: float = 30,
) -> RunningServer:
    """Start ``threadline serve`` and wait until both endpoints answer.

    Args:
        data_dir: the data folder.
        args: extra ``serve`` flags.
        env: extra environment variables.
        command: the command line to use instead of ``python -m threadline serve``.
        timeout: seconds to wait for the banner and the health check.
    """
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = command or [sys.executable, "-m", "threadline", "serve", "--data", str(data_dir),
                      "--http-port", "0", "--https-port", "0", *args]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
                               cwd=str(data_dir.parent))
    assert process.stdout is not None
    lines: list[str] = []
    http = https = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (lines and lines[-1].startswith("Press Ctrl+C")):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if m := re.search(r"HTTP endpoint:\s+(\S+)", line):
            http = m.group(1)
        if m := re.search(r"HTTPS endpoint:\s+(\S+)", line):
            https = m.group(1)
    if not (http and https):
        process.kill()
        raise RuntimeError("server did not start:\n" + "\n".join(lines))
    server = RunningServer(process, data_dir, http, https, lines)
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{http}/health", timeout=2).status_code == 200:
                return server
        except requests.RequestException:  # refused, or a first answer slower than the probe's timeout
            time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError("server did not become healthy")


#: The engines every shared-server suite runs on.
ENGINES = ["sqlite", "postgres"]


@contextlib.contextmanager
def serving(engine: str, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[RunningServer]:
    """Run a server on an engine for the length of the block.

    ``sqlite`` is the embedded default; ``postgres`` is the scale-out configuration: a database of
    its own (dropped afterwards) and the Redis event hub on a channel of its own. PostgreSQL or
    Redis being down skips the test, or fails it under ``THREADLINE_REQUIRE_SERVICES=1`` (CI).
    """
    if engine == "sqlite":
        running = launch(data_dir, *args, env=env)
        try:
            yield running
        finally:
            running.stop()
        return
    from .pg import REDIS_URL, fresh_database, require_postgres, require_redis

    require_postgres()
    require_redis()
    with fresh_database("threadline_server") as url:
        channel = f"{REDIS_URL}?channel=threadline-test:{secrets.token_hex(6)}"
        running = launch(data_dir, "--database", url, "--events", channel, *args, env=env)
        running.engine = "postgres"
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="session", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server per engine for the whole session, so every suite that uses it runs on both.

    Both keep ACS size limits and run without rate throttling: functional tests share threads, so
    ACS's per-thread rates would throttle them; the throttle has tests of its own.
    """
    data = tmp_path_factory.mktemp(f"server-{request.param}") / "data"
    with serving(request.param, data, env={"THREADLINE_THROTTLE": "off"}) as running:
        yield running


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start extra servers for one test; all are stopped afterwards."""
    started: list[RunningServer] = []

    def start(*args: str, data_dir: Path | None = None, **kwargs: object) -> RunningServer:
        running = launch(data_dir or tmp_path / f"data{len(started)}", *args, **kwargs)  # type: ignore[arg-type]
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop(signal.SIGKILL)
