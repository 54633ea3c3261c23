"""Real-time notifications: the event models and their names.

Shared by the sync and async ``ChatClient`` (see :mod:`threadline.chat._realtime`).
Event classes carry the fields of the ACS JS SDK events (``chatMessageReceived``
and the others), in snake_case with Python types: identifiers as
:class:`CommunicationIdentifier`, times as aware :class:`datetime`, participants
as :class:`ChatParticipant`. Each also has ``position`` (its place in the
server's event log, 0 for typing indicators) and ``raw`` (the JSON as received).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from threadline._shared.identifiers import CommunicationIdentifier

from ._models import ChatAttachment, ChatParticipant
from ._retention import ChatRetentionPolicy

__all__ = [
    "CHAT_EVENT_NAMES",
    "ChatEvent",
    "ChatMessageDeletedEvent",
    "ChatMessageEditedEvent",
    "ChatMessageReceivedEvent",
    "ChatThreadCreatedEvent",
    "ChatThreadDeletedEvent",
    "ChatThreadProperties",
    "ChatThreadPropertiesUpdatedEvent",
    "ParticipantsAddedEvent",
    "ParticipantsRemovedEvent",
    "ReadReceiptReceivedEvent",
    "RealTimeNotificationConnectedEvent",
    "RealTimeNotificationDisconnectedEvent",
    "ResumeGapEvent",
    "TypingIndicatorReceivedEvent",
    "check_event_name",
]


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
