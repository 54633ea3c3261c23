"""ACS size limits: each refused with 400 and the ACS body, and nothing written; all lifted by --no-limits.

Values from ``acs-events-and-limits.md`` §2.3 and ``docs/limits.md``: 28 KB
messages, 250 participants per thread, 200 per create or add batch, pages of
at most 200, 1 KB of metadata, 512-character topics (Threadline's own choice;
ACS documents none).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from ..conftest import RunningServer
from .helpers import Chat, ChatUser, identifier, make_user, q, user_messages

KB28 = 28 * 1024


def assert_bad_request(answer: requests.Response, target: str, words: str) -> None:
    """A 400 in the ACS shape, naming the field at fault."""
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    assert answer.headers["x-ms-error-code"] == "BadRequest"
    error = answer.json()["error"]
    assert (error["code"], error["target"]) == ("BadRequest", target)
    assert words in error["message"]


@pytest.fixture(scope="module")
def crowd(acs_server: RunningServer) -> list[ChatUser]:
    """252 users: enough to fill a thread and overflow it."""
    return [make_user(acs_server) for _ in range(252)]


@pytest.fixture
def room(acs_server: RunningServer, crowd: list[ChatUser]) -> tuple[Chat, str]:
    owner = Chat(acs_server.http_endpoint, crowd[0].token)
    return owner, owner.create_thread("limits", [crowd[1].id])


def metadata_of_size(size: int) -> dict[str, str]:
    """A metadata map whose compact JSON is exactly ``size`` bytes."""
    return {"k": "v" * (size - len('{"k":""}'))}


# -- messages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["a", "é", "🐢"])
def test_message_of_28_kb_is_accepted_and_one_byte_more_is_refused(room: tuple[Chat, str], unit: str) -> None:
    owner, thread_id = room
    width = len(unit.encode())
    fits = unit * (KB28 // width) + "a" * (KB28 % width)
    assert len(fits.encode()) == KB28
    owner.send(thread_id, fits)
    answer = owner.call("POST", f"/chat/threads/{q(thread_id)}/messages", {"content": fits + "a", "type": "text"})
    assert_bad_request(answer, "content", "28672 bytes")
    assert [m["content"]["message"] for m in user_messages(owner.messages(thread_id))] == [fits]


def test_editing_a_message_past_28_kb_is_refused_and_leaves_it_unchanged(room: tuple[Chat, str]) -> None:
    owner, thread_id = room
    message_id = owner.send(thread_id, "short")
    path = f"/chat/threads/{q(thread_id)}/messages/{message_id}"
    answer = owner.call("PATCH", path, {"content": "x" * (KB28 + 1)}, headers={
        "Content-Type": "application/merge-patch+json"})
    assert_bad_request(answer, "content", "28672 bytes")
    got = owner.call("GET", path).json()
    assert (got["content"]["message"], got.get("editedOn")) == ("short", None)


def test_message_metadata_over_1_kb_is_refused(room: tuple[Chat, str]) -> None:
    owner, thread_id = room
    path = f"/chat/threads/{q(thread_id)}/messages"
    ok = owner.call("POST", path, {"content": "m", "metadata": metadata_of_size(1024)})
    assert ok.status_code == 201, ok.text
    answer = owner.call("POST", path, {"content": "m2", "metadata": metadata_of_size(1025)})
    assert_bad_request(answer, "metadata", "1024 bytes")
    assert [m["content"]["message"] for m in user_messages(owner.messages(thread_id))] == ["m"]


# -- threads ----------------------------------------------------------------------------------------


def thread_ids(chat: Chat) -> list[str]:
    return [t["id"] for t in chat.follow("/chat/threads", 200)]


def test_topic_of_512_characters_is_accepted_and_513_refused(acs_server: RunningServer) -> None:
    chat = Chat(acs_server.http_endpoint, make_user(acs_server).token)
    thread_id = chat.create_thread("é" * 512, [])
    answer = chat.call("POST", "/chat/threads", {"topic": "é" * 513, "participants": []})
    assert_bad_request(answer, "topic", "512 characters")
    assert thread_ids(chat) == [thread_id]
    update = chat.call("PATCH", f"/chat/threads/{q(thread_id)}", {"topic": "t" * 513},
                       headers={"Content-Type": "application/merge-patch+json"})
    assert_bad_request(update, "topic", "512 characters")
    assert chat.call("GET", f"/chat/threads/{q(thread_id)}").json()["topic"] == "é" * 512
    assert [m["type"] for m in chat.messages(thread_id)] == ["topicUpdated", "participantAdded"]


def test_thread_metadata_over_1_kb_creates_nothing(acs_server: RunningServer) -> None:
    chat = Chat(acs_server.http_endpoint, make_user(acs_server).token)
    fits = chat.call("POST", "/chat/threads", {"topic": "t", "metadata": metadata_of_size(1024)},
                     version="2025-03-15")
    assert fits.status_code == 201, fits.text
    answer = chat.call("POST", "/chat/threads", {"topic": "t", "metadata": metadata_of_size(1025)},
                       version="2025-03-15")
    assert_bad_request(answer, "metadata", "1024 bytes")
    assert thread_ids(chat) == [fits.json()["chatThread"]["id"]]


# -- participants -----------------------------------------------------------------------------------


def participants(users: list[ChatUser]) -> list[dict[str, Any]]:
    return [{"communicationIdentifier": identifier(u.id)} for u in users]


def members(chat: Chat, thread_id: str) -> list[str]:
    listed = chat.follow(f"/chat/threads/{q(thread_id)}/participants", 200)
    return [p["communicationIdentifier"]["rawId"] for p in listed]


def test_create_with_201_participants_creates_nothing(acs_server: RunningServer, crowd: list[ChatUser]) -> None:
    chat = Chat(acs_server.http_endpoint, crowd[0].token)
    before = thread_ids(chat)
    answer = chat.call("POST", "/chat/threads", {"topic": "big", "participants": participants(crowd[1:202])})
    assert_bad_request(answer, "participants", "At most 200")
    assert thread_ids(chat) == before


def test_a_thread_holds_250_participants_and_batches_of_200(acs_server: RunningServer, crowd: list[ChatUser]) -> None:
    owner = Chat(acs_server.http_endpoint, crowd[0].token)
    created = owner.call("POST", "/chat/threads", {"topic": "full", "participants": participants(crowd[1:201])})
    assert created.status_code == 201, created.text
    thread_id = created.json()["chatThread"]["id"]
    add = f"/chat/threads/{q(thread_id)}/participants/:add"
    # a batch of 201 is refused whole, even though the thread has room for 49
    too_many = owner.call("POST", add, {"participants": participants(crowd[201:252] * 4 + crowd[201:206])})
    assert_bad_request(too_many, "participants", "At most 200")
    assert len(members(owner, thread_id)) == 201
    filled = owner.call("POST", add, {"participants": participants(crowd[201:250])})
    assert (filled.status_code, filled.json()) == (201, {})
    assert len(members(owner, thread_id)) == 250
    overflow = owner.call("POST", add, {"participants": participants(crowd[250:252])})
    assert_bad_request(overflow, "participants", "at most 250")
    assert sorted(members(owner, thread_id)) == sorted(u.id for u in crowd[:250])
    kinds = [m["type"] for m in owner.messages(thread_id)]
    assert kinds == ["participantAdded", "topicUpdated", "participantAdded"]
    # re-adding members already in does not count against the limit
    again = owner.call("POST", add, {"participants": participants(crowd[1:3])})
    assert again.status_code == 201, again.text


# -- paging -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/messages", "/participants", "/readReceipts"])
def test_page_size_is_1_to_200(room: tuple[Chat, str], suffix: str) -> None:
    owner, thread_id = room
    path = "/chat/threads" if not suffix else f"/chat/threads/{q(thread_id)}{suffix}"
    assert owner.call("GET", path, params={"maxPageSize": 200}).status_code == 200
    for size in (0, 201, -1):
        assert_bad_request(owner.call("GET", path, params={"maxPageSize": size}), "maxPageSize", "between 1 and 200")


def test_a_body_over_1_mib_is_refused(room: tuple[Chat, str]) -> None:
    owner, thread_id = room
    answer = owner.call("POST", f"/chat/threads/{q(thread_id)}/messages", {"content": "x" * (1024 * 1024)})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert "1048576 bytes" in answer.json()["error"]["message"]
    assert user_messages(owner.messages(thread_id)) == []


# -- the switch -------------------------------------------------------------------------------------


def test_no_limits_lifts_every_size_limit(open_server: RunningServer) -> None:
    alice = make_user(open_server)
    chat = Chat(open_server.http_endpoint, alice.token)
    thread_id = chat.create_thread("t" * 2000, [], metadata=metadata_of_size(5000))
    big = "x" * (KB28 * 3)
    chat.send(thread_id, big)
    assert chat.call("GET", f"/chat/threads/{q(thread_id)}/messages", params={"maxPageSize": 1000}).status_code == 200
    assert [m["content"]["message"] for m in user_messages(chat.messages(thread_id))] == [big]
