"""The start-up banner explains itself (both connection strings, the limits in force and how to change
them, the next step), and a throttled request is logged with the rule that fired (both engines)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RunningServer, launch
from .reliability.conftest import drain
from .reliability.helpers import Chat, make_user


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    if request.param == "sqlite":
        yield []
        return
    from .pg import fresh_database, require_postgres

    require_postgres()
    with fresh_database("threadline_banner") as url:
        yield ["--database", url]


def banner_of(server: RunningServer) -> str:
    return "\n".join(server.output)


def test_banner_and_throttle_log(tmp_path: Path, database: list[str]) -> None:
    server = launch(tmp_path / "data", *database, "--log-format", "text")
    drain(server)
    try:
        banner = banner_of(server)
        key = server.access_key
        assert f"  Connection string: endpoint={server.https_endpoint}/;accesskey={key}\n" in banner
        assert (f"  HTTP connection string (threadline.chat on loopback): endpoint={server.http_endpoint}/;"
                f"accesskey={key}\n") in banner
        assert ("  Limits:         ACS sizes (message 28 KB, 250 participants per thread, page size <= 200); "
                "lift with --no-limits\n") in banner
        assert "  Rates:          ACS's (e.g. 10 sends per thread per 10 s, 429 + Retry-After beyond)" in banner
        assert "see docs/limits.md" in banner
        assert "  Next: `threadline seed` makes demo users, a thread, tokens and ready-to-paste code;" in banner

        alice = make_user(server)
        chat = Chat(server.http_endpoint, alice.token)
        thread_id = chat.create_thread("busy", [alice.id])
        statuses = [chat.call("POST", f"/chat/threads/{thread_id}/messages", {"content": f"m{n}"}).status_code
                    for n in range(11)]
        assert statuses == [201] * 10 + [429]
        deadline = time.monotonic() + 10
        wanted = ("WARNING threadline.throttle throttled send_message: at most 10 per 10 s per thread "
                  "(--throttle off, or a factor, changes it); Retry-After ")
        while time.monotonic() < deadline and not any(wanted in line for line in server.output):
            time.sleep(0.05)
        assert [line for line in server.output if wanted in line], "\n".join(server.output[-5:])
    finally:
        server.stop()


def test_banner_without_limits(tmp_path: Path) -> None:
    server = launch(tmp_path / "data", "--no-limits")
    try:
        assert ("  Limits:         none (--no-limits): sizes and rates lifted; drop the flag for ACS's limits"
                in banner_of(server))
    finally:
        server.stop()
