"""``threadline seed``: demo identities and a thread, idempotent, whose printed tokens, connection strings
and Python snippet work as printed (both engines)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.communication.chat import ChatClient as OfficialChatClient
from azure.communication.chat import CommunicationTokenCredential as OfficialCredential

from threadline.chat import ChatClient, CommunicationTokenCredential

from .conftest import launch
from .pg import database_flags


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    with database_flags(request.param, "threadline_seed") as flags:
        yield flags


SEEDED = [
    ("Alice", "Hi Bob! This thread was made by `threadline seed`."),
    ("Bob", "Hi Alice. Real-time events arrive on /chat/realtime."),
    ("Alice", "Open samples/realtime_chat.py to chat from two terminals."),
]


@pytest.fixture(scope="module")
def js_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the official JS chat SDK installed (npm, from its cache after the first time)."""
    from .pg import services_required

    if not (shutil.which("node") and shutil.which("npm")):
        if services_required():
            pytest.fail("node and npm are needed to run the seed's JavaScript snippet")
        pytest.skip("node and npm are not installed")
    folder = tmp_path_factory.mktemp("js")
    (folder / "package.json").write_text('{"type": "module", "private": true}')
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "@azure/communication-chat@1.6.0",
                           "@azure/communication-common@2"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


def seed(data: Path, database: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "threadline", "seed", "--data", str(data), *database, *extra],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def test_seed_is_idempotent_and_what_it_prints_works(tmp_path: Path, database: list[str], js_sdk: Path) -> None:
    data = tmp_path / "data"
    server = launch(data, *database, env={"THREADLINE_THROTTLE": "off"})
    try:
        first: dict[str, Any] = json.loads(seed(data, database, "--json").stdout)
        again: dict[str, Any] = json.loads(seed(data, database, "--json").stdout)
        assert [u["name"] for u in again["users"]] == ["Alice", "Bob"]
        assert [u["id"] for u in again["users"]] == [u["id"] for u in first["users"]]
        assert again["thread"] == {**first["thread"], "created": False} and first["thread"]["created"] is True
        # the running server's actual endpoints, not the defaults
        assert again["endpoints"] == {"http": server.http_endpoint, "https": server.https_endpoint}
        assert again["connectionStrings"]["https"] == server.connection_string
        assert again["caCertificate"] == str(Path(server.cert_path).resolve())

        alice, bob = again["users"]
        thread_id = again["thread"]["id"]
        with ChatClient(server.http_endpoint, CommunicationTokenCredential(alice["token"])) as chat:
            thread = chat.get_chat_thread_client(thread_id)
            texts = [(m.sender_display_name, m.content.message) for m in thread.list_messages() if m.type == "text"]
        assert texts[::-1] == SEEDED  # seeded once, not twice
        official = OfficialChatClient(server.https_endpoint, OfficialCredential(bob["token"]),
                                      connection_verify=again["caCertificate"])
        assert thread_id in [t.id for t in official.list_chat_threads()]

        # the text form: the Python snippet runs as printed; with the server running, --data is enough
        # (the CLI takes the running server's database from its runtime file)
        text = seed(data, []).stdout
        assert "Demo data in place (thread already there" in text
        assert f"endpoint={server.http_endpoint}/;accesskey={server.access_key}" in text
        snippet = text.split("(run with .venv/bin/python):\n\n", 1)[1].split("\n\nJavaScript", 1)[0]
        ran = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.splitlines() == [f"{name} {text}" for name, text in reversed(SEEDED)]
        assert 'import { ChatClient } from "@azure/communication-chat";' in text
        js = text.split("(run with NODE_EXTRA_CA_CERTS=", 1)[1].split("):\n\n", 1)[1]
        (js_sdk / "snippet.mjs").write_text(js)
        node = subprocess.run(["node", "snippet.mjs"], cwd=js_sdk, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "NODE_EXTRA_CA_CERTS": again["caCertificate"]})
        assert node.returncode == 0, node.stderr
        assert node.stdout.splitlines() == [f"{name} {text}" for name, text in reversed(SEEDED)]
    finally:
        server.stop()
