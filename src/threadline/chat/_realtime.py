"""Real-time notifications, the protocol half: resume, backoff and the frame state machine.

Shared by the sync and async ``ChatClient``; nothing here does I/O. The
connection loops (:mod:`threadline.chat.aio._realtime_connection` and
:mod:`threadline.chat._realtime_sync`) feed server frames to a
:class:`RealtimeSession` and do what it answers: dispatch events, send
replies, reconnect after a delay or give up. ``docs/realtime.md`` describes
the wire protocol.

The event models live in :mod:`threadline.chat._realtime_events` and the
parsing of event frames in :mod:`threadline.chat._realtime_parse`; both are
re-exported here, so every real-time name is importable from this module.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec

from ._realtime_events import (
    CHAT_EVENT_NAMES,
    ChatEvent,
    ChatMessageDeletedEvent,
    ChatMessageEditedEvent,
    ChatMessageReceivedEvent,
    ChatThreadCreatedEvent,
    ChatThreadDeletedEvent,
    ChatThreadProperties,
    ChatThreadPropertiesUpdatedEvent,
    ParticipantsAddedEvent,
    ParticipantsRemovedEvent,
    ReadReceiptReceivedEvent,
    RealTimeNotificationConnectedEvent,
    RealTimeNotificationDisconnectedEvent,
    ResumeGapEvent,
    TypingIndicatorReceivedEvent,
    check_event_name,
)
from ._realtime_parse import _decode, _str, parse_event

__all__ = [
    "CHAT_EVENT_NAMES",
    "CLOSE_BAD_REQUEST",
    "CLOSE_NORMAL",
    "CLOSE_REVOKED",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_UNAUTHORIZED",
    "Backoff",
    "ChatEvent",
    "ChatMessageDeletedEvent",
    "ChatMessageEditedEvent",
    "ChatMessageReceivedEvent",
    "ChatThreadCreatedEvent",
    "ChatThreadDeletedEvent",
    "ChatThreadProperties",
    "ChatThreadPropertiesUpdatedEvent",
    "CloseDecision",
    "FrameResult",
    "ParticipantsAddedEvent",
    "ParticipantsRemovedEvent",
    "ReadReceiptReceivedEvent",
    "RealTimeNotificationConnectedEvent",
    "RealTimeNotificationDisconnectedEvent",
    "RealtimeSession",
    "ResumeGapEvent",
    "TypingIndicatorReceivedEvent",
    "check_event_name",
    "parse_event",
    "realtime_url",
]

#: The server closed normally, or the stream ended on purpose.
CLOSE_NORMAL = 1000
#: The server is restarting: reconnect (it sent a ``reconnect`` frame first).
CLOSE_SERVICE_RESTART = 1012
#: A bad query parameter: reconnecting with the same request would fail again.
CLOSE_BAD_REQUEST = 4000
#: No token, a bad token or an expired one.
CLOSE_UNAUTHORIZED = 4001
#: The token was revoked or the identity deleted.
CLOSE_REVOKED = 4003


def realtime_url(endpoint: str, api_version: str | None, after: str | None, heartbeat: float | None) -> str:
    """The WebSocket URL of the real-time endpoint behind a REST endpoint.

    Args:
        endpoint: the chat endpoint (``https://host[:port][/prefix]``).
        api_version: sent as ``api-version`` when given.
        after: the resume token to continue after (None: from now on).
        heartbeat: the ``ping`` interval to ask for, in seconds.

    Returns:
        ``wss://host/chat/realtime?...`` (``ws://`` for an ``http://`` endpoint).
    """
    parts = urlsplit(endpoint.rstrip("/"))
    scheme = "ws" if parts.scheme.lower() == "http" else "wss"
    query: dict[str, str] = {}
    if api_version:
        query["api-version"] = api_version
    if after is not None:
        query["after"] = after
    if heartbeat is not None:
        query["heartbeat"] = f"{heartbeat:g}"
    return urlunsplit((scheme, parts.netloc, parts.path + "/chat/realtime", urlencode(query), ""))


class Backoff:
    """Exponential backoff with jitter: ``initial * 2**attempt`` capped at ``maximum``, times 0.5-1.

    Args:
        initial: the first delay in seconds.
        maximum: the largest delay.
        rand: a ``random.random``-like function (for tests).
    """

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, rand: Callable[[], float] | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0
        self._rand = rand or random.random

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one attempt.

        Returns:
            Seconds to wait.
        """
        exponent = min(self.attempt, 32)
        self.attempt += 1
        ceiling = min(self.maximum, self.initial * math.pow(2, exponent))
        return ceiling * (0.5 + self._rand() / 2)

    def reset(self) -> None:
        """Start over after a connection that worked."""
        self.attempt = 0


@dataclass(slots=True)
class FrameResult:
    """What to do with one server frame.

    Attributes:
        events: events to dispatch, in order.
        reply: a frame to send back (``pong``).
        synced: the stream just caught up (the first connect may stop waiting).
    """

    events: list[ChatEvent] = field(default_factory=list)
    reply: str | None = None
    synced: bool = False


@dataclass(frozen=True, slots=True)
class CloseDecision:
    """What to do once a connection has ended.

    Attributes:
        reconnect: whether to try again.
        delay: seconds to wait first.
        needs_new_token: only reconnect with a token other than the refused one.
    """

    reconnect: bool
    delay: float
    needs_new_token: bool = False


class RealtimeSession:
    """The client's side of the protocol across connections, without I/O.

    It remembers the resume token of the last frame received (opaque: the
    server's cursor over its event partitions), so every reconnect resumes
    after it; it turns frames into events; it decides when and whether to
    reconnect.

    Args:
        after: the resume token to start after (None: from the moment of connecting).
        backoff: the reconnect delays.
        heartbeat: the ``ping`` interval to ask the server for (None: the server's default).
    """

    def __init__(self, after: str | None = None, backoff: Backoff | None = None,
                 heartbeat: float | None = None) -> None:
        self.position = after
        self.backoff = backoff or Backoff()
        self.heartbeat = heartbeat
        self.server_heartbeat = heartbeat or 15.0
        self.connections = 0
        self.connection_id = ""
        self._retry_after: float | None = None

    def url(self, endpoint: str, api_version: str | None) -> str:
        """The URL of the next connection, resuming after the last position seen."""
        return realtime_url(endpoint, api_version, self.position, self.heartbeat)

    @property
    def read_timeout(self) -> float:
        """Seconds without any frame after which the connection is taken as dead."""
        return 2.5 * self.server_heartbeat + 2.0

    def on_frame(self, text: str | bytes) -> FrameResult:
        """Digest one server frame.

        Args:
            text: the frame's JSON text.

        Returns:
            The events to dispatch and the reply to send, if any.

        Raises:
            ValueError: the frame is not a JSON object with a ``type``.
        """
        try:
            frame = _decode(text)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise ValueError("a frame must be a JSON object with a type")
        kind: str = frame["type"]
        raw_position = frame.get("position")
        position = raw_position if isinstance(raw_position, str) else ""
        result = FrameResult()
        if kind == "ping":
            result.reply = '{"type":"pong"}'
        elif kind == "hello":
            self.connection_id = _str(frame.get("connectionId"))
            beat = frame.get("heartbeatSeconds")
            if isinstance(beat, int | float) and beat > 0:
                self.server_heartbeat = float(beat)
            if self.position is None and position:
                self.position = position
        elif kind == "resumeGap":
            requested = frame.get("requested")
            oldest = frame.get("oldest")
            self.position = position or self.position
            result.events.append(ResumeGapEvent(
                position=position, requested=requested if isinstance(requested, str) else "",
                oldest=oldest if isinstance(oldest, str) else "",
            ))
        elif kind == "synced":
            self.backoff.reset()
            result.synced = True
            result.events.append(RealTimeNotificationConnectedEvent(
                connection_id=self.connection_id, reconnected=self.connections > 0, position=position,
            ))
            self.connections += 1
        elif kind == "reconnect":
            retry = frame.get("retryAfterMs")
            self._retry_after = retry / 1000 if isinstance(retry, int | float) and retry >= 0 else None
        else:
            data = frame.get("data")
            event = parse_event(kind, position, data if isinstance(data, dict) else {})
            if position:  # the token after this frame's event: the server's cursor for this stream
                self.position = position
            if event is not None:
                result.events.append(event)
        return result

    def on_close(self, code: int | None) -> CloseDecision:
        """Decide what follows the end of a connection.

        Args:
            code: the close code (None when the connection broke without one).

        Returns:
            Whether and when to reconnect.
        """
        if code == CLOSE_BAD_REQUEST:
            return CloseDecision(False, 0.0)
        if code == CLOSE_SERVICE_RESTART and self._retry_after is not None:
            delay, self._retry_after = self._retry_after, None
            self.backoff.attempt += 1
            return CloseDecision(True, delay)
        self._retry_after = None
        delay = self.backoff.next_delay()
        return CloseDecision(True, delay, needs_new_token=code in (CLOSE_UNAUTHORIZED, CLOSE_REVOKED))
