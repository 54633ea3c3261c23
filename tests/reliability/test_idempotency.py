"""Retried writes happen once: responses lost on the way back, then the request repeated.

A :class:`DroppingProxy` forwards each request to the server, waits for the
server's whole response (so the write is committed) and then closes the
client's connection without forwarding it. A client that retries with the
same ``repeatability-request-id`` must end up with exactly one write and the
same result as the first, lost, answer.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from azure.core.exceptions import ServiceResponseError

from threadline.chat import ChatThreadClient, CommunicationTokenCredential

from ..conftest import RunningServer
from .helpers import Chat, DroppingProxy, identifier, make_user, q, user_messages


def upstream(server: RunningServer) -> tuple[str, int]:
    parts = urlsplit(server.http_endpoint)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def retry_until_answered(chat: Chat, method: str, path: str, body: Any, headers: dict[str, str],
                         attempts: int = 5) -> tuple[requests.Response, int]:
    """Repeat one request (same headers) until an answer arrives; return it and the attempts used."""
    for attempt in range(1, attempts + 1):
        try:
            return chat.call(method, path, body, headers=headers), attempt
        except requests.ConnectionError:
            chat.session.close()
            chat.session = requests.Session()
    raise AssertionError("no answer")


@pytest.fixture
def pair(open_server: RunningServer) -> tuple[Chat, str, str]:
    """The creator's client, a fresh thread (with a second member) and the creator's id."""
    alice, bob = make_user(open_server), make_user(open_server)
    chat = Chat(open_server.http_endpoint, alice.token)
    return chat, chat.create_thread("retries", [bob.id]), alice.id


def test_lost_send_responses_then_retry_with_the_same_id_gives_one_message(
    open_server: RunningServer, pair: tuple[Chat, str, str]
) -> None:
    owner, thread_id, _ = pair
    proxy = DroppingProxy(upstream(open_server), drops=3, path_filter="/messages")
    try:
        chat = Chat(proxy.url, owner.token)
        key = str(uuid.uuid4())
        path = f"/chat/threads/{q(thread_id)}/messages"
        answer, attempts = retry_until_answered(
            chat, "POST", path, {"content": "exactly once", "type": "text"}, {"repeatability-request-id": key}
        )
    finally:
        proxy.close()
    assert (answer.status_code, attempts, proxy.dropped) == (201, 4, 3)
    sent = user_messages(owner.messages(thread_id))
    assert [(m["id"], m["content"]["message"]) for m in sent] == [(answer.json()["id"], "exactly once")]


def test_the_proxy_really_loses_committed_writes(open_server: RunningServer, pair: tuple[Chat, str, str]) -> None:
    """The control: the same retries without a repeatability id write the message every time."""
    owner, thread_id, _ = pair
    proxy = DroppingProxy(upstream(open_server), drops=2, path_filter="/messages")
    try:
        chat = Chat(proxy.url, owner.token)
        answer, attempts = retry_until_answered(
            chat, "POST", f"/chat/threads/{q(thread_id)}/messages", {"content": "thrice", "type": "text"}, {}
        )
    finally:
        proxy.close()
    assert (answer.status_code, attempts) == (201, 3)
    assert [m["content"]["message"] for m in user_messages(owner.messages(thread_id))] == ["thrice"] * 3


def test_our_sdk_retries_a_lost_send_once_with_its_repeatability_id(
    open_server: RunningServer, pair: tuple[Chat, str, str]
) -> None:
    """threadline.chat sends a repeatability id on every POST and keeps it across azure-core retries."""
    owner, thread_id, _ = pair
    proxy = DroppingProxy(upstream(open_server), drops=2, path_filter="/messages")
    try:
        client = ChatThreadClient(proxy.url, CommunicationTokenCredential(str(owner.token)), thread_id,
                                  retry_backoff_factor=0.01)
        # azure-core retries a POST whose response was lost only when asked to (retry_on_methods).
        methods = frozenset({"GET", "PUT", "DELETE", "POST"})
        result = client.send_message("sdk exactly once", retry_on_methods=methods)
        client.close()
    finally:
        proxy.close()
    assert proxy.dropped == 2
    sent = user_messages(owner.messages(thread_id))
    assert [(m["id"], m["content"]["message"]) for m in sent] == [(result.id, "sdk exactly once")]


def test_our_sdk_without_post_retries_surfaces_the_lost_response(
    open_server: RunningServer, pair: tuple[Chat, str, str]
) -> None:
    """By default azure-core does not retry a POST after a lost response; the write still happened once."""
    owner, thread_id, _ = pair
    proxy = DroppingProxy(upstream(open_server), drops=1, path_filter="/messages")
    try:
        client = ChatThreadClient(proxy.url, CommunicationTokenCredential(str(owner.token)), thread_id)
        with pytest.raises(ServiceResponseError):
            client.send_message("lost answer")
        client.close()
    finally:
        proxy.close()
    assert [m["content"]["message"] for m in user_messages(owner.messages(thread_id))] == ["lost answer"]


def test_lost_create_thread_responses_give_one_thread(open_server: RunningServer) -> None:
    alice = make_user(open_server)
    proxy = DroppingProxy(upstream(open_server), drops=2, path_filter="POST /chat/threads?")
    try:
        chat = Chat(proxy.url, alice.token)
        answer, attempts = retry_until_answered(
            chat, "POST", "/chat/threads", {"topic": "once", "participants": []},
            {"repeatability-request-id": str(uuid.uuid4())},
        )
    finally:
        proxy.close()
    assert (answer.status_code, attempts) == (201, 3)
    listed = Chat(open_server.http_endpoint, alice.token).follow("/chat/threads", 50)
    assert [t["id"] for t in listed] == [answer.json()["chatThread"]["id"]]


def test_lost_add_participants_responses_add_once(open_server: RunningServer, pair: tuple[Chat, str, str]) -> None:
    owner, thread_id, _ = pair
    carol = make_user(open_server)
    proxy = DroppingProxy(upstream(open_server), drops=2, path_filter="/participants/:add")
    try:
        chat = Chat(proxy.url, owner.token)
        answer, attempts = retry_until_answered(
            chat, "POST", f"/chat/threads/{q(thread_id)}/participants/:add",
            {"participants": [{"communicationIdentifier": identifier(carol.id), "displayName": "Carol"}]},
            {"repeatability-request-id": str(uuid.uuid4())},
        )
    finally:
        proxy.close()
    assert (answer.status_code, answer.json(), attempts) == (201, {}, 3)
    added = [m for m in owner.messages(thread_id) if m["type"] == "participantAdded"]
    # one from the thread's creation, one from this add: the retries added nothing more
    assert len(added) == 2
    assert [p["communicationIdentifier"]["rawId"] for p in added[0]["content"]["participants"]] == [carol.id]
    members = owner.follow(f"/chat/threads/{q(thread_id)}/participants", 50)
    assert sum(1 for p in members if p["communicationIdentifier"]["rawId"] == carol.id) == 1


def test_lost_read_receipt_responses_record_one_receipt(
    open_server: RunningServer, pair: tuple[Chat, str, str]
) -> None:
    owner, thread_id, owner_id = pair
    message_id = owner.send(thread_id, "read me")
    proxy = DroppingProxy(upstream(open_server), drops=2, path_filter="/readReceipts")
    try:
        chat = Chat(proxy.url, owner.token)
        answer, attempts = retry_until_answered(
            chat, "POST", f"/chat/threads/{q(thread_id)}/readReceipts", {"chatMessageId": message_id},
            {"repeatability-request-id": str(uuid.uuid4())},
        )
    finally:
        proxy.close()
    assert (answer.status_code, answer.content, attempts) == (200, b"", 3)
    receipts = owner.follow(f"/chat/threads/{q(thread_id)}/readReceipts", 50)
    assert [(r["chatMessageId"], r["senderCommunicationIdentifier"]["rawId"]) for r in receipts] == [
        (message_id, owner_id)
    ]
