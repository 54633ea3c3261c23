"""Raw HTTP against the server: status codes, error bodies, bad input, api-versions."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from ..conftest import RunningServer
from ..support import User, new_user


def call(server: RunningServer, user: User | None, method: str, path: str, *, version: str = "2024-03-07",
         **kwargs: Any) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if user is not None:
        headers["Authorization"] = f"Bearer {user.token}"
    sep = "&" if "?" in path else "?"
    url = f"{server.http_endpoint}{path}{sep}api-version={version}" if version else f"{server.http_endpoint}{path}"
    return requests.request(method, url, headers=headers, timeout=10, **kwargs)


def error_of(response: requests.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()["error"]
    assert isinstance(body["code"], str) and isinstance(body["message"], str)
    return body


@pytest.fixture(scope="module")
def owner(server: RunningServer) -> User:
    return new_user(server)


@pytest.fixture(scope="module")
def thread(server: RunningServer, owner: User) -> str:
    response = call(server, owner, "POST", "/chat/threads", json={"topic": "wire"})
    assert response.status_code == 201
    return str(response.json()["chatThread"]["id"])


@pytest.mark.parametrize(
    ("body", "target_part"),
    [
        (b"{not json", None),
        (b'{"content": 5}', "content"),
        (b"{}", "content"),
        (b'{"content": "x", "metadata": {"a": 1}}', "metadata"),
        (b'{"content": "x", "type": "video"}', "type"),
        (b'{"content": "   "}', "content"),
        (b"[1, 2]", None),
        (b'"text"', None),
    ],
)
def test_bad_send_bodies_give_400(server: RunningServer, owner: User, thread: str, body: bytes,
                                  target_part: str | None) -> None:
    response = call(server, owner, "POST", f"/chat/threads/{thread}/messages", data=body,
                    headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = error_of(response)
    if target_part:
        assert target_part in (error.get("target") or "")


def test_bad_create_bodies_and_queries(server: RunningServer, owner: User, thread: str) -> None:
    cases = [
        ("POST", "/chat/threads", {"data": b""}),
        ("POST", "/chat/threads", {"json": {"topic": ""}}),
        ("POST", "/chat/threads", {"json": {"topic": "x", "participants": [{"displayName": "no id"}]}}),
        ("POST", "/chat/threads", {"json": {"topic": "x", "participants": [{"communicationIdentifier": {}}]}}),
        ("POST", "/chat/threads", {"json": {"topic": "x" * 100_000}}),
        ("GET", "/chat/threads?maxPageSize=abc", {}),
        ("GET", "/chat/threads?maxPageSize=0", {}),
        ("GET", "/chat/threads?maxPageSize=201", {}),
        ("GET", "/chat/threads?startTime=yesterday", {}),
        ("GET", "/chat/threads?syncState=zz", {}),
        ("GET", f"/chat/threads/{thread}/messages?syncState=abc", {}),
        ("GET", f"/chat/threads/{thread}/participants?skip=-1", {}),
        ("POST", f"/chat/threads/{thread}/participants/:add", {"json": {"participants": []}}),
        ("POST", f"/chat/threads/{thread}/readReceipts", {"json": {"chatMessageId": ""}}),
        ("PATCH", f"/chat/threads/{thread}", {"json": {"topic": ""}}),
    ]
    for method, path, kwargs in cases:
        response = call(server, owner, method, path, **kwargs)
        assert response.status_code == 400, (method, path, response.text)
        error_of(response)


def test_oversize_body_is_refused(server: RunningServer, owner: User, thread: str) -> None:
    response = call(server, owner, "POST", f"/chat/threads/{thread}/messages",
                    data=b'{"content": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                    headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "exceeds" in error_of(response)["message"]
    big = call(server, owner, "POST", f"/chat/threads/{thread}/messages", json={"content": "y" * (29 * 1024)})
    assert big.status_code == 400 and error_of(big)["target"] == "content"


def test_auth_failures_give_401(server: RunningServer, owner: User, thread: str) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"},
                    {"Authorization": f"Bearer {owner.token[:-4]}AAAA"}):
        response = call(server, None, "GET", f"/chat/threads/{thread}", headers=headers)
        assert response.status_code == 401
        assert error_of(response)["code"] == "Unauthorized"


def test_api_versions(server: RunningServer, owner: User, thread: str) -> None:
    missing = call(server, owner, "GET", f"/chat/threads/{thread}", version="")
    assert missing.status_code == 400 and error_of(missing)["code"] == "MissingApiVersionParameter"
    unknown = call(server, owner, "GET", f"/chat/threads/{thread}", version="1999-01-01")
    assert unknown.status_code == 400 and error_of(unknown)["code"] == "UnsupportedApiVersion"
    sent = call(server, owner, "POST", f"/chat/threads/{thread}/messages", json={"content": "v"})
    message_id = sent.json()["id"]
    shapes = {}
    for version in ("2021-09-07", "2023-11-07", "2024-03-07", "2025-03-15"):
        got = call(server, owner, "GET", f"/chat/threads/{thread}/messages/{message_id}", version=version)
        assert got.status_code == 200
        assert "2024-03-07" in got.headers["api-supported-versions"]
        shapes[version] = got.json()["content"]
        props = call(server, owner, "GET", f"/chat/threads/{thread}", version=version).json()
        assert ("metadata" in props) == (version == "2025-03-15")
    assert shapes["2021-09-07"] == {"message": "v"}
    assert shapes["2024-03-07"] == {"message": "v", "attachments": []}


def test_success_codes_and_headers(server: RunningServer, owner: User, thread: str) -> None:
    response = call(server, owner, "POST", f"/chat/threads/{thread}/messages", json={"content": "hi"},
                    headers={"x-ms-client-request-id": "abc-123"})
    assert response.status_code == 201
    assert response.headers["x-ms-client-request-id"] == "abc-123"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["Location"].endswith(f"/messages/{response.json()['id']}")
    receipt = call(server, owner, "POST", f"/chat/threads/{thread}/readReceipts",
                   json={"chatMessageId": response.json()["id"]})
    assert (receipt.status_code, receipt.content) == (200, b"")
    typing = call(server, owner, "POST", f"/chat/threads/{thread}/typing", data=b"")
    assert (typing.status_code, typing.content) == (200, b"")
    identifier = {"rawId": owner.id, "communicationUser": {"id": owner.id}}
    removal = call(server, owner, "POST", f"/chat/threads/{thread}/participants/:remove",
                   json={"rawId": "8:acs:nobody"})
    assert removal.status_code == 204
    add = call(server, owner, "POST", f"/chat/threads/{thread}/participants/:add",
               json={"participants": [{"communicationIdentifier": identifier}]})
    assert (add.status_code, add.json()) == (201, {})


def test_send_message_repeatability_header(server: RunningServer, owner: User, thread: str) -> None:
    headers = {"repeatability-request-id": "retry-1"}
    first = call(server, owner, "POST", f"/chat/threads/{thread}/messages", json={"content": "once"},
                 headers=headers)
    second = call(server, owner, "POST", f"/chat/threads/{thread}/messages", json={"content": "once"},
                  headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    listing = call(server, owner, "GET", f"/chat/threads/{thread}/messages?maxPageSize=200").json()["value"]
    assert sum(1 for m in listing if (m.get("content") or {}).get("message") == "once") == 1


def test_next_link_carries_parameters(server: RunningServer, owner: User) -> None:
    created = call(server, owner, "POST", "/chat/threads", json={"topic": "links"}).json()
    thread = created["chatThread"]["id"]
    for i in range(3):
        call(server, owner, "POST", f"/chat/threads/{thread}/messages", json={"content": str(i)})
    first = call(server, owner, "GET", f"/chat/threads/{thread}/messages?maxPageSize=2&startTime=2020-01-01T00:00:00Z")
    link = first.json()["nextLink"]
    assert link.startswith("/chat/threads/") and "maxPageSize=2" in link and "startTime=" in link
    assert "+" not in link
    second = requests.get(server.http_endpoint + link, headers={"Authorization": f"Bearer {owner.token}"}, timeout=10)
    assert second.status_code == 200 and len(second.json()["value"]) == 2
    assert "nextLink" not in second.json() or second.json()["nextLink"]


def test_unknown_route_is_acs_404(server: RunningServer) -> None:
    response = requests.get(f"{server.http_endpoint}/nothing/here", timeout=10)
    assert response.status_code == 404 and error_of(response)["code"] == "NotFound"


def test_nul_characters_are_refused_everywhere(server: RunningServer, owner: User, thread: str) -> None:
    # PostgreSQL cannot store U+0000, so neither engine accepts it: 400, never 500.
    sent = call(server, owner, "POST", f"/chat/threads/{thread}/messages", json={"content": "ok"}).json()["id"]
    cases = [
        ("POST", f"/chat/threads/{thread}/messages", {"json": {"content": "a\u0000b"}}, "content"),
        ("POST", f"/chat/threads/{thread}/messages", {"json": {"content": "x", "metadata": {"k\u0000": "v"}}},
         "metadata"),
        ("POST", f"/chat/threads/{thread}/readReceipts", {"json": {"chatMessageId": "\u0000"}}, "chatMessageId"),
        ("PATCH", f"/chat/threads/{thread}", {"json": {"topic": "\u0000t"}}, "topic"),
        ("PATCH", f"/chat/threads/{thread}/messages/{sent}", {"json": {"content": "e\u0000"}}, "content"),
        ("POST", "/chat/threads", {"json": {"topic": "t", "participants": [
            {"communicationIdentifier": {"rawId": "8:acs:\u0000"}}]}}, "participants[0].communicationIdentifier.rawId"),
        ("GET", f"/chat/threads/{thread}/messages/%00", {}, "message_id"),
        ("GET", "/chat/threads/19%3A%00%40thread.v2", {}, "thread_id"),
        ("GET", "/chat/threads?startTime=%00", {}, "startTime"),
    ]
    for method, path, kwargs, target in cases:
        response = call(server, owner, method, path, **kwargs)
        assert response.status_code == 400, (method, path, response.text)
        error = error_of(response)
        assert error["target"] == target, (path, error)
        assert "NUL" in error["message"]
    # A literal backslash-u text is ordinary content, not a NUL.
    literal = call(server, owner, "POST", f"/chat/threads/{thread}/messages", json={"content": "\\u0000"})
    assert literal.status_code == 201
    got = call(server, owner, "GET", f"/chat/threads/{thread}/messages/{literal.json()['id']}").json()
    assert got["content"]["message"] == "\\u0000"
