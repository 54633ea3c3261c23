"""The public chat models, with the names and attributes of ``azure.communication.chat`` 1.3.0.

The conversions from and to the wire models live in :mod:`._serialize`.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from azure.core import CaseInsensitiveEnumMeta

from threadline._shared.errors import ChatError
from threadline._shared.identifiers import CommunicationIdentifier
from threadline._shared.model_base import Model

from ._retention import ChatRetentionPolicy

__all__ = [
    "ChatAttachment",
    "ChatAttachmentType",
    "ChatError",
    "ChatMessage",
    "ChatMessageContent",
    "ChatMessageReadReceipt",
    "ChatMessageType",
    "ChatParticipant",
    "ChatThreadItem",
    "ChatThreadProperties",
    "CreateChatThreadResult",
    "SendChatMessageResult",
]


class ChatMessageType(str, Enum, metaclass=CaseInsensitiveEnumMeta):  # noqa: UP042 - str() as upstream
    """The type of a chat message. Unknown types received from the service stay plain strings."""

    TEXT = "text"
    HTML = "html"
    TOPIC_UPDATED = "topicUpdated"
    PARTICIPANT_ADDED = "participantAdded"
    PARTICIPANT_REMOVED = "participantRemoved"


class ChatAttachmentType(str, Enum, metaclass=CaseInsensitiveEnumMeta):  # noqa: UP042 - str() as upstream
    """The type of a message attachment."""

    IMAGE = "image"
    FILE = "file"


def _repr(obj: object, names: tuple[str, ...]) -> str:
    fields = ", ".join(f"{n}={getattr(obj, n, None)!r}" for n in names)
    return f"{type(obj).__name__}({fields})"


class ChatParticipant:
    """A participant of a chat thread.

    Args:
        identifier: who the participant is.
        display_name: the participant's display name.
        share_history_time: from when on the thread's history is shared with the participant.
        metadata: the participant's metadata (api-version 2025-03-15; a Threadline addition to 1.3.0).
    """

    def __init__(
        self,
        *,
        identifier: CommunicationIdentifier,
        display_name: str | None = None,
        share_history_time: datetime | None = None,
        metadata: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.identifier = identifier
        self.display_name = display_name
        self.share_history_time = share_history_time
        self.metadata = metadata

    def __repr__(self) -> str:
        return _repr(self, ("identifier", "display_name", "share_history_time", "metadata"))


class ChatAttachment:
    """An attachment of a message (Teams interoperability; read-only).

    Keyword Args:
        id (str): the attachment id. Required.
        attachment_type (ChatAttachmentType | str): ``image`` or ``file``. Required.
        name (str | None): the file name.
        url (str | None): where the attachment can be downloaded.
        preview_url (str | None): where its preview can be downloaded.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.id: str = kwargs["id"]
        self.attachment_type: ChatAttachmentType | str = kwargs["attachment_type"]
        self.name: str | None = kwargs.get("name")
        self.url: str | None = kwargs.get("url")
        self.preview_url: str | None = kwargs.get("preview_url")

    def __repr__(self) -> str:
        return _repr(self, ("id", "attachment_type", "name", "url", "preview_url"))


class ChatMessageContent:
    """The content of a message.

    Keyword Args:
        message (str | None): the text of ``text``/``html`` messages.
        topic (str | None): the new topic of ``topicUpdated`` messages.
        participants (list[ChatParticipant]): who was added or removed.
        initiator (CommunicationIdentifier | None): who added or removed them.
        attachments (list[ChatAttachment]): attachments of ``text``/``html`` messages.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.message: str | None = kwargs.get("message")
        self.topic: str | None = kwargs.get("topic")
        self.participants: list[ChatParticipant] | None = kwargs.get("participants")
        self.initiator: CommunicationIdentifier | None = kwargs.get("initiator")
        self.attachments: list[ChatAttachment] | None = kwargs.get("attachments")

    def __repr__(self) -> str:
        return _repr(self, ("message", "topic", "participants", "initiator", "attachments"))


class ChatMessage:
    """A chat message.

    Keyword Args:
        id (str): the server-generated message id.
        type (ChatMessageType | str): the message type.
        sequence_id (str): its position in the thread.
        version (str): its version; changes on edit.
        content (ChatMessageContent | None): its content.
        sender_display_name (str | None): the sender's display name.
        created_on (datetime): when the server received it.
        sender (CommunicationIdentifier | None): the sender; None for system messages.
        deleted_on (datetime | None): when it was deleted.
        edited_on (datetime | None): when it was last edited.
        metadata (dict[str, str] | None): message metadata.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.id: str = kwargs["id"]
        self.type: ChatMessageType | str = kwargs["type"]
        self.sequence_id: str = kwargs["sequence_id"]
        self.version: str = kwargs["version"]
        self.content: ChatMessageContent | None = kwargs["content"]
        self.sender_display_name: str | None = kwargs["sender_display_name"]
        self.created_on: datetime = kwargs["created_on"]
        self.sender: CommunicationIdentifier | None = kwargs["sender"]
        self.deleted_on: datetime | None = kwargs["deleted_on"]
        self.edited_on: datetime | None = kwargs["edited_on"]
        self.metadata: dict[str, str] | None = kwargs.get("metadata")

    def __repr__(self) -> str:
        return _repr(self, ("id", "type", "sequence_id", "version", "content", "sender", "created_on"))


class ChatThreadProperties:
    """The properties of a chat thread.

    Keyword Args:
        id (str): the thread id.
        topic (str | None): the thread topic.
        created_on (datetime): when the thread was created.
        created_by (CommunicationIdentifier | None): who created it.
        metadata (dict[str, str] | None): the thread's metadata (2025-03-15; a Threadline addition).
        retention_policy (ChatRetentionPolicy | None): when the service deletes the thread
            (2025-03-15; a Threadline addition).
    """

    def __init__(self, **kwargs: Any) -> None:
        self.id: str = kwargs["id"]
        self.topic: str | None = kwargs.get("topic")
        self.created_on: datetime = kwargs["created_on"]
        self.created_by: CommunicationIdentifier | None = kwargs["created_by"]
        self.metadata: dict[str, str] | None = kwargs.get("metadata")
        self.retention_policy: ChatRetentionPolicy | None = kwargs.get("retention_policy")

    def __repr__(self) -> str:
        return _repr(self, ("id", "topic", "created_on", "created_by", "metadata", "retention_policy"))


class ChatMessageReadReceipt:
    """A read receipt: who read up to which message, and when.

    Keyword Args:
        sender (CommunicationIdentifier): the reader.
        chat_message_id (str): the last message read.
        read_on (datetime): when it was read.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.sender: CommunicationIdentifier | None = kwargs["sender"]
        self.chat_message_id: str = kwargs["chat_message_id"]
        self.read_on: datetime = kwargs["read_on"]

    def __repr__(self) -> str:
        return _repr(self, ("sender", "chat_message_id", "read_on"))


class CreateChatThreadResult:
    """The result of ``create_chat_thread``.

    Keyword Args:
        chat_thread (ChatThreadProperties): the new thread.
        errors (list[tuple[ChatParticipant | None, ChatError]]): participants that could not be
            added; an empty list when all were.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.chat_thread: ChatThreadProperties = kwargs["chat_thread"]
        self.errors: list[tuple[ChatParticipant | None, ChatError]] | None = kwargs.get("errors")

    def __repr__(self) -> str:
        return _repr(self, ("chat_thread", "errors"))


class ChatThreadItem(Model):
    """A thread as listed by ``list_chat_threads``.

    Args:
        id: the thread id.
        topic: the thread topic.
        deleted_on: when the thread was deleted.

    ``last_message_received_on`` (read-only) is when the last message arrived.
    """

    _validation: ClassVar[dict[str, dict[str, bool]]] = {
        "id": {"required": True},
        "topic": {"required": True},
        "last_message_received_on": {"readonly": True},
    }
    _attribute_map: ClassVar[dict[str, dict[str, str]]] = {
        "id": {"key": "id", "type": "str"},
        "topic": {"key": "topic", "type": "str"},
        "deleted_on": {"key": "deletedOn", "type": "iso-8601"},
        "last_message_received_on": {"key": "lastMessageReceivedOn", "type": "iso-8601"},
    }

    def __init__(self, *, id: str, topic: str, deleted_on: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.id = id
        self.topic = topic
        self.deleted_on = deleted_on
        self.last_message_received_on: datetime | None = None


class SendChatMessageResult(Model):
    """The result of ``send_message``.

    Args:
        id: the server-generated message id.
    """

    _validation: ClassVar[dict[str, dict[str, bool]]] = {"id": {"required": True}}
    _attribute_map: ClassVar[dict[str, dict[str, str]]] = {"id": {"key": "id", "type": "str"}}

    def __init__(self, *, id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.id = id
