"""Our SDK's real-time API (both twins) against a real server; actions through the official SDK."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime

import pytest
from azure.communication.chat import ChatParticipant
from azure.core.exceptions import ClientAuthenticationError

from tests.conftest import RunningServer
from tests.realtime.helpers import CutProxy, advancing, make_thread, thread_client
from tests.support import identity_client, new_user
from threadline.chat import ChatClient as SyncChatClient
from threadline.chat import (
    ChatEvent,
    ChatMessageDeletedEvent,
    ChatMessageEditedEvent,
    ChatMessageReceivedEvent,
    ChatThreadPropertiesUpdatedEvent,
    CommunicationUserIdentifier,
    ParticipantsAddedEvent,
    ParticipantsRemovedEvent,
    ReadReceiptReceivedEvent,
    RealTimeNotificationConnectedEvent,
    RealTimeNotificationDisconnectedEvent,
    TypingIndicatorReceivedEvent,
)
from threadline.chat import CommunicationTokenCredential as SyncCredential
from threadline.chat.aio import ChatClient, CommunicationTokenCredential


def _client(endpoint: str, token: str) -> ChatClient:
    return ChatClient(endpoint, CommunicationTokenCredential(token))


async def _until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_aio_two_users_see_each_other_in_real_time(server: RunningServer) -> None:
    alice, bob, carol = new_user(server), new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)
    alice_thread, bob_thread = thread_client(server, alice, thread_id), thread_client(server, bob, thread_id)

    async def main() -> tuple[list[ChatEvent], list[ChatEvent], list[ChatEvent]]:
        seen_by_alice: list[ChatEvent] = []
        seen_by_bob: list[ChatEvent] = []
        async_seen: list[ChatEvent] = []
        async with _client(server.http_endpoint, alice.token) as a, _client(server.http_endpoint, bob.token) as b:
            for name in ("chatMessageReceived", "chatMessageEdited", "chatMessageDeleted",
                         "typingIndicatorReceived", "readReceiptReceived", "chatThreadPropertiesUpdated",
                         "participantsAdded", "participantsRemoved", "realTimeNotificationConnected"):
                a.on(name, seen_by_alice.append)
                b.on(name, seen_by_bob.append)

            async def coroutine_handler(event: ChatEvent) -> None:
                await asyncio.sleep(0)
                async_seen.append(event)

            b.on("chatMessageReceived", coroutine_handler)
            await a.start_realtime_notifications()
            await b.start_realtime_notifications()
            sent = await asyncio.to_thread(alice_thread.send_message, "hi bob", sender_display_name="Alice")
            await asyncio.to_thread(bob_thread.send_message, "hi alice")
            await asyncio.to_thread(alice_thread.update_message, sent.id, content="hi bob!")
            await asyncio.to_thread(bob_thread.send_typing_notification, sender_display_name="Bob")
            await asyncio.to_thread(bob_thread.send_read_receipt, sent.id)
            await asyncio.to_thread(alice_thread.update_topic, "renamed")
            await asyncio.to_thread(alice_thread.add_participants, [ChatParticipant(identifier=carol.identifier)])
            await asyncio.to_thread(alice_thread.remove_participant, carol.identifier)
            await asyncio.to_thread(alice_thread.delete_message, sent.id)
            await _until(lambda: any(isinstance(e, ChatMessageDeletedEvent) for e in seen_by_bob)
                         and any(isinstance(e, ChatMessageDeletedEvent) for e in seen_by_alice))
            b.off("chatMessageReceived", coroutine_handler)
        return seen_by_alice, seen_by_bob, async_seen

    seen_by_alice, seen_by_bob, async_seen = asyncio.run(main())
    expected = [
        RealTimeNotificationConnectedEvent, ChatMessageReceivedEvent, ChatMessageReceivedEvent,
        ChatMessageEditedEvent, TypingIndicatorReceivedEvent, ReadReceiptReceivedEvent,
        ChatThreadPropertiesUpdatedEvent, ParticipantsAddedEvent, ParticipantsRemovedEvent, ChatMessageDeletedEvent,
    ]
    assert [type(e) for e in seen_by_alice] == expected
    assert [type(e) for e in seen_by_bob] == expected
    assert [e.message for e in async_seen if isinstance(e, ChatMessageReceivedEvent)] == ["hi bob", "hi alice"]

    first = seen_by_bob[1]
    assert isinstance(first, ChatMessageReceivedEvent)
    assert first.thread_id == thread_id and first.message == "hi bob" and first.type == "Text"
    assert first.sender == CommunicationUserIdentifier(alice.id)
    assert first.recipient == CommunicationUserIdentifier(bob.id)
    assert first.sender_display_name == "Alice"
    assert isinstance(first.created_on, datetime) and first.created_on.tzinfo is not None
    assert first.position.startswith("p") and first.raw["message"] == "hi bob"
    assert seen_by_alice[1].recipient == CommunicationUserIdentifier(alice.id)
    edited = seen_by_bob[3]
    assert isinstance(edited, ChatMessageEditedEvent) and edited.message == "hi bob!" and edited.edited_on
    typing = seen_by_alice[4]
    assert isinstance(typing, TypingIndicatorReceivedEvent)
    assert typing.sender == CommunicationUserIdentifier(bob.id) and typing.sender_display_name == "Bob"
    assert typing.position == seen_by_alice[3].position  # a typing indicator moves no cursor
    receipt = seen_by_alice[5]
    assert isinstance(receipt, ReadReceiptReceivedEvent) and receipt.chat_message_id == first.id
    topic = seen_by_bob[6]
    assert isinstance(topic, ChatThreadPropertiesUpdatedEvent) and topic.properties.topic == "renamed"
    assert topic.updated_by is not None and topic.updated_by.identifier == CommunicationUserIdentifier(alice.id)
    added = seen_by_bob[7]
    assert isinstance(added, ParticipantsAddedEvent)
    assert [p.identifier for p in added.participants_added] == [CommunicationUserIdentifier(carol.id)]
    removed = seen_by_bob[8]
    assert isinstance(removed, ParticipantsRemovedEvent)
    assert [p.identifier for p in removed.participants_removed] == [CommunicationUserIdentifier(carol.id)]
    deleted = seen_by_bob[9]
    assert isinstance(deleted, ChatMessageDeletedEvent) and deleted.id == first.id and deleted.deleted_on
    assert advancing([e.position for e in seen_by_bob if not isinstance(e, TypingIndicatorReceivedEvent)])


def test_aio_events_iterator_and_stop(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)
    alice_thread = thread_client(server, alice, thread_id)

    async def main() -> tuple[list[ChatEvent], list[ChatEvent]]:
        client = _client(server.http_endpoint, bob.token)
        got: list[ChatEvent] = []
        after_stop: list[ChatEvent] = []

        async def consume() -> None:
            async for event in client.events():  # starts the notifications itself
                got.append(event)

        consumer = asyncio.create_task(consume())
        await _until(lambda: any(isinstance(e, RealTimeNotificationConnectedEvent) for e in got))
        for i in range(5):
            await asyncio.to_thread(alice_thread.send_message, f"m{i}")
        await _until(lambda: sum(isinstance(e, ChatMessageReceivedEvent) for e in got) == 5)
        await client.stop_realtime_notifications()
        await asyncio.wait_for(consumer, 5)  # the iteration ends with the notifications
        client.on("chatMessageReceived", after_stop.append)
        await asyncio.to_thread(alice_thread.send_message, "unheard")
        await asyncio.sleep(0.3)
        await client.close()
        return got, after_stop

    got, after_stop = asyncio.run(main())
    assert isinstance(got[0], RealTimeNotificationConnectedEvent) and got[0].reconnected is False
    assert [e.message for e in got if isinstance(e, ChatMessageReceivedEvent)] == [f"m{i}" for i in range(5)]
    last = got[-1]
    assert isinstance(last, RealTimeNotificationDisconnectedEvent)
    assert (last.code, last.will_reconnect) == (1000, False)
    assert after_stop == []


def test_aio_reconnects_and_resumes_without_gap_or_duplicate(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)
    alice_thread = thread_client(server, alice, thread_id)
    port = int(server.http_endpoint.rsplit(":", 1)[1])
    count = 40

    async def main() -> tuple[list[ChatEvent], CutProxy]:
        proxy = CutProxy(port)
        await proxy.start()
        got: list[ChatEvent] = []
        client = _client(proxy.endpoint, bob.token)
        for name in ("chatMessageReceived", "realTimeNotificationConnected", "realTimeNotificationDisconnected"):
            client.on(name, got.append)
        await client.start_realtime_notifications()

        async def send(first: int, last: int) -> None:
            for i in range(first, last):
                await asyncio.to_thread(alice_thread.send_message, f"n{i}")

        def heard() -> int:
            return sum(isinstance(e, ChatMessageReceivedEvent) for e in got)

        def connections() -> int:
            return sum(isinstance(e, RealTimeNotificationConnectedEvent) for e in got)

        sender = asyncio.create_task(send(0, 15))
        await _until(lambda: heard() >= 8)
        proxy.cut()  # mid-stream: the rest of the batch is sent while the client is away
        await sender
        await send(15, 25)
        await _until(lambda: connections() == 2 and heard() >= 20)
        proxy.cut()
        await send(25, count)
        await _until(lambda: connections() == 3 and heard() >= count, 20)
        await asyncio.sleep(0.3)
        await client.close()
        await proxy.stop()
        return got, proxy

    got, proxy = asyncio.run(main())
    messages = [e for e in got if isinstance(e, ChatMessageReceivedEvent)]
    assert [e.message for e in messages] == [f"n{i}" for i in range(count)]
    assert proxy.connections == 3
    connected = [e for e in got if isinstance(e, RealTimeNotificationConnectedEvent)]
    assert [e.reconnected for e in connected] == [False, True, True]
    drops = [e for e in got if isinstance(e, RealTimeNotificationDisconnectedEvent)]
    assert [(e.code, e.will_reconnect) for e in drops[:2]] == [(1006, True), (1006, True)]
    assert all(0.25 <= e.retry_in <= 1.0 for e in drops[:2])
    assert drops[-1].code == 1000 and not drops[-1].will_reconnect


def test_aio_refused_token_raises_and_does_not_retry(server: RunningServer) -> None:
    user = new_user(server)
    identity_client(server).revoke_tokens(user.identifier)

    async def main() -> list[ChatEvent]:
        seen: list[ChatEvent] = []
        client = _client(server.http_endpoint, user.token)
        client.on("realTimeNotificationDisconnected", seen.append)
        with pytest.raises(ClientAuthenticationError, match="4003"):
            await client.start_realtime_notifications()
        await client.close()
        return seen

    seen = asyncio.run(main())
    assert len(seen) == 1
    assert isinstance(seen[0], RealTimeNotificationDisconnectedEvent)
    assert (seen[0].code, seen[0].will_reconnect) == (4003, False)


def test_sync_client_calls_handlers_from_a_background_thread(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)
    alice_thread = thread_client(server, alice, thread_id)
    threads: list[str] = []
    received: list[ChatMessageReceivedEvent] = []
    done = threading.Event()

    def on_message(event: ChatMessageReceivedEvent) -> None:
        threads.append(threading.current_thread().name)
        received.append(event)
        if len(received) == 3:
            done.set()

    with SyncChatClient(server.http_endpoint, SyncCredential(bob.token)) as client:
        client.on("chatMessageReceived", on_message)
        client.start_realtime_notifications()
        position = client.realtime_position
        for i in range(3):
            alice_thread.send_message(f"s{i}")
        assert done.wait(10)
        client.off("chatMessageReceived", on_message)
        # The iterator's queue exists from its first next() on (the stream is live already, so no
        # connected event comes first): typing notifications go out until it yields one, and only
        # then the message, which therefore cannot be missed.
        iterator = client.events()
        first: list[ChatEvent] = []
        consumer = threading.Thread(target=lambda: first.append(next(iterator)), daemon=True)
        consumer.start()
        deadline = time.monotonic() + 10
        while consumer.is_alive():
            assert time.monotonic() < deadline, "events() yielded nothing"
            alice_thread.send_typing_notification()
            consumer.join(0.2)
        assert isinstance(first[0], TypingIndicatorReceivedEvent)
        alice_thread.send_message("not for the handler")
        event = next(e for e in iterator if isinstance(e, ChatMessageReceivedEvent))
        assert event.message == "not for the handler"
        client.stop_realtime_notifications()
        assert list(iterator)[-1] == RealTimeNotificationDisconnectedEvent(code=1000, reason="stopped")
    assert [e.message for e in received] == ["s0", "s1", "s2"]
    assert set(threads) == {"threadline-realtime"}
    assert position is not None and advancing([position, received[0].position])
