"""The unmodified browser build of ``@azure/communication-chat`` 1.6.0 in headless Chromium.

The page lives on an origin of its own and reaches Threadline over HTTPS (the
SDK refuses plain HTTP) with the endpoint written with a trailing ``/``, as
users write it: discovery, CORS, allocation, socket.io and every event kind
go through what a real web app would use.
"""

from __future__ import annotations

import base64
import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.communication.chat import ChatParticipant

from tests.conftest import ENGINES, RunningServer, launch
from tests.realtime.helpers import thread_client
from tests.support import new_user, official_chat
from threadline.identity.tokens import TokenIssuer, derive_signing_key

from .chromium import BrowserPage
from .nodes import restartable


@contextlib.contextmanager
def opened(chromium: Any, page_url: str) -> Iterator[BrowserPage]:
    """A fresh page (own context, trusting the server's self-signed certificate) at the test page."""
    context = chromium.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(page_url)
        yield BrowserPage(page)
    finally:
        context.close()


def _kind(user_id: str) -> dict[str, str]:
    return {"kind": "communicationUser", "communicationUserId": user_id}


def test_sdk_receives_all_ten_event_kinds(server: RunningServer, chromium: Any, page_url: str) -> None:
    alice, bob, carol = new_user(server), new_user(server), new_user(server)
    with opened(chromium, page_url) as page:
        page.start(server.https_endpoint + "/", alice.token)
        page.wait("window.threadline.connected >= 1")
        topic = "Ünïcode ☃ 😀 %41 \"quoted\""
        created = official_chat(server, bob).create_chat_thread(topic, thread_participants=[
            ChatParticipant(identifier=alice.identifier, display_name="Alice"),
            ChatParticipant(identifier=bob.identifier, display_name="Bob")])
        thread_id = str(created.chat_thread.id)
        bobs = thread_client(server, bob, thread_id)
        message_id = bobs.send_message("hi Alice 😀", sender_display_name="Bob", metadata={"k": "v"}).id
        page.wait("window.threadline.events.some(e => e.name === 'chatMessageReceived')")
        bobs.send_typing_notification(sender_display_name="Bob")
        bobs.update_message(message_id, content="hi Alice (edited)", metadata={"k": "v2"})
        bobs.send_read_receipt(message_id)
        read_on = next(iter(bobs.list_read_receipts())).read_on
        bobs.update_topic("new topic")
        bobs.add_participants([ChatParticipant(identifier=carol.identifier, display_name="Carol")])
        bobs.remove_participant(carol.identifier)
        bobs.delete_message(message_id)
        official_chat(server, bob).delete_chat_thread(thread_id)
        page.wait("window.threadline.events.some(e => e.name === 'chatThreadDeleted')")

        everything = page.events()
        assert {e["threadId"] for e in everything} == {thread_id}
        thread = page.events("chatThreadCreated")[0]
        assert thread["properties"]["topic"] == topic
        assert thread["createdBy"]["id"] == _kind(bob.id)
        assert thread["createdBy"]["displayName"] == "Bob"
        assert {(p["id"]["communicationUserId"], p["displayName"]) for p in thread["participants"]} == {
            (alice.id, "Alice"), (bob.id, "Bob")}
        assert thread["retentionPolicy"] == {"kind": "none"}
        assert thread["createdOn"].endswith("Z")

        received = page.events("chatMessageReceived")[0]
        assert received["id"] == message_id
        assert received["message"] == "hi Alice 😀"
        assert received["type"] == "Text"
        assert received["sender"] == _kind(bob.id)
        assert received["recipient"] == _kind(alice.id)
        assert received["senderDisplayName"] == "Bob"
        assert received["metadata"] == {"k": "v"}
        assert received["attachments"] == []
        assert received["version"] == message_id

        typing = page.events("typingIndicatorReceived")[0]
        assert typing["sender"] == _kind(bob.id)
        assert typing["senderDisplayName"] == "Bob"
        assert typing["recipient"] == _kind(alice.id)

        edited = page.events("chatMessageEdited")[0]
        assert edited["id"] == message_id
        assert edited["message"] == "hi Alice (edited)"
        assert edited["metadata"] == {"k": "v2"}
        assert edited["editedOn"] >= received["createdOn"]

        receipt = page.events("readReceiptReceived")[0]
        assert receipt["chatMessageId"] == message_id
        assert receipt["sender"] == _kind(bob.id)
        assert receipt["readOn"][:19] == read_on.strftime("%Y-%m-%dT%H:%M:%S")

        updated = page.events("chatThreadPropertiesUpdated")[0]
        assert updated["properties"]["topic"] == "new topic"
        assert updated["updatedBy"]["id"] == _kind(bob.id)

        added = page.events("participantsAdded")[0]
        assert [(p["id"]["communicationUserId"], p["displayName"]) for p in added["participantsAdded"]] == [
            (carol.id, "Carol")]
        assert added["addedBy"]["id"] == _kind(bob.id)
        removed = page.events("participantsRemoved")[0]
        assert [p["id"]["communicationUserId"] for p in removed["participantsRemoved"]] == [carol.id]
        assert removed["removedBy"]["id"] == _kind(bob.id)

        deleted = page.events("chatMessageDeleted")[0]
        assert deleted["id"] == message_id
        assert deleted["type"] == "Text"
        assert deleted["deletedOn"] >= received["createdOn"]

        gone = page.events("chatThreadDeleted")[0]
        assert gone["deletedBy"]["id"] == _kind(bob.id)
        kinds = [name for name in ("chatThreadCreated", "chatMessageReceived", "typingIndicatorReceived",
                                   "chatMessageEdited", "readReceiptReceived", "chatThreadPropertiesUpdated",
                                   "participantsAdded", "participantsRemoved", "chatMessageDeleted",
                                   "chatThreadDeleted") if page.events(name)]
        assert len(kinds) == 10
        assert page.value("window.threadline.disconnected") == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_page_survives_server_sigkill_and_misses_nothing(
    engine: str, tmp_path: Path, chromium: Any, page_url: str,
) -> None:
    data = tmp_path / "data"
    with restartable(engine, data) as (args, env):
        running: RunningServer = launch(data, *args, env=env)
        try:
            alice, bob = new_user(running), new_user(running)
            with opened(chromium, page_url) as page:
                refreshes: list[str] = []
                page.page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: refreshes.append(
                    str(frame)) if '"trouter.connected"' in str(frame) else None))
                page.start(running.https_endpoint + "/", alice.token)
                page.wait("window.threadline.connected >= 1")
                chat = official_chat(running, bob).create_chat_thread("restart", thread_participants=[
                    ChatParticipant(identifier=alice.identifier, display_name="Alice")])
                thread_id = str(chat.chat_thread.id)
                thread_client(running, bob, thread_id).send_message("before the crash")
                page.wait("window.threadline.arrivals['before the crash']")
                # The server refreshes the page's cached resume position once it has answered.
                deadline = time.monotonic() + 15
                while len(refreshes) < 2 and time.monotonic() < deadline:
                    page.page.wait_for_timeout(50)
                assert len(refreshes) >= 2, refreshes

                running.stop(signal.SIGKILL)
                page.wait("window.threadline.disconnected >= 1")
                running = launch(data, *args, env=env)
                bobs = thread_client(running, bob, thread_id)
                for text in ("while away 1", "while away 2"):
                    bobs.send_message(text)
                page.wait("window.threadline.connected >= 2", timeout=60)
                bobs.send_message("after the reconnect")
                page.wait("window.threadline.arrivals['after the reconnect']")

                texts = [e["message"] for e in page.events("chatMessageReceived")]
                assert texts == ["before the crash", "while away 1", "while away 2", "after the reconnect"]
                assert len(page.events("chatThreadCreated")) == 1  # nothing delivered twice
        finally:
            running.stop(signal.SIGKILL)


def test_sdk_falls_back_to_long_polling_when_websockets_fail(
    server: RunningServer, chromium: Any, page_url: str,
) -> None:
    alice, bob = new_user(server), new_user(server)
    refused: list[str] = []
    with opened(chromium, page_url) as page:

        def refuse(socket_route: Any) -> None:
            # A WebSocket that opens but never speaks (a proxy that swallows upgrades): after its
            # 10 s connect timeout, socket.io tries its next transport.
            refused.append(socket_route.url)

        page.page.route_web_socket("**/socket.io/1/websocket/**", refuse)
        polls: list[str] = []
        page.page.on("request", lambda request: polls.append(request.url) if "/xhr-polling/" in request.url else None)
        page.start(server.https_endpoint + "/", alice.token)
        page.wait("window.threadline.connected >= 1", timeout=60)
        chat = official_chat(server, bob).create_chat_thread("polling", thread_participants=[
            ChatParticipant(identifier=alice.identifier, display_name="Alice")])
        bobs = thread_client(server, bob, str(chat.chat_thread.id))
        for text in ("over polling 1", "over polling 2"):
            bobs.send_message(text, sender_display_name="Bob")
        page.wait("window.threadline.arrivals['over polling 2']", timeout=60)
        assert [e["message"] for e in page.events("chatMessageReceived")] == ["over polling 1", "over polling 2"]
        assert page.events("chatThreadCreated")[0]["properties"]["topic"] == "polling"
        assert refused, "the page never tried a WebSocket"
        assert polls, "the page never polled"


def test_token_expiry_disconnects_the_page(server: RunningServer, chromium: Any, page_url: str) -> None:
    alice = new_user(server)
    issuer = TokenIssuer(derive_signing_key(base64.b64decode(server.access_key)), server.resource_id)
    token, expires = issuer.issue(alice.id, ["chat"], 60, 0, now=time.time() - 3600 + 8)
    with opened(chromium, page_url) as page:
        page.start(server.https_endpoint + "/", token)
        page.wait("window.threadline.connected >= 1")
        assert page.value("window.threadline.disconnected") == 0
        page.wait("window.threadline.disconnected >= 1", timeout=30)
        assert time.time() >= expires  # not before the token's expiry
