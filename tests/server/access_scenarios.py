"""Scenarios for the access cache: warm it on a reader node, change a fact through a writer node,
and check that the reader's very next request sees the change.

The writer and reader are the same server in single-node tests and two nodes of a
cluster in ``tests/scale/test_access_cache_cluster.py``. Identity operations go
through the official identity SDK (HMAC-signed); chat calls are plain HTTP on a
keep-alive session, so a loop of them is quick.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import requests
from azure.communication.identity import CommunicationIdentityClient

from ..conftest import RunningServer

API = "api-version=2024-03-07"


class Node:
    """A server as a test drives it: chat over HTTP, identities over the official SDK."""

    def __init__(self, server: RunningServer, access_key: str) -> None:
        self.server = server
        self.identity = CommunicationIdentityClient.from_connection_string(
            f"endpoint={server.https_endpoint}/;accesskey={access_key}", connection_verify=server.cert_path
        )
        self.http = requests.Session()

    def user(self) -> tuple[str, str]:
        """A new identity and its chat token."""
        identifier, token = self.identity.create_user_and_token(["chat"])
        return str(identifier.properties["id"]), token.token

    def token(self, user_id: str) -> str:
        """A new chat token for an existing identity."""
        from azure.communication.identity import CommunicationUserIdentifier

        return self.identity.get_token(CommunicationUserIdentifier(user_id), ["chat"]).token

    def revoke(self, user_id: str) -> None:
        from azure.communication.identity import CommunicationUserIdentifier

        self.identity.revoke_tokens(CommunicationUserIdentifier(user_id))

    def delete_user(self, user_id: str) -> None:
        from azure.communication.identity import CommunicationUserIdentifier

        self.identity.delete_user(CommunicationUserIdentifier(user_id))

    def call(self, method: str, path: str, token: str, body: Any = None) -> requests.Response:
        """One chat request (``path`` after the endpoint, without the api-version)."""
        sep = "&" if "?" in path else "?"
        return self.http.request(
            method, f"{self.server.http_endpoint}{path}{sep}{API}", json=body, timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )

    def create_thread(self, token: str, members: list[str]) -> str:
        body = {"topic": "cache", "participants": [{"communicationIdentifier": {"rawId": m}} for m in members]}
        answer = self.call("POST", "/chat/threads", token, body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["chatThread"]["id"])

    def send(self, token: str, thread_id: str, text: str) -> requests.Response:
        return self.call("POST", f"/chat/threads/{thread_id}/messages", token, {"content": text})

    def texts(self, token: str, thread_id: str) -> list[str]:
        """The text messages the token's user may list, oldest first (asserts a 200)."""
        answer = self.call("GET", f"/chat/threads/{thread_id}/messages?maxPageSize=200", token)
        assert answer.status_code == 200, answer.text
        return [m["content"]["message"] for m in reversed(answer.json()["value"]) if m["type"] == "text"]

    def list_status(self, token: str, thread_id: str) -> int:
        return self.call("GET", f"/chat/threads/{thread_id}/messages", token).status_code

    def remove(self, token: str, thread_id: str, user_id: str) -> None:
        answer = self.call("POST", f"/chat/threads/{thread_id}/participants/:remove", token, {"rawId": user_id})
        assert answer.status_code == 204, answer.text

    def add(self, token: str, thread_id: str, user_id: str, share_ms: int) -> None:
        when = datetime.fromtimestamp(share_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"participants": [{"communicationIdentifier": {"rawId": user_id}, "shareHistoryTime": when}]}
        answer = self.call("POST", f"/chat/threads/{thread_id}/participants/:add", token, body)
        assert answer.status_code == 201, answer.text
        assert not answer.json().get("invalidParticipants"), answer.text

    def delete_thread(self, token: str, thread_id: str) -> None:
        answer = self.call("DELETE", f"/chat/threads/{thread_id}", token)
        assert answer.status_code == 204, answer.text

    def metric(self, name: str, labels: str = "") -> float:
        """A sample of this node's /metrics (0 when absent)."""
        text = self.http.get(f"{self.server.http_endpoint}/metrics", timeout=5).text
        pattern = "^" + re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)$"
        match = re.search(pattern, text, re.M)
        return float(match.group(1)) if match else 0.0

    def hits(self) -> float:
        return sum(self.metric("threadline_access_cache_lookups_total", f'kind="{kind}",result="hit"')
                   for kind in ("user", "member"))

    def wait_serving(self, value: float = 1.0, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.metric("threadline_access_cache_serving") != value:
            assert time.monotonic() < deadline, f"the access cache never had serving={value}"
            time.sleep(0.05)


def _warm(reader: Node, token: str, thread_id: str, *, cached: bool = True) -> None:
    """A few reads on the reader; with ``cached``, check they were served from its cache."""
    before = reader.hits()
    for _ in range(3):
        assert reader.list_status(token, thread_id) == 200
    if cached:
        assert reader.hits() >= before + 4  # user and membership, on the 2nd and 3rd read at least


def revoke(writer: Node, reader: Node, rounds: int, *, cached: bool = True) -> None:
    """Revoking a user's tokens through the writer: the reader's next request is 401; a new token works."""
    _, owner = writer.user()
    for n in range(rounds):
        user_id, token = writer.user()
        thread_id = writer.create_thread(owner, [user_id])
        _warm(reader, token, thread_id, cached=cached and n == 0)
        writer.revoke(user_id)
        assert reader.list_status(token, thread_id) == 401
        assert reader.list_status(writer.token(user_id), thread_id) == 200


def delete_identity(writer: Node, reader: Node, rounds: int, *, cached: bool = True) -> None:
    """Deleting an identity through the writer: the reader's next request is 401."""
    _, owner = writer.user()
    for n in range(rounds):
        user_id, token = writer.user()
        thread_id = writer.create_thread(owner, [user_id])
        _warm(reader, token, thread_id, cached=cached and n == 0)
        writer.delete_user(user_id)
        assert reader.list_status(token, thread_id) == 401


def remove_member(writer: Node, reader: Node, rounds: int, *, cached: bool = True) -> None:
    """Removing a member through the writer: the reader's next read, send and receipt list are 403."""
    _, owner = writer.user()
    user_id, token = writer.user()
    for n in range(rounds):
        thread_id = writer.create_thread(owner, [user_id])
        _warm(reader, token, thread_id, cached=cached and n == 0)
        writer.remove(owner, thread_id, user_id)
        assert reader.list_status(token, thread_id) == 403
        assert reader.send(token, thread_id, "after removal").status_code == 403
        assert reader.call("GET", f"/chat/threads/{thread_id}/readReceipts", token).status_code == 403


def leave(writer: Node, reader: Node, rounds: int) -> None:
    """A member leaving through the writer: its next read on the reader is 403."""
    _, owner = writer.user()
    user_id, token = writer.user()
    for _ in range(rounds):
        thread_id = writer.create_thread(owner, [user_id])
        _warm(reader, token, thread_id, cached=False)
        writer.remove(token, thread_id, user_id)
        assert reader.list_status(token, thread_id) == 403


def delete_thread(writer: Node, reader: Node, rounds: int, *, cached: bool = True) -> None:
    """Deleting a thread through the writer: the reader's next request on it is 404."""
    _, owner = writer.user()
    user_id, token = writer.user()
    for n in range(rounds):
        thread_id = writer.create_thread(owner, [user_id])
        _warm(reader, token, thread_id, cached=cached and n == 0)
        writer.delete_thread(owner, thread_id)
        assert reader.list_status(token, thread_id) == 404
        assert reader.send(token, thread_id, "after deletion").status_code == 404


def readd(writer: Node, reader: Node, rounds: int, *, cached: bool = True) -> None:
    """Removing a member and adding it back with another share-history time: the reader sees the new window.

    The first stay's window starts in an hour (nothing is visible yet); the second one's
    covers the whole history, so a reader still holding the first stay would list nothing.
    """
    _, owner = writer.user()
    user_id, token = writer.user()
    for n in range(rounds):
        thread_id = writer.create_thread(owner, [])
        writer.add(owner, thread_id, user_id, int(time.time() + 3600) * 1000)
        assert writer.send(owner, thread_id, "old").status_code == 201
        _warm(reader, token, thread_id, cached=cached and n == 0)
        assert reader.texts(token, thread_id) == []
        writer.remove(owner, thread_id, user_id)
        writer.add(owner, thread_id, user_id, 0)
        assert reader.texts(token, thread_id) == ["old"]
