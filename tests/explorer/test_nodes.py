"""The admin API and the Explorer session across two nodes (PostgreSQL + Redis): any node serves any session."""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.communication.chat import ChatClient, CommunicationTokenCredential
from azure.communication.identity import CommunicationIdentityClient

from ..conftest import RunningServer, launch
from ..pg import REDIS_URL, fresh_database, require_postgres, require_redis
from .helpers import admin_url, signed


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer, str]]:
    """Two nodes on one database and one Redis channel, sharing an access key (returned third)."""
    require_postgres()
    require_redis()
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    flags = ["--access-key", key, "--resource-id", str(uuid.uuid4()), "--throttle", "off"]
    with fresh_database("threadline_explorer") as url:
        channel = f"{REDIS_URL}?channel=threadline-test:{secrets.token_hex(6)}"
        nodes = []
        try:
            for name in ("a", "b"):
                node = launch(tmp_path / name, "--database", url, "--events", channel, *flags)
                node.engine = "postgres"
                nodes.append(node)
            yield nodes[0], nodes[1], key
        finally:
            for node in nodes:
                node.stop()


def test_a_session_opened_on_one_node_works_on_the_other(
    two_nodes: tuple[RunningServer, RunningServer, str],
) -> None:
    a, b, key = two_nodes
    signed_in = requests.post(admin_url(a, "/admin/session"), json={"accessKey": key}, timeout=30)
    assert signed_in.status_code == 200, signed_in.text
    cookie = signed_in.cookies.get("threadline_explorer", path="/admin")
    csrf = signed_in.json()["csrfToken"]
    on_b = requests.get(admin_url(b, "/admin/threads"), cookies={"threadline_explorer": cookie}, timeout=30)
    assert on_b.status_code == 200, on_b.text
    made = requests.post(admin_url(b, "/admin/identities"), json={"createTokenWithScopes": ["chat"]},
                         cookies={"threadline_explorer": cookie}, headers={"X-Threadline-CSRF": csrf}, timeout=30)
    assert made.status_code == 201, made.text
    token = made.json()["accessToken"]["token"]

    # A thread made through node A is listed by node B, and B hears of A on the event channel.
    chat = ChatClient(a.https_endpoint, CommunicationTokenCredential(token), connection_verify=a.cert_path)
    thread_id = chat.create_chat_thread("Across nodes").chat_thread.id
    listed = signed(b, "GET", "/admin/threads", topic="Across nodes", key=base64.b64decode(key)).json()["value"]
    assert [t["id"] for t in listed] == [thread_id]
    deadline = time.monotonic() + 15
    nodes: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        nodes = signed(b, "GET", "/admin/status", key=base64.b64decode(key)).json()["nodes"]
        if len(nodes) == 2:
            break
        time.sleep(0.05)
    assert len(nodes) == 2 and nodes[0]["self"] is True and nodes[1]["self"] is False, nodes
    assert isinstance(nodes[1]["lastSeen"], float)
    # The identity API of node A and the admin list of node B agree.
    identity = CommunicationIdentityClient.from_connection_string(
        f"endpoint={a.https_endpoint}/;accesskey={key}", connection_verify=a.cert_path
    )
    user = identity.create_user()
    found = signed(b, "GET", "/admin/identities", search=user.properties["id"], key=base64.b64decode(key))
    assert [u["id"] for u in found.json()["value"]] == [user.properties["id"]]
