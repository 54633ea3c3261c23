"""JSON bodies of the ACS Chat and Identity APIs, as msgspec structs.

One definition serves both sides: the server decodes requests and encodes
responses with them, the SDK does the reverse. Field names are the snake_case
forms of the wire's camelCase keys; ``None`` fields are left out of the JSON.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

__all__ = [
    "AccessTokenModel",
    "AddParticipantsRequest",
    "AddParticipantsResult",
    "Attachment",
    "Collection",
    "CommunicationError",
    "CommunicationUser",
    "CreateIdentityRequest",
    "CreateIdentityResult",
    "CreateThreadRequest",
    "CreateThreadResult",
    "ErrorResponse",
    "Identifier",
    "IdentityModel",
    "IssueTokenRequest",
    "Message",
    "MessageContent",
    "Participant",
    "PhoneNumber",
    "ReadReceipt",
    "ReadReceiptRequest",
    "SendMessageRequest",
    "SendMessageResult",
    "TeamsApp",
    "TeamsExchangeRequest",
    "TeamsUser",
    "ThreadItem",
    "ThreadProperties",
    "TypingRequest",
    "UpdateMessageRequest",
    "UpdateThreadRequest",
    "UploadImageResult",
    "decode",
    "encode",
]

T = TypeVar("T")


class _Model(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """Base of every wire model: camelCase keys, ``None`` omitted."""


# -- identifiers (Common spec) ---------------------------------------------------------------


class CommunicationUser(_Model):
    id: str


class PhoneNumber(_Model):
    value: str
    is_anonymous: bool | None = None
    asserted_id: str | None = None


class TeamsUser(_Model):
    user_id: str
    is_anonymous: bool | None = None
    cloud: str | None = None


class TeamsApp(_Model):
    app_id: str
    cloud: str | None = None


class Identifier(_Model):
    """``CommunicationIdentifierModel``: a raw id plus at most one typed form."""

    raw_id: str | None = None
    kind: str | None = None
    communication_user: CommunicationUser | None = None
    phone_number: PhoneNumber | None = None
    microsoft_teams_user: TeamsUser | None = None
    microsoft_teams_app: TeamsApp | None = None


# -- errors ------------------------------------------------------------------------------------


class CommunicationError(_Model):
    code: str
    message: str
    target: str | None = None
    details: list[CommunicationError] | None = None
    innererror: CommunicationError | None = None


class ErrorResponse(_Model):
    error: CommunicationError


# -- threads -----------------------------------------------------------------------------------


class Participant(_Model):
    communication_identifier: Identifier
    display_name: str | None = None
    share_history_time: str | None = None
    metadata: dict[str, str] | None = None


class CreateThreadRequest(_Model):
    topic: str
    participants: list[Participant] | None = None
    metadata: dict[str, str] | None = None
    retention_policy: dict[str, Any] | None = None


class UpdateThreadRequest(_Model):
    """``UpdateChatThreadRequest`` (merge-patch): an absent field is unchanged, ``null`` removes it."""

    topic: str | None = None
    metadata: dict[str, str | None] | msgspec.UnsetType | None = msgspec.UNSET
    retention_policy: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET


class ThreadProperties(_Model):
    id: str
    topic: str
    created_on: str
    created_by_communication_identifier: Identifier
    deleted_on: str | None = None
    metadata: dict[str, str] | None = None
    retention_policy: dict[str, Any] | None = None


class CreateThreadResult(_Model):
    chat_thread: ThreadProperties
    invalid_participants: list[CommunicationError] | None = None


class ThreadItem(_Model):
    id: str
    topic: str
    deleted_on: str | None = None
    last_message_received_on: str | None = None


class Collection(_Model, Generic[T]):
    """A page of a pageable list: ``value`` and, unless last, ``nextLink``."""

    value: list[T]
    next_link: str | None = None


# -- messages ----------------------------------------------------------------------------------


class Attachment(_Model):
    """``ChatAttachment`` (2024-06-05-preview on send/update; read-only before)."""

    id: str
    attachment_type: str
    name: str | None = None
    url: str | None = None
    preview_url: str | None = None


class UploadImageResult(_Model):
    """``UploadChatImageResult`` (2024-06-05-preview)."""

    id: str
    attachment_type: str | None = None
    name: str | None = None


class SendMessageRequest(_Model):
    content: str
    sender_display_name: str | None = None
    type: str | None = None
    metadata: dict[str, str] | None = None
    attachments: list[Attachment] | None = None


class SendMessageResult(_Model):
    id: str


class UpdateMessageRequest(_Model):
    content: str | None = None
    metadata: dict[str, str | None] | None = None
    attachments: list[Attachment] | None = None


class MessageContent(_Model):
    message: str | None = None
    topic: str | None = None
    participants: list[Participant] | None = None
    initiator_communication_identifier: Identifier | None = None
    attachments: list[Attachment] | None = None


class Message(_Model):
    id: str
    type: str
    sequence_id: str
    version: str
    created_on: str
    content: MessageContent | None = None
    sender_display_name: str | None = None
    sender_communication_identifier: Identifier | None = None
    deleted_on: str | None = None
    edited_on: str | None = None
    metadata: dict[str, str] | None = None


# -- participants, receipts, typing ------------------------------------------------------------


class AddParticipantsRequest(_Model):
    participants: list[Participant]


class AddParticipantsResult(_Model):
    invalid_participants: list[CommunicationError] | None = None


class ReadReceiptRequest(_Model):
    chat_message_id: str


class ReadReceipt(_Model):
    sender_communication_identifier: Identifier
    chat_message_id: str
    read_on: str


class TypingRequest(_Model):
    sender_display_name: str | None = None


# -- identity ----------------------------------------------------------------------------------


class CreateIdentityRequest(_Model):
    create_token_with_scopes: list[str] | None = None
    expires_in_minutes: int | None = None


class IdentityModel(_Model):
    id: str


class AccessTokenModel(_Model):
    token: str
    expires_on: str


class CreateIdentityResult(_Model):
    identity: IdentityModel
    access_token: AccessTokenModel | None = None


class IssueTokenRequest(_Model):
    scopes: list[str]
    expires_in_minutes: int | None = None


class TeamsExchangeRequest(_Model):
    token: str
    app_id: str
    user_id: str


_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """Encode a wire model (or plain JSON data) as compact UTF-8 JSON."""
    return _encoder.encode(value)


def decode(data: bytes | str, into: type[T]) -> T:
    """Decode JSON into a wire model.

    Raises:
        msgspec.DecodeError: the JSON is malformed.
        msgspec.ValidationError: a field is missing or of the wrong type.
    """
    return msgspec.json.decode(data, type=into)
