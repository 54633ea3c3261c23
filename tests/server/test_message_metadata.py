"""Editing a message's metadata merges it inside the write: concurrent edits lose no key, pass no limit."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..conftest import RunningServer
from ..support import User, new_user
from .test_thread_properties import MERGE, call, create


@pytest.fixture(scope="module")
def owner(server: RunningServer) -> User:
    return new_user(server)


def _send(server: RunningServer, user: User, thread_id: str, metadata: dict[str, str]) -> str:
    response = call(server, user, "POST", f"/chat/threads/{thread_id}/messages",
                    json={"content": "hello", "metadata": metadata})
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


def _edit(server: RunningServer, user: User, thread_id: str, message_id: str, metadata: dict[str, str]) -> int:
    response = call(server, user, "PATCH", f"/chat/threads/{thread_id}/messages/{message_id}",
                    json={"metadata": metadata}, headers=MERGE)
    if response.status_code == 400:
        assert response.json()["error"] == {
            "code": "BadRequest", "message": "metadata must not exceed 1024 bytes.", "target": "metadata"}
    return response.status_code


def _metadata(server: RunningServer, user: User, thread_id: str, message_id: str) -> dict[str, str]:
    response = call(server, user, "GET", f"/chat/threads/{thread_id}/messages/{message_id}")
    assert response.status_code == 200, response.text
    metadata: dict[str, str] = response.json().get("metadata", {})
    return metadata


def test_concurrent_edits_each_adding_a_key_keep_every_key(server: RunningServer, owner: User) -> None:
    tid = create(server, owner)["id"]
    mid = _send(server, owner, tid, {"base": "0"})
    n = 16
    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(lambda i: _edit(server, owner, tid, mid, {f"k{i}": str(i)}), range(n)))
    assert codes == [204] * n
    assert _metadata(server, owner, tid, mid) == {"base": "0", **{f"k{i}": str(i) for i in range(n)}}


def test_concurrent_edits_never_store_more_than_the_limit(server: RunningServer, owner: User) -> None:
    # each fits the 1,024 bytes alone, and two more fit together, not three: the others get ACS's 400
    tid = create(server, owner)["id"]
    mid = _send(server, owner, tid, {"base": "0"})
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda i: _edit(server, owner, tid, mid, {f"b{i}": "x" * 400}), range(6)))
    assert sorted(codes) == [204, 204, 400, 400, 400, 400]
    stored = _metadata(server, owner, tid, mid)
    assert len(stored) == 3 and stored["base"] == "0" and len(json.dumps(stored, separators=(",", ":"))) <= 1024
