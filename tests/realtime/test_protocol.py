"""The /chat/realtime protocol on the wire: raw WebSockets against a real server.

Actions go through the official SDK; every frame is read as JSON as any
client would.
"""

from __future__ import annotations

import asyncio
from typing import Any

from azure.communication.chat import ChatParticipant

from tests.conftest import RunningServer
from tests.realtime.helpers import RawStream, advancing, make_thread, open_stream, thread_client, ws_url
from tests.support import new_user


def _user_kind(user_id: str) -> dict[str, str]:
    return {"kind": "communicationUser", "communicationUserId": user_id}


def _stored(stream: RawStream) -> list[str]:
    """The resume tokens of the stream's stored (not typing) events."""
    return [f["position"] for f in stream.events if f["type"] != "typingIndicatorReceived"]


def test_hello_then_events_with_js_fields_and_recipient(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob, topic="first topic")
    alice_thread = thread_client(server, alice, thread_id)

    async def main() -> tuple[RawStream, RawStream, str]:
        a = await open_stream(ws_url(server, "api-version=2024-03-07"), alice.token)
        b = await open_stream(ws_url(server), bob.token)
        message_id = (await asyncio.to_thread(
            alice_thread.send_message, "hello bob", sender_display_name="Alice", metadata={"k": "v"}
        )).id
        await a.wait_type("chatMessageReceived")
        await b.wait_type("chatMessageReceived")
        await a.close()
        await b.close()
        return a, b, message_id

    a, b, message_id = asyncio.run(main())
    hello = b.frames[0]
    assert hello["type"] == "hello"
    assert hello["user"] == _user_kind(bob.id)
    assert hello["heartbeatSeconds"] == 15.0
    assert isinstance(hello["connectionId"], str) and len(hello["connectionId"]) == 32
    assert hello["position"] == hello["latest"]  # no ?after=: from now on
    assert b.frames[1] == {"type": "synced", "position": hello["position"]}
    for stream, me in ((a, alice), (b, bob)):  # the sender receives its own message too
        (frame,) = stream.of_type("chatMessageReceived")
        assert advancing([hello["position"], frame["position"]])
        data = frame["data"]
        assert data["threadId"] == thread_id
        assert data["id"] == message_id
        assert data["message"] == "hello bob"
        assert data["type"] == "Text"
        assert data["senderDisplayName"] == "Alice"
        assert data["metadata"] == {"k": "v"}
        assert data["sender"] == _user_kind(alice.id)
        assert data["recipient"] == _user_kind(me.id)
        assert data["version"] == message_id
        assert data["createdOn"].endswith("Z")


def test_every_event_kind_reaches_both_members(server: RunningServer) -> None:
    alice, bob, carol = new_user(server), new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)
    alice_thread, bob_thread = thread_client(server, alice, thread_id), thread_client(server, bob, thread_id)

    async def main() -> tuple[RawStream, RawStream]:
        a = await open_stream(ws_url(server), alice.token)
        b = await open_stream(ws_url(server), bob.token)
        sent = await asyncio.to_thread(alice_thread.send_message, "v1")
        await asyncio.to_thread(alice_thread.update_message, sent.id, content="v2")
        await asyncio.to_thread(bob_thread.send_typing_notification, sender_display_name="Bob")
        await asyncio.to_thread(bob_thread.send_read_receipt, sent.id)
        await asyncio.to_thread(alice_thread.delete_message, sent.id)
        await asyncio.to_thread(alice_thread.update_topic, "new topic")
        await asyncio.to_thread(
            alice_thread.add_participants, [ChatParticipant(identifier=carol.identifier, display_name="Carol")]
        )
        await asyncio.to_thread(alice_thread.remove_participant, carol.identifier)
        for stream in (a, b):
            await stream.wait_type("participantsRemoved")
        await a.close()
        await b.close()
        return a, b

    a, b = asyncio.run(main())
    expected = [
        "chatMessageReceived", "chatMessageEdited", "typingIndicatorReceived", "readReceiptReceived",
        "chatMessageDeleted", "chatThreadPropertiesUpdated", "participantsAdded", "participantsRemoved",
    ]
    for stream, me in ((a, alice), (b, bob)):
        kinds = [f["type"] for f in stream.events]
        assert kinds == expected
        assert all(f["data"]["recipient"] == _user_kind(me.id) for f in stream.events)
        assert advancing(_stored(stream))  # in order, nothing twice
        by_type: dict[str, dict[str, Any]] = {f["type"]: f["data"] for f in stream.events}
        assert by_type["chatMessageEdited"]["message"] == "v2"
        assert by_type["chatMessageEdited"]["editedOn"].endswith("Z")
        assert "deletedOn" in by_type["chatMessageDeleted"] and "message" not in by_type["chatMessageDeleted"]
        typing = by_type["typingIndicatorReceived"]
        assert typing["sender"] == _user_kind(bob.id) and typing["senderDisplayName"] == "Bob"
        at = next(i for i, f in enumerate(stream.events) if f["type"] == "typingIndicatorReceived")
        assert stream.events[at]["position"] == stream.events[at - 1]["position"]  # typing moves no cursor
        receipt = by_type["readReceiptReceived"]
        assert receipt["sender"] == _user_kind(bob.id)
        assert receipt["chatMessageId"] == by_type["chatMessageReceived"]["id"]
        assert by_type["chatThreadPropertiesUpdated"]["properties"] == {"topic": "new topic"}
        assert by_type["chatThreadPropertiesUpdated"]["updatedBy"] == {"id": _user_kind(alice.id)}
        added = by_type["participantsAdded"]
        assert [p["id"] for p in added["participantsAdded"]] == [_user_kind(carol.id)]
        assert added["participantsAdded"][0]["displayName"] == "Carol"
        assert added["addedBy"] == {"id": _user_kind(alice.id)}
        removed = by_type["participantsRemoved"]
        assert [p["id"] for p in removed["participantsRemoved"]] == [_user_kind(carol.id)]


def test_thread_created_and_deleted(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def main() -> tuple[RawStream, str]:
        b = await open_stream(ws_url(server), bob.token)
        thread_id = await asyncio.to_thread(make_thread, server, alice, bob, topic="born")
        await b.wait_type("chatThreadCreated")
        from tests.support import official_chat

        await asyncio.to_thread(official_chat(server, alice).delete_chat_thread, thread_id)
        await b.wait_type("chatThreadDeleted")
        await b.close()
        return b, thread_id

    b, thread_id = asyncio.run(main())
    created = b.of_type("chatThreadCreated")[0]["data"]
    assert created["threadId"] == thread_id
    assert created["properties"] == {"topic": "born"}
    assert created["createdBy"] == {"id": _user_kind(alice.id)}
    assert {p["id"]["communicationUserId"] for p in created["participants"]} == {alice.id, bob.id}
    deleted = b.of_type("chatThreadDeleted")[0]["data"]
    assert deleted["threadId"] == thread_id and deleted["deletedBy"] == {"id": _user_kind(alice.id)}


def test_no_events_of_threads_the_user_is_not_in(server: RunningServer) -> None:
    alice, bob, eve = new_user(server), new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)
    alice_thread = thread_client(server, alice, thread_id)

    async def main() -> RawStream:
        e = await open_stream(ws_url(server, "after=0"), eve.token)  # even a full replay shows nothing of it
        for i in range(3):
            await asyncio.to_thread(alice_thread.send_message, f"secret {i}")
        await asyncio.to_thread(alice_thread.send_typing_notification)
        # A marker eve does take part in: once it arrives, anything else would have arrived before it.
        own = await asyncio.to_thread(make_thread, server, eve, topic="eve's own")
        await e.wait_type("chatThreadCreated")
        await e.close()
        return e, own

    e, own = asyncio.run(main())
    assert [f["data"]["threadId"] for f in e.events] == [own]


def test_removed_member_stops_and_added_member_starts_at_once(server: RunningServer) -> None:
    alice, bob, carol = new_user(server), new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)
    alice_thread = thread_client(server, alice, thread_id)

    async def main() -> tuple[RawStream, RawStream, RawStream]:
        a = await open_stream(ws_url(server), alice.token)
        b = await open_stream(ws_url(server), bob.token)
        c = await open_stream(ws_url(server), carol.token)
        await asyncio.to_thread(alice_thread.send_message, "before")
        await asyncio.to_thread(alice_thread.remove_participant, bob.identifier)
        await asyncio.to_thread(alice_thread.add_participants, [ChatParticipant(identifier=carol.identifier)])
        await asyncio.to_thread(alice_thread.send_message, "after")
        await asyncio.to_thread(alice_thread.send_typing_notification)
        await a.wait_type("typingIndicatorReceived")
        await c.wait_type("typingIndicatorReceived")
        # bob's marker: a thread of his own, created after everything above
        await asyncio.to_thread(make_thread, server, bob, topic="bob's marker")
        await b.wait_type("chatThreadCreated")
        for s in (a, b, c):
            await s.close()
        return a, b, c

    a, b, c = asyncio.run(main())
    assert [f["type"] for f in a.events] == [
        "chatMessageReceived", "participantsRemoved", "participantsAdded", "chatMessageReceived",
        "typingIndicatorReceived",
    ]
    # bob: the message before, and his own removal; nothing after it
    assert [f["type"] for f in b.events] == ["chatMessageReceived", "participantsRemoved", "chatThreadCreated"]
    assert b.events[0]["data"]["message"] == "before"
    assert b.events[2]["data"]["properties"] == {"topic": "bob's marker"}
    # carol: her own addition, then everything after it
    assert [f["type"] for f in c.events] == ["participantsAdded", "chatMessageReceived", "typingIndicatorReceived"]
    assert c.events[1]["data"]["message"] == "after"


def test_resume_replays_exactly_what_came_after(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)
    alice_thread = thread_client(server, alice, thread_id)
    texts = [f"m{i}" for i in range(12)]

    async def main() -> tuple[RawStream, RawStream]:
        first = await open_stream(ws_url(server, "after=0"), bob.token)
        await first.close()
        for text in texts:
            await asyncio.to_thread(alice_thread.send_message, text)
        everything = await open_stream(ws_url(server, "after=0"), bob.token)
        await everything.close()
        cut = everything.events[5]["position"]
        rest = await open_stream(ws_url(server, f"after={cut}"), bob.token)
        await rest.close()
        return everything, rest

    everything, rest = asyncio.run(main())
    messages = [f["data"]["message"] for f in everything.events if f["type"] == "chatMessageReceived"]
    assert messages == texts
    assert everything.events[0]["type"] == "chatThreadCreated"
    cut = everything.events[5]["position"]
    assert rest.frames[0]["type"] == "hello" and rest.frames[0]["position"] == cut
    assert [f["position"] for f in rest.events] == [f["position"] for f in everything.events[6:]]
    assert rest.frames[-1] == {"type": "synced", "position": everything.events[-1]["position"]}


def test_cut_mid_stream_and_reopened_misses_and_repeats_nothing(server: RunningServer) -> None:
    """Messages keep coming while the stream is cut and reopened from its last position."""
    alice, bob = new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)
    alice_thread = thread_client(server, alice, thread_id)
    count = 60

    async def main() -> list[str]:
        received: list[dict[str, Any]] = []
        stream = await open_stream(ws_url(server), bob.token)

        async def send_all() -> None:
            for i in range(count):
                await asyncio.to_thread(alice_thread.send_message, f"n{i}")

        sender = asyncio.create_task(send_all())
        for cut_after in (10, 30, 45):
            goal = cut_after - len(received)
            await stream.wait_for(lambda s, n=goal: len(s.events) >= n, 30)
            received += stream.events
            await stream.close()  # mid-stream: the sender goes on meanwhile
            last = received[-1]["position"]
            stream = await open_stream(ws_url(server, f"after={last}"), bob.token, synced=False)
        await sender
        goal = count - len(received)
        await stream.wait_for(lambda s, n=goal: len(s.events) >= n, 30)
        await asyncio.sleep(0.3)  # nothing more may come
        received += stream.events
        await stream.close()
        positions = [f["position"] for f in received]
        assert advancing(positions), positions
        return [f["data"]["message"] for f in received]

    assert asyncio.run(main()) == [f"n{i}" for i in range(count)]


def test_bad_requests_and_tokens_are_closed_with_documented_codes(server: RunningServer) -> None:
    alice = new_user(server)

    async def close_code(url: str, token: str | None) -> tuple[int, str]:
        stream = await open_stream(url, token, synced=False)
        code = await stream.wait_closed()
        await stream.close()
        return code, stream.close_reason

    async def main() -> dict[str, tuple[int, str]]:
        return {
            "no token": await close_code(ws_url(server), None),
            "garbage": await close_code(ws_url(server), "not-a-token"),
            "bad after": await close_code(ws_url(server, "after=-1"), alice.token),
            "bad version": await close_code(ws_url(server, "api-version=1999-01-01"), alice.token),
            "bad heartbeat": await close_code(ws_url(server, "heartbeat=0.01"), alice.token),
        }

    codes = asyncio.run(main())
    assert codes["no token"] == (4001, "No access token.")
    assert codes["garbage"][0] == 4001
    assert codes["bad after"] == (4000, "after must be a token from a previous event's position.")
    assert codes["bad version"] == (4000, "api-version 1999-01-01 is not supported.")
    assert codes["bad heartbeat"][0] == 4000


def test_token_in_query_parameter(server: RunningServer) -> None:
    alice = new_user(server)

    async def main() -> RawStream:
        stream = await open_stream(ws_url(server, f"access_token={alice.token}"))
        await stream.close()
        return stream

    stream = asyncio.run(main())
    assert stream.frames[0]["user"] == _user_kind(alice.id)


def test_heartbeat_pings_and_timeout(server: RunningServer) -> None:
    alice = new_user(server)

    async def main() -> tuple[RawStream, RawStream, float]:
        alive = await open_stream(ws_url(server, "heartbeat=1"), alice.token)
        silent = await open_stream(ws_url(server, "heartbeat=1"), alice.token)
        silent.answer_pings = False
        start = asyncio.get_running_loop().time()
        code = await silent.wait_closed(10)
        elapsed = asyncio.get_running_loop().time() - start
        assert code == 4002
        await alive.wait_type("ping", 4)  # past the silent one's deadline, twice over
        assert alive.close_code is None  # answering pings keeps it open
        await alive.close()
        await silent.close()
        return alive, silent, elapsed

    alive, silent, elapsed = asyncio.run(main())
    assert alive.frames[0]["heartbeatSeconds"] == 1.0
    assert len(alive.of_type("ping")) >= 4
    assert 2.0 <= elapsed <= 5.0
    assert silent.close_reason == "No pong from the client."


def test_client_ping_gets_pong(server: RunningServer) -> None:
    alice = new_user(server)

    async def main() -> RawStream:
        stream = await open_stream(ws_url(server), alice.token)
        await stream.ws.send_str('{"type":"ping"}')
        await stream.wait_type("pong")
        await stream.close()
        return stream

    assert asyncio.run(main()).of_type("pong") == [{"type": "pong"}]
