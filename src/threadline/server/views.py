"""Records as wire models, shaped for the request's api-version."""

from __future__ import annotations

from urllib.parse import quote

from threadline.protocol import ids
from threadline.protocol.times import format_ms
from threadline.protocol.versions import IMAGE_CHAT_VERSION
from threadline.protocol.wire import (
    Attachment,
    CommunicationUser,
    Identifier,
    Message,
    MessageContent,
    Participant,
    PhoneNumber,
    ReadReceipt,
    TeamsApp,
    TeamsUser,
    ThreadItem,
    ThreadProperties,
)
from threadline.store.records import (
    ImageRecord,
    MessageRecord,
    ParticipantRecord,
    ReadReceiptRecord,
    ThreadRecord,
)

__all__ = [
    "attachment",
    "identifier",
    "image_path",
    "message",
    "participant",
    "receipt",
    "thread_item",
    "thread_properties",
]

_KINDS = {
    ids.COMMUNICATION_USER: "communicationUser",
    ids.PHONE_NUMBER: "phoneNumber",
    ids.MICROSOFT_TEAMS_USER: "microsoftTeamsUser",
    ids.MICROSOFT_TEAMS_APP: "microsoftTeamsApp",
    ids.UNKNOWN: "unknown",
}
_USER_TYPES = ("text", "html")


def identifier(raw_id: str) -> Identifier:
    """A ``CommunicationIdentifierModel`` with ``rawId``, ``kind`` and the typed form."""
    parsed = ids.parse_raw_id(raw_id)
    model = Identifier(raw_id=raw_id, kind=_KINDS[parsed.kind])
    props = parsed.properties
    if parsed.kind == ids.COMMUNICATION_USER:
        model.communication_user = CommunicationUser(id=raw_id)
    elif parsed.kind == ids.PHONE_NUMBER:
        model.phone_number = PhoneNumber(value=props["value"])
    elif parsed.kind == ids.MICROSOFT_TEAMS_USER:
        model.microsoft_teams_user = TeamsUser(
            user_id=props["user_id"], is_anonymous=props["is_anonymous"],
            cloud=(props["cloud"] or "").lower() or None,
        )
    elif parsed.kind == ids.MICROSOFT_TEAMS_APP:
        model.microsoft_teams_app = TeamsApp(app_id=props["app_id"], cloud=(props["cloud"] or "").lower() or None)
    return model


def _has_thread_metadata(api_version: str) -> bool:
    return api_version >= "2025-03-15" or api_version == IMAGE_CHAT_VERSION


def image_path(thread_id: str, image_id: str, view: str) -> str:
    """The path (and preview api-version) an image is read from."""
    return (f"/chat/threads/{quote(thread_id, safe=':@')}/images/{image_id}/view/{view}"
            f"?api-version={IMAGE_CHAT_VERSION}")


def attachment(image: ImageRecord, base_url: str = "") -> Attachment:
    """A ``ChatAttachment`` for an attached image; ``url``/``previewUrl`` on ``base_url`` (relative when empty)."""
    return Attachment(
        id=image.id, attachment_type="image", name=image.name,
        url=base_url + image_path(image.thread_id, image.id, "original"),
        preview_url=base_url + image_path(image.thread_id, image.id, "small"),
    )


def thread_properties(thread: ThreadRecord, api_version: str) -> ThreadProperties:
    props = ThreadProperties(
        id=thread.id,
        topic=thread.topic,
        created_on=format_ms(thread.created_ms),
        created_by_communication_identifier=identifier(thread.created_by),
        deleted_on=format_ms(thread.deleted_ms) if thread.deleted_ms is not None else None,
    )
    if _has_thread_metadata(api_version):
        props.metadata = thread.metadata or {}
        props.retention_policy = thread.retention
    return props


def thread_item(thread: ThreadRecord) -> ThreadItem:
    return ThreadItem(
        id=thread.id,
        topic=thread.topic,
        deleted_on=format_ms(thread.deleted_ms) if thread.deleted_ms is not None else None,
        last_message_received_on=format_ms(thread.last_message_ms or thread.created_ms),
    )


def participant(record: ParticipantRecord, api_version: str) -> Participant:
    """A participant, as listed and as named in ``participantAdded``/``participantRemoved`` messages.

    ``metadata`` exists from 2025-03-15 and is left out when empty.
    """
    return Participant(
        communication_identifier=identifier(record.user_id),
        display_name=record.display_name,
        share_history_time=format_ms(record.share_history_ms),
        metadata=record.metadata if _has_thread_metadata(api_version) and record.metadata else None,
    )


def message(record: MessageRecord, api_version: str, base_url: str = "") -> Message:
    """A message; deleted ones keep their envelope and lose their content.

    Attachment URLs are absolute on ``base_url`` (the server's own origin) when it is given.
    """
    content: MessageContent | None
    if record.deleted_ms is not None:
        content = None
    elif record.type in _USER_TYPES:
        content = MessageContent(message=record.content)
        if api_version >= "2023-11-07":
            content.attachments = [attachment(i, base_url) for i in record.attachments or ()]
    else:
        content = MessageContent(
            topic=record.topic,
            participants=(
                [participant(p, api_version) for p in record.participants]
                if record.participants is not None
                else None
            ),
            initiator_communication_identifier=identifier(record.initiator_id) if record.initiator_id else None,
        )
    return Message(
        id=record.id,
        type=record.type,
        sequence_id=str(record.sequence_id),
        version=str(record.version),
        created_on=format_ms(record.created_ms),
        content=content,
        sender_display_name=record.sender_display_name,
        sender_communication_identifier=identifier(record.sender_id) if record.sender_id else None,
        deleted_on=format_ms(record.deleted_ms) if record.deleted_ms is not None else None,
        edited_on=format_ms(record.edited_ms) if record.edited_ms is not None else None,
        metadata=record.metadata if record.deleted_ms is None else None,
    )


def receipt(record: ReadReceiptRecord) -> ReadReceipt:
    return ReadReceipt(
        sender_communication_identifier=identifier(record.user_id),
        chat_message_id=record.message_id,
        read_on=format_ms(record.read_ms),
    )
