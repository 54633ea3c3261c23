"""Every start-up or CLI error is one line naming the value, the flag and the fix, with exit code 2.

Also: one ``serve`` per SQLite database (a lock file), a CLI that refuses to mint tokens for a
database made with another key or resource (both engines), and ``connection-string`` reporting the
running server's actual endpoints.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from .conftest import RunningServer, launch

RUN = [sys.executable, "-m", "threadline"]


def threadline(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
               user: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUN, *args], capture_output=True, text=True, timeout=60, cwd=cwd, user=user,
                          env={**os.environ, **(env or {})})


def one_line_error(done: subprocess.CompletedProcess[str], command: str = "serve") -> str:
    """Assert the run failed the promised way, and return its one line."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"threadline {command}: error: ")
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--database", "mysql://u:secret@db/chat"], {},
         "--database mysql://u:***@db/chat: unsupported scheme 'mysql://'"),
        (["--http-port", "70000"], {}, "--http-port 70000: out of range; use 0..65535"),
        (["--https-port", "-5"], {}, "--https-port -5: out of range"),
        (["--http-port", "abc"], {}, "argument --http-port: invalid int value: 'abc'"),
        (["--workers", "0"], {}, "--workers 0: out of range"),
        ([], {"THREADLINE_HTTP_PORT": "eighty"}, "THREADLINE_HTTP_PORT='eighty' is not a whole number"),
        ([], {"THREADLINE_WEBHOOK_TIMEOUT": "soon"}, "THREADLINE_WEBHOOK_TIMEOUT='soon' is not a number"),
        ([], {"THREADLINE_IDEMPOTENCY_RETENTION": "0"}, "THREADLINE_IDEMPOTENCY_RETENTION 0: out of range"),
        ([], {"THREADLINE_SQLITE_SYNCHRONOUS": "OFF"}, "THREADLINE_SQLITE_SYNCHRONOUS=OFF: unknown level"),
        (["--throttle", "fast"], {}, "--throttle fast: not on, off or a positive factor"),
        (["--access-key", "not base64!"], {}, "the access key from --access-key is not base64"),
        (["--events", "http://x"], {}, "--events http://x: not a Redis URL (THREADLINE_EVENTS)"),
        (["--host", "10.255.255.1", "--http-port", "0", "--https-port", "0"], {},
         "--host 10.255.255.1: not an address of this machine"),
        (["--workers", "2"], {}, "--workers needs PostgreSQL (--database postgresql://...), not the SQLite file"),
        (["--database", "postgresql://postgres@127.0.0.1:1/x"], {},
         "--database postgresql://postgres@127.0.0.1:1/x: PostgreSQL is not reachable"),
    ],
)
def test_bad_settings_are_one_line(tmp_path: Path, args: list[str], env: dict[str, str], expected: str) -> None:
    data = tmp_path / "data"
    line = one_line_error(threadline("serve", "--data", str(data), *args, env=env, cwd=tmp_path))
    assert expected in line
    # nothing was made from the bad value: no SQLite file named after a URL
    assert not any(p.name.startswith(("mysql", "postgresql")) for p in tmp_path.rglob("*"))


def test_a_missing_postgresql_database_is_named(tmp_path: Path) -> None:
    from .pg import database_url, require_postgres

    require_postgres()
    url = database_url(f"threadline_missing_{secrets.token_hex(4)}")
    line = one_line_error(threadline("user", "--data", str(tmp_path / "d"), "--database", url), "user")
    assert f"database '{url.rsplit('/', 1)[1]}' does not exist; create it" in line


def test_data_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    line = one_line_error(threadline("serve", "--data", str(tmp_path / "data")))
    assert line.endswith(f"--data {tmp_path / 'data'}: is a file, not a folder; pass a folder with --data "
                         "(THREADLINE_DATA)")


def test_data_folder_not_writable(tmp_path: Path) -> None:
    # Permissions bind everyone but root: as root, run the command as nobody (uid 65534).
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    tmp_path.chmod(0o755)
    for parent in tmp_path.parents:  # nobody must reach the folder to be refused by it
        if parent.stat().st_uid == os.getuid() and str(parent).startswith("/tmp/"):
            parent.chmod(parent.stat().st_mode | 0o055)
    user = 65534 if os.getuid() == 0 else None
    line = one_line_error(threadline("serve", "--data", str(locked / "data"), user=user, cwd=tmp_path))
    assert f"--data {locked / 'data'}: cannot write there (Permission denied); pass a writable folder" in line


def test_debug_log_level_adds_the_traceback(tmp_path: Path) -> None:
    done = threadline("serve", "--data", str(tmp_path), "--database", "mysql://db/x", "--log-level", "debug")
    assert done.returncode == 2
    assert "Traceback" in done.stderr and "SetupError" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("threadline serve: error: --database mysql://db/x")


def test_port_in_use_names_the_port_and_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = one_line_error(threadline("serve", "--data", str(tmp_path / "d"), "--http-port", str(port),
                                         "--https-port", "0"))
        assert (f"--http-port {port}: 127.0.0.1:{port} is already in use (another server?); stop it, or pick "
                "another port with --http-port (0 picks a free one)") in line
        line = one_line_error(threadline("serve", "--data", str(tmp_path / "d"), "--https-port", str(port),
                                         "--http-port", "-1"))
        assert f"--https-port {port}: 127.0.0.1:{port} is already in use" in line


def test_backup_to_an_unwritable_path(tmp_path: Path) -> None:
    data = tmp_path / "data"
    threadline("user", "--data", str(data), "--scopes", "chat").check_returncode()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_line_error(threadline("backup", str(blocker / "copy.db"), "--data", str(data)), "backup")
    assert f"backup {blocker / 'copy.db'}: cannot write the copy there" in line
    line = one_line_error(threadline("backup", str(tmp_path / "c.db"), "--data", str(tmp_path / "empty")), "backup")
    assert "no database at" in line


def test_a_second_serve_on_one_sqlite_database_is_refused(start_server: Callable[..., RunningServer]) -> None:
    first = start_server()
    line = one_line_error(threadline("serve", "--data", str(first.data_dir), "--http-port", "0", "--https-port", "0"))
    assert (f"--data {first.data_dir}: another threadline serve (pid {first.process.pid}) already serves "
            f"{first.data_dir / 'threadline.db'}; stop it, or give this one its own --data folder") in line
    assert requests.get(f"{first.http_endpoint}/ready", timeout=5).status_code == 200  # the first one is unharmed
    first.stop()
    again = start_server(data_dir=first.data_dir)  # the lock went with the process
    assert requests.get(f"{again.http_endpoint}/ready", timeout=5).status_code == 200


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """``--database`` flags of a fresh database on each engine (none for SQLite: the data folder's)."""
    if request.param == "sqlite":
        yield ["--database", str(tmp_path / "shared.db")]
        return
    from .pg import fresh_database, require_postgres

    require_postgres()
    with fresh_database("threadline_cli") as url:
        yield ["--database", url]


def test_user_and_token_refuse_a_database_of_another_key_or_resource(tmp_path: Path, database: list[str]) -> None:
    made = threadline("user", "--data", str(tmp_path / "a"), *database, "--scopes", "chat")
    assert made.returncode == 0, made.stderr
    user_id = made.stdout.split()[1]
    # Another data folder has another key and resource id: its tokens would be refused by the server.
    line = one_line_error(threadline("user", "--data", str(tmp_path / "b"), *database), "user")
    assert "--resource-id " in line and "the database" in line and "belongs to resource" in line
    resource = (tmp_path / "a" / "resource-id").read_text().strip()
    line = one_line_error(threadline("token", user_id, "--data", str(tmp_path / "b"), "--resource-id", resource,
                                     *database), "token")
    assert "--access-key: not the key the database" in line and "pass that key (THREADLINE_ACCESS_KEY)" in line
    line = one_line_error(threadline("token", user_id, "--data", str(tmp_path / "a"), "--access-key", new_key(),
                                     *database), "token")
    assert "--access-key: not the key the database" in line
    # With the right key and resource, tokens come out as before
    shutil.copy(tmp_path / "a" / "access-key", tmp_path / "b" / "access-key")
    shutil.copy(tmp_path / "a" / "resource-id", tmp_path / "b" / "resource-id")
    good = threadline("token", user_id, "--data", str(tmp_path / "b"), *database)
    assert good.returncode == 0 and good.stdout.count(".") == 2, good.stderr


def test_serve_warns_of_a_database_of_another_key(tmp_path: Path, database: list[str]) -> None:
    # One database may serve several resources (each with its own nodes and key): serve only warns.
    assert threadline("migrate", "--data", str(tmp_path / "a"), *database).returncode == 0
    resource = (tmp_path / "a" / "resource-id").read_text().strip()
    server = launch(tmp_path / "b", *database, "--resource-id", resource, "--log-format", "text")
    try:
        banner = "\n".join(server.output)
        assert "WARNING threadline.server this database was first opened with another key or resource" in banner
        assert "--access-key: not the key the database" in banner
    finally:
        server.stop()


def test_connection_string_reports_the_running_servers_ports(start_server: Callable[..., RunningServer]) -> None:
    server = start_server()  # free ports, not 8080/8443
    data = str(server.data_dir)
    https = threadline("connection-string", "--data", data)
    assert https.stdout.strip() == server.connection_string
    plain = threadline("connection-string", "--data", data, "--http")
    assert plain.stdout.strip() == f"endpoint={server.http_endpoint}/;accesskey={server.access_key}"
    server.stop(signal.SIGTERM)
    assert not (server.data_dir / "runtime.json").exists()
    stopped = threadline("connection-string", "--data", data, "--http", env={"THREADLINE_HTTP_PORT": "9999"})
    assert stopped.stdout.strip() == f"endpoint=http://127.0.0.1:9999/;accesskey={server.access_key}"


def test_a_malformed_resource_id_is_refused(tmp_path: Path) -> None:
    line = one_line_error(threadline("user", "--data", str(tmp_path), "--resource-id", "my_resource:1"), "user")
    assert "--resource-id my_resource:1: not a resource id (THREADLINE_RESOURCE_ID); use a GUID such as " in line


def test_connection_string_of_a_server_on_every_address(start_server: Callable[..., RunningServer]) -> None:
    server = start_server("--host", "0.0.0.0")
    port = server.http_endpoint.rsplit(":", 1)[1]
    plain = threadline("connection-string", "--data", str(server.data_dir), "--http")
    assert plain.stdout.strip() == f"endpoint=http://127.0.0.1:{port}/;accesskey={server.access_key}"
