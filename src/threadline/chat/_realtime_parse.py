"""Real-time notifications: the ``data`` of a server event frame as its typed event model.

Shared by the sync and async ``ChatClient``; nothing here does I/O. Accepts
both the JSON form of ``/chat/realtime`` and the raw Trouter forms (metadata and
attachments as JSON strings); unknown or malformed optional fields become
empty values, a missing required date-time raises :class:`ValueError`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from threadline._shared.identifiers import (
    CommunicationIdentifier,
    UnknownIdentifier,
    identifier_from_raw_id,
)
from threadline.protocol.times import parse_iso

from ._models import ChatAttachment, ChatAttachmentType, ChatParticipant
from ._realtime_events import (
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
    TypingIndicatorReceivedEvent,
)
from ._retention import ChatRetentionPolicy, retention_from_wire

__all__ = ["parse_event"]

_decode = msgspec.json.Decoder().decode


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
