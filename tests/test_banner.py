"""The start-up banner explains itself (both connection strings, the limits in force and how to change
them, the next step), and a throttled request is logged with the rule that fired (both engines)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from threadline.server.runner import explorer_urls

from .conftest import RunningServer, launch
from .pg import database_flags
from .reliability.conftest import drain
from .reliability.helpers import Chat, make_user


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    with database_flags(request.param, "threadline_banner") as flags:
        yield flags


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
        explorer = f"{server.http_endpoint}/explorer"
        assert (f"        the Explorer shows your data: {explorer} or {server.https_endpoint}/explorer "
                "(sign in with the access key);\n") in banner
        page = requests.get(explorer, timeout=30)  # the printed URL opens the Explorer
        assert page.status_code == 200 and "<title>Threadline Explorer</title>" in page.text

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


def test_explorer_urls_in_the_banner() -> None:
    """Plain HTTP only on loopback (the access key is typed into the page); wildcards shown as loopback."""
    assert explorer_urls("http://0.0.0.0:8080", "https://0.0.0.0:8443") == [
        "http://127.0.0.1:8080/explorer", "https://127.0.0.1:8443/explorer"]
    assert explorer_urls("http://[::]:80", None) == ["http://[::1]:80/explorer"]
    assert explorer_urls("http://localhost:8080", None) == ["http://localhost:8080/explorer"]
    assert explorer_urls("http://192.0.2.7:8080", "https://192.0.2.7:8443") == ["https://192.0.2.7:8443/explorer"]
    assert explorer_urls("http://chat.example:8080", "https://chat.example:8443") == [
        "https://chat.example:8443/explorer"]
    assert explorer_urls(None, None) == []
