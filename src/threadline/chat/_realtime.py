"""Real-time notifications, the protocol half: event models, frame parsing, resume and backoff.

Shared by the sync and async ``ChatClient``; nothing here does I/O. The
connection loops (:mod:`threadline.chat.aio._realtime` and
:mod:`threadline.chat._realtime_sync`) feed server frames to a
:class:`RealtimeSession` and do what it answers: dispatch events, send
replies, reconnect after a delay or give up. ``docs/realtime.md`` describes
the wire protocol.

Event classes carry the fields of the ACS JS SDK events (``chatMessageReceived``
and the others), in snake_case with Python types: identifiers as
:class:`CommunicationIdentifier`, times as aware :class:`datetime`, participants
as :class:`ChatParticipant`. Each also has ``position`` (its place in the
server's event log, 0 for typing indicators) and ``raw`` (the JSON as received).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec

from threadline._shared.identifiers import (
    CommunicationIdentifier,
    UnknownIdentifier,
    identifier_from_raw_id,
)
from threadline.protocol.times import parse_iso

from ._models import ChatAttachment, ChatAttachmentType, ChatParticipant
from ._retention import ChatRetentionPolicy, retention_from_wire

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

_decode = msgspec.json.Decoder().decode


# -- models ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatThreadProperties:
    """The properties carried by thread events (``properties`` in the JS SDK).

    Attributes:
        topic: the thread topic.
        metadata: the thread metadata (empty when it has none).
    """

    topic: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatEvent:
    """Base of every real-time event.

    Attributes:
        position: the opaque resume token after this event (pass it as ``resume_after``
            to continue after it); for typing indicators and connection events, the
            token of the stream at that moment.
        raw: the event's JSON ``data`` as received (empty for connection events).
    """

    name: ClassVar[str] = ""
    position: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class _ThreadEvent(ChatEvent):
    thread_id: str
    recipient: CommunicationIdentifier | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _SenderEvent(_ThreadEvent):
    sender: CommunicationIdentifier | None = None
    sender_display_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessageReceivedEvent(_SenderEvent):
    """``chatMessageReceived``: a message was sent to a thread the user is in (its own included).

    Attributes:
        thread_id: the thread.
        sender: who sent the message.
        sender_display_name: the sender's display name ("" when none).
        recipient: the user this connection belongs to.
        id: the message id.
        created_on: when the message was sent.
        version: the message version.
        type: ``Text`` or ``RichText/Html``, as the JS SDK names them.
        message: the content.
        metadata: the message metadata.
        sequence_id: the message's sequence id in its thread.
        attachments: the images attached (2024-06-05-preview); their ``url``/``preview_url``
            are relative to the endpoint (or use ``ChatThreadClient.get_image(id)``).
    """

    name: ClassVar[str] = "chatMessageReceived"
    id: str
    created_on: datetime
    version: str
    type: str = "Text"
    message: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    sequence_id: str | None = None
    attachments: list[ChatAttachment] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessageEditedEvent(ChatMessageReceivedEvent):
    """``chatMessageEdited``: the received-event fields plus ``edited_on``."""

    name: ClassVar[str] = "chatMessageEdited"
    edited_on: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessageDeletedEvent(_SenderEvent):
    """``chatMessageDeleted``: a message was deleted.

    Attributes:
        id: the message id.
        created_on: when the message was sent.
        version: the message version.
        sequence_id: the message's sequence id.
        deleted_on: when it was deleted.
    """

    name: ClassVar[str] = "chatMessageDeleted"
    id: str
    created_on: datetime
    version: str
    sequence_id: str | None = None
    deleted_on: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TypingIndicatorReceivedEvent(_SenderEvent):
    """``typingIndicatorReceived``: a member is typing (never stored, never replayed).

    Attributes:
        received_on: when the server received it.
        version: its version.
    """

    name: ClassVar[str] = "typingIndicatorReceived"
    received_on: datetime
    version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadReceiptReceivedEvent(_SenderEvent):
    """``readReceiptReceived``: a member (the sender) has read up to a message.

    Attributes:
        chat_message_id: the message read.
        read_on: when.
    """

    name: ClassVar[str] = "readReceiptReceived"
    chat_message_id: str
    read_on: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatThreadCreatedEvent(_ThreadEvent):
    """``chatThreadCreated``.

    Attributes:
        version: the thread version.
        created_on: when it was created.
        properties: its properties (topic).
        participants: its first members.
        created_by: its creator.
        retention_policy: its retention policy, if any.
    """

    name: ClassVar[str] = "chatThreadCreated"
    version: str
    created_on: datetime
    properties: ChatThreadProperties
    participants: list[ChatParticipant] = field(default_factory=list)
    created_by: ChatParticipant | None = None
    retention_policy: ChatRetentionPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatThreadPropertiesUpdatedEvent(_ThreadEvent):
    """``chatThreadPropertiesUpdated``.

    Attributes:
        version: the thread version.
        properties: the new properties.
        updated_on: when.
        updated_by: by whom.
        retention_policy: the retention policy after the update, if any.
    """

    name: ClassVar[str] = "chatThreadPropertiesUpdated"
    version: str
    properties: ChatThreadProperties
    updated_on: datetime
    updated_by: ChatParticipant | None = None
    retention_policy: ChatRetentionPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatThreadDeletedEvent(_ThreadEvent):
    """``chatThreadDeleted``.

    Attributes:
        version: the thread version.
        deleted_on: when.
        deleted_by: by whom.
    """

    name: ClassVar[str] = "chatThreadDeleted"
    version: str
    deleted_on: datetime
    deleted_by: ChatParticipant | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantsAddedEvent(_ThreadEvent):
    """``participantsAdded``.

    Attributes:
        version: the event version.
        added_on: when.
        participants_added: who joined.
        added_by: who added them.
    """

    name: ClassVar[str] = "participantsAdded"
    version: str
    added_on: datetime
    participants_added: list[ChatParticipant] = field(default_factory=list)
    added_by: ChatParticipant | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantsRemovedEvent(_ThreadEvent):
    """``participantsRemoved``.

    Attributes:
        version: the event version.
        removed_on: when.
        participants_removed: who left.
        removed_by: who removed them.
    """

    name: ClassVar[str] = "participantsRemoved"
    version: str
    removed_on: datetime
    participants_removed: list[ChatParticipant] = field(default_factory=list)
    removed_by: ChatParticipant | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RealTimeNotificationConnectedEvent(ChatEvent):
    """``realTimeNotificationConnected``: the stream is live and everything missed has been delivered.

    Attributes:
        connection_id: the server's id for this connection.
        reconnected: False for the first connection of a start, True afterwards.
    """

    name: ClassVar[str] = "realTimeNotificationConnected"
    connection_id: str = ""
    reconnected: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RealTimeNotificationDisconnectedEvent(ChatEvent):
    """``realTimeNotificationDisconnected``: the stream broke or was stopped.

    Attributes:
        code: the WebSocket close code (1006 when the connection just broke).
        reason: the close reason.
        will_reconnect: whether the client will try again.
        retry_in: seconds until the next attempt (0 when it will not reconnect).
    """

    name: ClassVar[str] = "realTimeNotificationDisconnected"
    code: int = 1006
    reason: str = ""
    will_reconnect: bool = False
    retry_in: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeGapEvent(ChatEvent):
    """``resumeGap`` (Threadline only): events after ``requested`` are gone from the server's log.

    Events from ``oldest`` on follow; re-read what happened before through
    the REST API (``list_messages``, ``list_participants``...).

    Attributes:
        requested: the token (or old integer position) the client asked to resume after.
        oldest: the token that resumes from the oldest event the server still has.
    """

    name: ClassVar[str] = "resumeGap"
    requested: str = ""
    oldest: str = ""


_CHAT_EVENTS: tuple[type[ChatEvent], ...] = (
    ChatMessageReceivedEvent,
    ChatMessageEditedEvent,
    ChatMessageDeletedEvent,
    TypingIndicatorReceivedEvent,
    ReadReceiptReceivedEvent,
    ChatThreadCreatedEvent,
    ChatThreadDeletedEvent,
    ChatThreadPropertiesUpdatedEvent,
    ParticipantsAddedEvent,
    ParticipantsRemovedEvent,
    RealTimeNotificationConnectedEvent,
    RealTimeNotificationDisconnectedEvent,
    ResumeGapEvent,
)
#: Every name :meth:`ChatClient.on` accepts: the JS SDK's ``ChatEventId`` values and ``resumeGap``.
CHAT_EVENT_NAMES: tuple[str, ...] = tuple(cls.name for cls in _CHAT_EVENTS)


def check_event_name(name: str) -> str:
    """Return ``name`` if it is an event name.

    Raises:
        ValueError: not one of :data:`CHAT_EVENT_NAMES`.
    """
    if name not in CHAT_EVENT_NAMES:
        raise ValueError(f"Unknown chat event {name!r}; expected one of {', '.join(CHAT_EVENT_NAMES)}.")
    return name


# -- parsing -----------------------------------------------------------------------------------------


def _identifier(value: Any) -> CommunicationIdentifier | None:
    """A JS ``CommunicationIdentifierKind`` dict as an identifier."""
    if not isinstance(value, dict):
        return None
    raw = value.get("rawId") or value.get("communicationUserId") or value.get("id")
    if not isinstance(raw, str) or not raw:
        return None
    if value.get("kind") == "unknown":
        return UnknownIdentifier(raw)
    return identifier_from_raw_id(raw)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _required_time(value: Any) -> datetime:
    moment = _time(value)
    if moment is None:
        raise ValueError(f"not a date-time: {value!r}")
    return moment


def _participant(value: Any) -> ChatParticipant | None:
    if not isinstance(value, dict):
        return None
    identifier = _identifier(value.get("id"))
    if identifier is None:
        return None
    return ChatParticipant(
        identifier=identifier,
        display_name=value.get("displayName"),
        share_history_time=_time(value.get("shareHistoryTime")),
        metadata=_metadata(value["metadata"]) if "metadata" in value else None,
    )


def _participants(value: Any) -> list[ChatParticipant]:
    if not isinstance(value, list):
        return []
    return [p for p in (_participant(v) for v in value) if p is not None]


def _properties(value: Any) -> ChatThreadProperties:
    topic = value.get("topic") if isinstance(value, dict) else None
    metadata = _metadata(value.get("metadata")) if isinstance(value, dict) else {}
    return ChatThreadProperties(topic=topic if isinstance(topic, str) else "", metadata=metadata)


def _retention(value: Any) -> ChatRetentionPolicy | None:
    return retention_from_wire(value) if isinstance(value, dict) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _metadata(value: Any) -> dict[str, str]:
    if isinstance(value, str):  # the raw Trouter form is a JSON string
        try:
            value = _decode(value) if value else {}
        except msgspec.DecodeError:
            return {}
    return {str(k): _str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _attachments(value: Any) -> list[ChatAttachment]:
    if isinstance(value, str):  # the raw Trouter form is a JSON string
        try:
            value = _decode(value) if value else []
        except msgspec.DecodeError:
            return []
    if not isinstance(value, list):
        return []
    found = []
    for item in value:
        if isinstance(item, dict) and item.get("id"):
            kind = _str(item.get("attachmentType"))
            found.append(ChatAttachment(
                id=_str(item["id"]),
                attachment_type=ChatAttachmentType(kind) if kind in ("image", "file") else kind,
                name=item.get("name"), url=item.get("url"), preview_url=item.get("previewUrl"),
            ))
    return found


def parse_event(name: str, position: str, data: dict[str, Any]) -> ChatEvent | None:
    """Build the event model of one server event frame.

    Args:
        name: the frame's ``type`` (``chatMessageReceived``...).
        position: the frame's ``position`` (a resume token).
        data: the frame's ``data``.

    Returns:
        The event, or None for an event type this SDK does not know (a newer server).

    Raises:
        ValueError: a required field is missing or malformed.
    """
    common: dict[str, Any] = {
        "position": position, "raw": data, "thread_id": _str(data.get("threadId")),
        "recipient": _identifier(data.get("recipient")),
    }
    sender: dict[str, Any] = {
        "sender": _identifier(data.get("sender")), "sender_display_name": _str(data.get("senderDisplayName")),
    }
    version = _str(data.get("version"))
    if name in ("chatMessageReceived", "chatMessageEdited", "chatMessageDeleted"):
        message = dict(
            common, **sender, id=_str(data.get("id")), created_on=_required_time(data.get("createdOn")),
            version=version, sequence_id=data.get("sequenceId"),
        )
        if name == "chatMessageDeleted":
            return ChatMessageDeletedEvent(**message, deleted_on=_time(data.get("deletedOn")))
        message.update(
            type=_str(data.get("type")) or "Text", message=_str(data.get("message")),
            metadata=_metadata(data.get("metadata")), attachments=_attachments(data.get("attachments")),
        )
        if name == "chatMessageEdited":
            return ChatMessageEditedEvent(**message, edited_on=_time(data.get("editedOn")))
        return ChatMessageReceivedEvent(**message)
    if name == "typingIndicatorReceived":
        return TypingIndicatorReceivedEvent(
            **common, **sender, received_on=_required_time(data.get("receivedOn")), version=version,
        )
    if name == "readReceiptReceived":
        return ReadReceiptReceivedEvent(
            **common, **sender, chat_message_id=_str(data.get("chatMessageId")),
            read_on=_required_time(data.get("readOn")),
        )
    if name == "chatThreadCreated":
        return ChatThreadCreatedEvent(
            **common, version=version, created_on=_required_time(data.get("createdOn")),
            properties=_properties(data.get("properties")), participants=_participants(data.get("participants")),
            created_by=_participant(data.get("createdBy")), retention_policy=_retention(data.get("retentionPolicy")),
        )
    if name == "chatThreadPropertiesUpdated":
        return ChatThreadPropertiesUpdatedEvent(
            **common, version=version, properties=_properties(data.get("properties")),
            updated_on=_required_time(data.get("updatedOn")), updated_by=_participant(data.get("updatedBy")),
            retention_policy=_retention(data.get("retentionPolicy")),
        )
    if name == "chatThreadDeleted":
        return ChatThreadDeletedEvent(
            **common, version=version, deleted_on=_required_time(data.get("deletedOn")),
            deleted_by=_participant(data.get("deletedBy")),
        )
    if name == "participantsAdded":
        return ParticipantsAddedEvent(
            **common, version=version, added_on=_required_time(data.get("addedOn")),
            participants_added=_participants(data.get("participantsAdded")),
            added_by=_participant(data.get("addedBy")),
        )
    if name == "participantsRemoved":
        return ParticipantsRemovedEvent(
            **common, version=version, removed_on=_required_time(data.get("removedOn")),
            participants_removed=_participants(data.get("participantsRemoved")),
            removed_by=_participant(data.get("removedBy")),
        )
    return None


# -- resume and backoff ------------------------------------------------------------------------------


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
