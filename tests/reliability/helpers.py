"""Raw HTTP helpers for the reliability tests: bearer chat calls, HMAC identity calls, a response-dropping proxy.

These talk to the server exactly as any client on the wire does, so a test
can assert statuses, headers and bodies byte for byte.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from threadline.identity.hmac import sign

from ..conftest import RunningServer

CHAT = "2024-03-07"
IDENTITY = "2023-10-01"


def q(value: str) -> str:
    """Percent-encode a path segment (thread ids hold ``:`` and ``@``)."""
    return quote(value, safe="")


def identifier(raw_id: str) -> dict[str, Any]:
    """The wire identifier of an ACS user, as the official SDK sends it."""
    return {"rawId": raw_id, "communicationUser": {"id": raw_id}}


def identity_request(
    base: str, key: bytes, method: str, path: str, body: dict[str, Any] | None = None, *,
    version: str = IDENTITY, timeout: float = 10,
) -> requests.Response:
    """An HMAC-signed identity request, signed as the official SDK signs it."""
    target = f"{path}?api-version={version}"
    raw = json.dumps(body).encode() if body is not None else b""
    headers = sign(key, method, target, base.split("://", 1)[1], raw, time.time())
    headers["Content-Type"] = "application/json"
    return requests.request(method, base + target, data=raw, headers=headers, timeout=timeout)


def server_key(server: RunningServer) -> bytes:
    """The decoded access key of a test server."""
    return base64.b64decode(server.access_key)


@dataclass
class ChatUser:
    """A user created over the identity API, with a chat token."""

    id: str
    token: str


def make_user(server: RunningServer, scopes: list[str] | None = None) -> ChatUser:
    """Create an identity with a token (HMAC-signed raw request)."""
    answer = identity_request(
        server.http_endpoint, server_key(server), "POST", "/identities",
        {"createTokenWithScopes": scopes or ["chat"]},
    )
    assert answer.status_code == 201, answer.text
    made = answer.json()
    return ChatUser(made["identity"]["id"], made["accessToken"]["token"])


class Chat:
    """Raw chat calls for one user against one server (plain HTTP on loopback).

    Args:
        base: the server's HTTP endpoint.
        token: the user's bearer token (None sends no Authorization header).
    """

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base
        self.token = token
        self.session = requests.Session()

    def call(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None, version: str = CHAT,
    ) -> requests.Response:
        """Send one request; ``path`` is relative to the endpoint, ``api-version`` is added."""
        all_headers = dict(headers or {})
        if self.token is not None:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        query = {"api-version": version, **(params or {})}
        return self.session.request(
            method, self.base + path, params=query, headers=all_headers, timeout=30,
            data=json.dumps(body).encode() if body is not None else None,
        )

    def create_thread(self, topic: str, members: list[str], **extra: Any) -> str:
        """Create a thread and return its id (asserts 201)."""
        body = {"topic": topic, "participants": [{"communicationIdentifier": identifier(m)} for m in members], **extra}
        answer = self.call("POST", "/chat/threads", body)
        assert answer.status_code == 201, answer.text
        thread_id: str = answer.json()["chatThread"]["id"]
        return thread_id

    def send(self, thread_id: str, content: str, kind: str = "text", **headers: str) -> str:
        """Send a message and return its id (asserts 201)."""
        answer = self.call(
            "POST", f"/chat/threads/{q(thread_id)}/messages", {"content": content, "type": kind}, headers=headers
        )
        assert answer.status_code == 201, answer.text
        message_id: str = answer.json()["id"]
        return message_id

    def messages(self, thread_id: str, page_size: int = 200) -> list[dict[str, Any]]:
        """Every message of a thread, following nextLinks."""
        return self.follow(f"/chat/threads/{q(thread_id)}/messages", page_size)

    def follow(self, path: str, page_size: int) -> list[dict[str, Any]]:
        """Every item of a list operation, following nextLinks."""
        items: list[dict[str, Any]] = []
        answer = self.call("GET", path, params={"maxPageSize": page_size})
        while True:
            assert answer.status_code == 200, answer.text
            page = answer.json()
            items += page["value"]
            link = page.get("nextLink")
            if not link:
                return items
            answer = self.session.get(
                self.base + link, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
            )


def user_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The text and html messages among listed ones."""
    return [m for m in items if m["type"] in ("text", "html")]


class DroppingProxy:
    """A loopback HTTP/1.1 proxy that loses the first ``drops`` responses on the way back.

    For each request it reads from a client it opens a fresh connection to
    the server, forwards the request, reads the server's whole response and
    then, while drops remain, closes the client's connection without
    forwarding a byte: the server has done the work, the client never hears
    of it. Later responses are forwarded unchanged.

    Args:
        upstream: ``(host, port)`` of the server.
        drops: how many responses to lose.
        path_filter: only requests whose request line contains this are dropped.
    """

    def __init__(self, upstream: tuple[str, int], drops: int, path_filter: str = "") -> None:
        self.upstream = upstream
        self.drops = drops
        self.path_filter = path_filter
        self.forwarded = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _read_message(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes] | None:
        """Read one HTTP message (head + Content-Length body); return it and what follows."""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            rest += chunk
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def _serve(self, client: socket.socket) -> None:
        buffer = b""
        try:
            while True:
                got = self._read_message(client, buffer)
                if got is None:
                    return
                request, buffer = got
                with socket.create_connection(self.upstream) as upstream:
                    upstream.sendall(request)
                    answer = self._read_message(upstream, b"")
                if answer is None:
                    return
                request_line = request.split(b"\r\n", 1)[0].decode("latin-1")
                with self._lock:
                    drop = self.dropped < self.drops and self.path_filter in request_line
                    if drop:
                        self.dropped += 1
                    else:
                        self.forwarded += 1
                if drop:
                    return  # the finally closes the client's connection: the response is lost
                client.sendall(answer[0])
        except OSError:
            return
        finally:
            client.close()
