"""The client's protocol state machine (no I/O): resume positions, frames, backoff, close decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from threadline.chat import ChatMessageReceivedEvent, CommunicationUserIdentifier, ResumeGapEvent
from threadline.chat._realtime import (
    CHAT_EVENT_NAMES,
    Backoff,
    RealTimeNotificationConnectedEvent,
    RealtimeSession,
    check_event_name,
    parse_event,
    realtime_url,
)

ALICE = "8:acs:r_alice"
MESSAGE = (
    '{"type":"chatMessageReceived","position":"p7","data":{"threadId":"19:t@thread.v2",'
    '"sender":{"kind":"communicationUser","communicationUserId":"8:acs:r_alice"},"senderDisplayName":"A",'
    '"id":"1700000000000","createdOn":"2023-11-14T22:13:20Z","version":"1700000000000","sequenceId":"3",'
    '"type":"Text","message":"hi","metadata":{"k":"v"},'
    '"recipient":{"kind":"communicationUser","communicationUserId":"8:acs:r_bob"}}}'
)


def test_urls() -> None:
    assert realtime_url("https://host:8443", "2024-03-07", None, None) == (
        "wss://host:8443/chat/realtime?api-version=2024-03-07"
    )
    assert realtime_url("http://127.0.0.1:8080/", None, "p2a.0.7", 1.5) == (
        "ws://127.0.0.1:8080/chat/realtime?after=p2a.0.7&heartbeat=1.5"
    )
    assert realtime_url("https://host/prefix", None, "p0", None) == "wss://host/prefix/chat/realtime?after=p0"


def test_backoff_doubles_up_to_the_cap_with_jitter_and_resets() -> None:
    low = Backoff(0.5, 4.0, rand=lambda: 0.0)  # the low end of the jitter: half the ceiling
    assert [low.next_delay() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    high = Backoff(0.5, 4.0, rand=lambda: 1.0)
    assert [high.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    high.reset()
    assert high.next_delay() == 0.5


def test_session_tracks_the_position_and_answers_pings() -> None:
    session = RealtimeSession(backoff=Backoff(rand=lambda: 0.0))
    assert session.url("https://h", None) == "wss://h/chat/realtime"
    hello = session.on_frame('{"type":"hello","connectionId":"c1","position":"p5","heartbeatSeconds":2}')
    assert hello.events == [] and session.position == "p5"
    assert session.read_timeout == 2.5 * 2 + 2
    synced = session.on_frame('{"type":"synced","position":"p5"}')
    assert synced.synced
    assert synced.events == [RealTimeNotificationConnectedEvent(connection_id="c1", reconnected=False, position="p5")]
    assert session.on_frame('{"type":"ping"}').reply == '{"type":"pong"}'
    (event,) = session.on_frame(MESSAGE).events
    assert session.position == "p7"
    assert session.url("https://h", None) == "wss://h/chat/realtime?after=p7"
    assert isinstance(event, ChatMessageReceivedEvent)
    assert event.sender == CommunicationUserIdentifier(ALICE)
    assert event.recipient == CommunicationUserIdentifier("8:acs:r_bob")
    assert event.created_on == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert (event.message, event.metadata, event.sequence_id, event.position) == ("hi", {"k": "v"}, "3", "p7")
    typing = session.on_frame(
        '{"type":"typingIndicatorReceived","position":"p7","data":{"threadId":"t","receivedOn":"2023-11-14T22:13:20Z"}}'
    )
    assert len(typing.events) == 1 and session.position == "p7"  # typing carries the stream's token, unchanged
    # a second connection: hello keeps the resume position, synced says "reconnected"
    session.on_frame('{"type":"hello","connectionId":"c2","position":"p7"}')
    again = session.on_frame('{"type":"synced","position":"p7"}')
    assert again.events == [RealTimeNotificationConnectedEvent(connection_id="c2", reconnected=True, position="p7")]


def test_resume_gap_moves_the_position_and_is_reported() -> None:
    session = RealtimeSession(after="p3")
    session.on_frame('{"type":"hello","connectionId":"c","position":"p90"}')
    assert session.position == "p3"
    gap = session.on_frame('{"type":"resumeGap","requested":"p3","oldest":"p91","position":"p90"}')
    assert gap.events == [ResumeGapEvent(requested="p3", oldest="p91", position="p90")]
    assert session.position == "p90"


def test_close_decisions() -> None:
    session = RealtimeSession(backoff=Backoff(1.0, 30.0, rand=lambda: 1.0))
    assert not session.on_close(4000).reconnect
    broken = session.on_close(None)
    assert (broken.reconnect, broken.delay, broken.needs_new_token) == (True, 1.0, False)
    assert session.on_close(4008).delay == 2.0
    refused = session.on_close(4001)
    assert refused.reconnect and refused.needs_new_token and refused.delay == 4.0
    assert session.on_close(4003).needs_new_token
    session.on_frame('{"type":"reconnect","reason":"shutdown","position":"p7","retryAfterMs":750}')
    restart = session.on_close(1012)
    assert (restart.reconnect, restart.delay) == (True, 0.75)
    session.on_frame('{"type":"synced","position":"p7"}')
    assert session.on_close(1006).delay == 1.0  # a live stream resets the backoff


def test_bad_frames_and_names() -> None:
    session = RealtimeSession()
    with pytest.raises(ValueError, match="not JSON"):
        session.on_frame("{")
    with pytest.raises(ValueError, match="type"):
        session.on_frame("[1]")
    assert parse_event("somethingNew", "p9", {}) is None
    assert session.on_frame('{"type":"somethingNew","position":"p9","data":{}}').events == []
    assert session.position == "p9"  # unknown events still count for the resume position
    with pytest.raises(ValueError, match="Unknown chat event"):
        check_event_name("messageReceived")
    assert len(CHAT_EVENT_NAMES) == 13 and "chatMessageReceived" in CHAT_EVENT_NAMES
