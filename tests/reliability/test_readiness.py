"""``/ready`` tells the truth: not ready while Redis (when configured) is unreachable or the database is
read-only; the reason is in the body and logged once per transition; writes to a read-only database
answer 503 with the ACS error body, never 500.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
import requests

from ..conftest import RunningServer, launch
from ..pg import ADMIN_URL, database_flags, fresh_database, require_postgres
from .conftest import drain
from .helpers import Chat, identifier, make_user

TEXT_LOGS = ("--log-format", "text")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(server: RunningServer, status: int, within: float = 20, says: str = "") -> requests.Response:
    """Poll /ready until it answers ``status`` with ``says`` in its body (bounded), and return that answer.

    A transition can pass through another state first (terminated connections make the database briefly
    unreachable before it reads as read-only), so wait for the state asserted on, not for any 503.
    """
    deadline = time.monotonic() + within

    def reached(answer: requests.Response) -> bool:
        return answer.status_code == status and says in answer.text

    answer = requests.get(f"{server.http_endpoint}/ready", timeout=5)
    while not reached(answer) and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = requests.get(f"{server.http_endpoint}/ready", timeout=5)
    assert reached(answer), answer.text
    return answer


def logged(server: RunningServer, text: str, within: float = 10) -> list[str]:
    """The server's log lines holding ``text``, once at least one has arrived (bounded wait)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not any(text in line for line in server.output):
        time.sleep(0.05)
    return [line for line in server.output if text in line]


def assert_unavailable(answer: requests.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["x-ms-error-code"] == "ServiceUnavailable"
    assert answer.json()["error"]["code"] == "ServiceUnavailable"


class PrivateRedis:
    """A redis-server of this test's own on a free port, to stop and start at will."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_not_ready_while_redis_is_unreachable(tmp_path: Path, engine: str) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    flags = ["--events", f"redis://127.0.0.1:{redis.port}/0", *TEXT_LOGS]
    with database_flags(engine, "threadline_ready") as database:
        server = launch(tmp_path / "data", *database, *flags)
        drain(server)
        try:
            assert wait_for(server, 200).json() == {"status": "ready"}
            redis.stop()
            answer = wait_for(server, 503, says="Redis")
            assert_unavailable(answer)
            assert answer.json()["error"]["message"] == "Not ready: the Redis event hub (--events) is not reachable."
            for _ in range(3):  # still down: still not ready, and not logged again
                assert requests.get(f"{server.http_endpoint}/ready", timeout=5).status_code == 503
            redis.start()
            wait_for(server, 200)
            assert len(logged(server, "WARNING threadline.server not ready: the Redis event hub")) == 1
            assert len(logged(server, "WARNING threadline.server ready again")) == 1
        finally:
            server.stop()
            redis.stop()




def test_a_read_only_sqlite_database_is_not_ready_and_writes_get_503(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = launch(data)
    alice = make_user(first)
    thread_id = Chat(first.http_endpoint, alice.token).create_thread("before", [alice.id])
    first.stop()
    # The database file becomes read-only (a restored backup, a read-only volume...). Root ignores file
    # modes, so the server then runs as nobody, who owns the folder but may not write the file.
    command = [sys.executable, "-m", "threadline", "serve", "--data", str(data), "--http-port", "0",
               "--https-port", "0", *TEXT_LOGS]
    if os.getuid() == 0:
        for path in [tmp_path, *tmp_path.parents]:
            if str(path).startswith("/tmp/") and path.stat().st_uid == 0:
                path.chmod(path.stat().st_mode | 0o055)
        for path in [data, *data.rglob("*")]:
            os.chown(path, 65534, 65534)
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    (data / "threadline.db").chmod(0o444)
    server = launch(data, command=command, env={"HOME": str(tmp_path)})
    drain(server)
    try:
        answer = wait_for(server, 503, says="the database is read-only")
        assert_unavailable(answer)
        assert answer.json()["error"]["message"].startswith("Not ready: the database is read-only (")
        chat = Chat(server.http_endpoint, alice.token)
        # reads still work; every write is a 503 in the ACS shape, never a 500
        got = chat.call("GET", f"/chat/threads/{thread_id}")
        assert got.status_code == 200 and got.json()["topic"] == "before"
        sent = chat.call("POST", f"/chat/threads/{thread_id}/messages", {"content": "hi"})
        assert_unavailable(sent)
        assert sent.json()["error"]["message"] == "The database is read-only; writes are refused."
        assert_unavailable(chat.call("POST", "/chat/threads", {"topic": "after", "participants": [
            {"communicationIdentifier": identifier(alice.id)}]}))
        assert_unavailable(chat.call("PATCH", f"/chat/threads/{thread_id}", {"topic": "renamed"}))
        assert len(logged(server, "WARNING threadline.server not ready: the database is read-only")) == 1
        assert not [line for line in server.output if "Traceback" in line or "unhandled error" in line]
    finally:
        server.stop()


def test_a_read_only_postgresql_database_is_not_ready_and_writes_get_503(tmp_path: Path) -> None:
    require_postgres()
    with fresh_database("threadline_ro") as url:
        name = url.rsplit("/", 1)[1]
        server = launch(tmp_path / "data", "--database", url, *TEXT_LOGS, env={"THREADLINE_THROTTLE": "off"})
        drain(server)
        try:
            alice = make_user(server)
            chat = Chat(server.http_endpoint, alice.token)
            thread_id = chat.create_thread("before", [alice.id])
            wait_for(server, 200)

            async def admin(*sql: str) -> None:
                conn = await asyncpg.connect(ADMIN_URL, timeout=5)
                try:
                    for statement in sql:
                        await conn.execute(statement)
                finally:
                    await conn.close()

            def read_only(on: bool) -> None:  # as a failover to a standby would, for this database only
                setting = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
                asyncio.run(admin(f'ALTER DATABASE "{name}" {setting}',
                                  f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))

            read_only(True)
            answer = wait_for(server, 503, says="the database is read-only")
            assert answer.json()["error"]["message"].startswith("Not ready: the database is read-only (")
            sent = chat.call("POST", f"/chat/threads/{thread_id}/messages", {"content": "hi"})
            assert_unavailable(sent)
            assert sent.json()["error"]["message"] == "The database is read-only; writes are refused."
            got = chat.call("GET", f"/chat/threads/{thread_id}")
            assert got.status_code == 200 and got.json()["topic"] == "before"
            read_only(False)
            wait_for(server, 200)
            assert chat.call("POST", f"/chat/threads/{thread_id}/messages", {"content": "hi"}).status_code == 201
            assert len(logged(server, "WARNING threadline.server not ready: the database is read-only")) == 1
            assert len(logged(server, "WARNING threadline.server ready again")) == 1
            assert not [line for line in server.output if "unhandled error" in line]
        finally:
            server.stop()
