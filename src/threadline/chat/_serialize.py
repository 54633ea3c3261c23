"""Conversions between the public chat models and the wire structs of :mod:`threadline.protocol.wire`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from threadline._shared.errors import ChatError
from threadline._shared.identifier_wire import identifier_from_wire, identifier_to_wire
from threadline._shared.model_base import format_datetime
from threadline.protocol import wire
from threadline.protocol.times import parse_iso

from ._models import (
    ChatAttachment,
    ChatAttachmentType,
    ChatMessage,
    ChatMessageContent,
    ChatMessageReadReceipt,
    ChatMessageType,
    ChatParticipant,
    ChatThreadItem,
    ChatThreadProperties,
)
from ._retention import retention_from_wire

__all__ = [
    "failed_participants",
    "message_from_wire",
    "participant_from_wire",
    "participant_to_wire",
    "read_receipt_from_wire",
    "thread_item_from_wire",
    "thread_properties_from_wire",
]


def _time(value: str | None) -> datetime | None:
    return parse_iso(value) if value is not None else None


def _enum(enum: type[ChatMessageType] | type[ChatAttachmentType], value: str) -> str:
    """The enum member for a known value (case-sensitive, as the official SDK); else the string."""
    try:
        return enum(value)
    except ValueError:
        return value


def participant_to_wire(participant: ChatParticipant) -> wire.Participant:
    """Describe a participant for create-thread and add-participants requests.

    Raises:
        TypeError: the participant's identifier is not a communication identifier.
    """
    share = participant.share_history_time
    return wire.Participant(
        communication_identifier=identifier_to_wire(participant.identifier),
        display_name=participant.display_name,
        share_history_time=format_datetime(share) if share is not None else None,
        metadata=getattr(participant, "metadata", None),
    )


def participant_from_wire(model: wire.Participant) -> ChatParticipant:
    """Read a participant from a response."""
    return ChatParticipant(
        identifier=identifier_from_wire(model.communication_identifier),
        display_name=model.display_name,
        share_history_time=_time(model.share_history_time),
        metadata=model.metadata,
    )


def thread_properties_from_wire(model: wire.ThreadProperties) -> ChatThreadProperties:
    """Read thread properties; ``deletedOn`` is dropped, as in 1.3.0, metadata and retention are kept."""
    return ChatThreadProperties(
        id=model.id,
        topic=model.topic,
        created_on=parse_iso(model.created_on),
        created_by=identifier_from_wire(model.created_by_communication_identifier),
        metadata=model.metadata,
        retention_policy=retention_from_wire(model.retention_policy),
    )


def thread_item_from_wire(model: wire.ThreadItem) -> ChatThreadItem:
    """Read a listed thread."""
    item = ChatThreadItem(id=model.id, topic=model.topic, deleted_on=_time(model.deleted_on))
    item.last_message_received_on = _time(model.last_message_received_on)
    return item


def _content_from_wire(model: wire.MessageContent) -> ChatMessageContent:
    initiator = model.initiator_communication_identifier
    return ChatMessageContent(
        message=model.message,
        topic=model.topic,
        participants=[participant_from_wire(p) for p in model.participants or []],
        initiator=identifier_from_wire(initiator) if initiator is not None else None,
        attachments=[
            ChatAttachment(
                id=a.id,
                attachment_type=_enum(ChatAttachmentType, a.attachment_type),
                name=a.name,
                url=a.url,
                preview_url=a.preview_url,
            )
            for a in model.attachments or []
        ],
    )


def message_from_wire(model: wire.Message) -> ChatMessage:
    """Read a message; its type is a :class:`ChatMessageType` when known, else the raw string."""
    sender = model.sender_communication_identifier
    return ChatMessage(
        id=model.id,
        type=_enum(ChatMessageType, model.type),
        sequence_id=model.sequence_id,
        version=model.version,
        content=_content_from_wire(model.content) if model.content is not None else None,
        sender_display_name=model.sender_display_name,
        created_on=parse_iso(model.created_on),
        sender=identifier_from_wire(sender) if sender is not None else None,
        deleted_on=_time(model.deleted_on),
        edited_on=_time(model.edited_on),
        metadata=model.metadata,
    )


def read_receipt_from_wire(model: wire.ReadReceipt) -> ChatMessageReadReceipt:
    """Read a read receipt."""
    return ChatMessageReadReceipt(
        sender=identifier_from_wire(model.sender_communication_identifier),
        chat_message_id=model.chat_message_id,
        read_on=parse_iso(model.read_on),
    )


def failed_participants(
    requested: Sequence[ChatParticipant], errors: list[wire.CommunicationError] | None
) -> list[tuple[ChatParticipant | None, ChatError]]:
    """Pair each ``invalidParticipants`` error with the requested participant it targets.

    The service puts the participant's raw id in ``target``; an error whose
    target matches no requested participant is paired with None, as in the
    official SDK.
    """
    by_raw_id = {getattr(p.identifier, "raw_id", None): p for p in requested}
    return [(by_raw_id.get(e.target), ChatError._from_wire(e)) for e in errors or []]
