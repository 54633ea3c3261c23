"""Every chat operation as a :class:`~threadline._shared.call.Call`: validation, path, body, parser.

Both twins call these builders and differ only in how they send the result.
Validation errors (``ValueError``/``TypeError``) are raised here, before any I/O,
with the official SDK's messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from threadline._shared.call import MERGE_PATCH, Call, parse_nothing, path_segment
from threadline._shared.errors import ChatError
from threadline._shared.identifier_wire import identifier_to_wire
from threadline._shared.identifiers import CommunicationIdentifier
from threadline._shared.model_base import format_datetime
from threadline.protocol import wire

from ._images import IMAGE_CHAT_VERSION, attachments_to_wire
from ._models import (
    ChatMessage,
    ChatMessageReadReceipt,
    ChatMessageType,
    ChatParticipant,
    ChatThreadItem,
    ChatThreadProperties,
    CreateChatThreadResult,
    SendChatMessageResult,
)
from ._paging import Page, Pager
from ._retention import ChatRetentionPolicy, retention_to_wire
from ._serialize import (
    failed_participants,
    message_from_wire,
    participant_from_wire,
    participant_to_wire,
    read_receipt_from_wire,
    thread_item_from_wire,
    thread_properties_from_wire,
)

__all__ = ["ChatRequests", "ChatThreadRequests", "message_type"]

_THREADS = "/chat/threads"


def _require(value: Any, message: str) -> None:
    if not value:
        raise ValueError(message)


def message_type(value: ChatMessageType | str | None) -> ChatMessageType:
    """Check a ``chat_message_type`` argument: text (the default) or html.

    Strings are accepted by value (``"html"``) or by name in any case (``"HTML"``).

    Raises:
        ValueError: an unknown type, or a system type such as ``topicUpdated``.
    """
    if value is None:
        return ChatMessageType.TEXT
    result: ChatMessageType
    if isinstance(value, ChatMessageType):
        result = value
    else:
        try:
            result = ChatMessageType(value)
        except ValueError:
            try:
                result = ChatMessageType[str(value).upper()]
            except KeyError:
                raise ValueError(f"chat_message_type: {value} is not acceptable") from None
    if result not in (ChatMessageType.TEXT, ChatMessageType.HTML):
        raise ValueError(f"chat_message_type: {result} can be only 'text' or 'html'")
    return result


def _version(api_version: str) -> dict[str, str]:
    return {"api-version": api_version}


def _page_parser(into: type[Any], convert: Any) -> Any:
    def parse(body: bytes) -> Page[Any]:
        collection = wire.decode(body, wire.Collection[into])  # type: ignore[valid-type]
        return Page([convert(item) for item in collection.value], collection.next_link)

    return parse


def _json(model: Any) -> bytes:
    return wire.encode(model)


class ChatRequests:
    """Builds the calls of :class:`ChatClient` (threads of the signed-in user).

    Args:
        api_version: the ``api-version`` sent unless a call overrides it.
    """

    def __init__(self, api_version: str) -> None:
        self.api_version = api_version

    def create_chat_thread(
        self,
        topic: str,
        thread_participants: Sequence[ChatParticipant] | None,
        idempotency_token: str | None,
        api_version: str | None = None,
        metadata: dict[str, str] | None = None,
        retention_policy: ChatRetentionPolicy | None = None,
    ) -> Call[CreateChatThreadResult]:
        """``POST /chat/threads`` with ``repeatability-request-id`` = the token or a fresh uuid4.

        Raises:
            ValueError: no topic.
            TypeError: ``retention_policy`` is not a :class:`ChatRetentionPolicy`.
        """
        _require(topic, "topic cannot be None.")
        requested = list(thread_participants or [])
        body = wire.CreateThreadRequest(
            topic=topic,
            participants=[participant_to_wire(p) for p in requested],
            metadata=metadata,
            retention_policy=retention_to_wire(retention_policy) if retention_policy is not None else None,
        )

        def parse(data: bytes) -> CreateChatThreadResult:
            result = wire.decode(data, wire.CreateThreadResult)
            return CreateChatThreadResult(
                chat_thread=thread_properties_from_wire(result.chat_thread),
                errors=failed_participants(requested, result.invalid_participants),
            )

        token = idempotency_token if idempotency_token is not None else str(uuid.uuid4())
        return Call(
            "POST",
            _THREADS,
            201,
            parse,
            query=_version(api_version or self.api_version),
            headers={"repeatability-request-id": token},
            body=_json(body),
        )

    def delete_chat_thread(self, thread_id: str, api_version: str | None = None) -> Call[None]:
        """``DELETE /chat/threads/{id}``."""
        _require(thread_id, "thread_id cannot be None.")
        return Call(
            "DELETE",
            f"{_THREADS}/{path_segment(thread_id)}",
            204,
            parse_nothing,
            query=_version(api_version or self.api_version),
        )

    def list_chat_threads(
        self, results_per_page: int | None, start_time: datetime | None, api_version: str | None = None
    ) -> Pager[ChatThreadItem]:
        """``GET /chat/threads?maxPageSize=&startTime=``."""
        version = api_version or self.api_version
        query = _version(version)
        if results_per_page is not None:
            query["maxPageSize"] = str(int(results_per_page))
        if start_time is not None:
            query["startTime"] = format_datetime(start_time)
        first: Call[Page[ChatThreadItem]] = Call(
            "GET", _THREADS, 200, _page_parser(wire.ThreadItem, thread_item_from_wire), query=query
        )
        return Pager(first, version)


class ChatThreadRequests:
    """Builds the calls of :class:`ChatThreadClient` for one thread.

    Args:
        thread_id: the thread.
        api_version: the ``api-version`` sent unless a call overrides it.

    Raises:
        ValueError: ``thread_id`` is empty.
    """

    def __init__(self, thread_id: str, api_version: str) -> None:
        _require(thread_id, "thread_id can not be None or empty")
        self.thread_id = thread_id
        self.api_version = api_version
        self._base = f"{_THREADS}/{path_segment(thread_id)}"

    def _call(
        self,
        method: str,
        path: str,
        success: int,
        parse: Any,
        api_version: str | None,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Call[Any]:
        return Call(
            method,
            self._base + path,
            success,
            parse,
            query={**_version(api_version or self.api_version), **(query or {})},
            body=_json(body) if body is not None else None,
            content_type=content_type,
        )

    def _pager(
        self, path: str, into: type[Any], convert: Any, query: dict[str, str], api_version: str | None
    ) -> Pager[Any]:
        version = api_version or self.api_version
        first = self._call("GET", path, 200, _page_parser(into, convert), version, query=query)
        return Pager(first, version)

    @staticmethod
    def _paging_query(results_per_page: int | None, **extra: Any) -> dict[str, str]:
        query: dict[str, str] = {}
        if results_per_page is not None:
            query["maxPageSize"] = str(int(results_per_page))
        for key, value in extra.items():
            if value is not None:
                query[key] = format_datetime(value) if isinstance(value, datetime) else str(int(value))
        return query

    # -- thread ------------------------------------------------------------------------------

    def get_properties(self, api_version: str | None = None) -> Call[ChatThreadProperties]:
        """``GET /chat/threads/{id}``."""

        def parse(data: bytes) -> ChatThreadProperties:
            return thread_properties_from_wire(wire.decode(data, wire.ThreadProperties))

        return self._call("GET", "", 200, parse, api_version)

    def update_topic(self, topic: str | None, api_version: str | None = None) -> Call[None]:
        """``PATCH /chat/threads/{id}`` (merge-patch); ``{}`` when topic is None."""
        body = wire.UpdateThreadRequest(topic=topic)
        return self._call("PATCH", "", 204, parse_nothing, api_version, body, MERGE_PATCH)

    def update_properties(
        self,
        topic: str | None,
        metadata: dict[str, str | None] | None,
        retention_policy: ChatRetentionPolicy | None,
        api_version: str | None = None,
    ) -> Call[None]:
        """``PATCH /chat/threads/{id}`` (merge-patch) with the properties given; None leaves one unchanged.

        Raises:
            TypeError: ``retention_policy`` is not a :class:`ChatRetentionPolicy`.
        """
        body = wire.UpdateThreadRequest(topic=topic)
        if metadata is not None:
            body.metadata = metadata
        if retention_policy is not None:
            body.retention_policy = retention_to_wire(retention_policy)
        return self._call("PATCH", "", 204, parse_nothing, api_version, body, MERGE_PATCH)

    # -- messages ----------------------------------------------------------------------------

    def send_message(
        self,
        content: str,
        chat_message_type: ChatMessageType | str | None,
        sender_display_name: str | None,
        metadata: dict[str, str] | None,
        api_version: str | None = None,
        attachments: Sequence[Any] | None = None,
    ) -> Call[SendChatMessageResult]:
        """``POST .../messages``; the type defaults to text.

        With ``attachments`` the call uses the image preview api-version (unless one is given).
        """
        _require(content, "content cannot be None.")
        kind = message_type(chat_message_type)
        body = wire.SendMessageRequest(
            content=content, sender_display_name=sender_display_name, type=kind.value, metadata=metadata
        )
        if attachments is not None:
            body.attachments = attachments_to_wire(attachments)
            api_version = api_version or IMAGE_CHAT_VERSION

        def parse(data: bytes) -> SendChatMessageResult:
            return SendChatMessageResult(id=wire.decode(data, wire.SendMessageResult).id)

        return self._call("POST", "/messages", 201, parse, api_version, body)

    def get_message(self, message_id: str, api_version: str | None = None) -> Call[ChatMessage]:
        """``GET .../messages/{mid}``."""
        _require(message_id, "message_id cannot be None.")

        def parse(data: bytes) -> ChatMessage:
            return message_from_wire(wire.decode(data, wire.Message))

        return self._call("GET", f"/messages/{path_segment(message_id)}", 200, parse, api_version)

    def list_messages(
        self, results_per_page: int | None, start_time: datetime | None, api_version: str | None = None
    ) -> Pager[ChatMessage]:
        """``GET .../messages?maxPageSize=&startTime=`` (newest first)."""
        query = self._paging_query(results_per_page, startTime=start_time)
        return self._pager("/messages", wire.Message, message_from_wire, query, api_version)

    def update_message(
        self,
        message_id: str,
        content: str | None,
        metadata: dict[str, str] | None,
        api_version: str | None = None,
        attachments: Sequence[Any] | None = None,
    ) -> Call[None]:
        """``PATCH .../messages/{mid}`` (merge-patch); omitted fields are left out.

        ``attachments`` replaces the message's images (image preview api-version, unless one is given).
        """
        _require(message_id, "message_id cannot be None.")
        patch: dict[str, str | None] | None = dict(metadata) if metadata is not None else None
        body = wire.UpdateMessageRequest(content=content, metadata=patch)
        if attachments is not None:
            body.attachments = attachments_to_wire(attachments)
            api_version = api_version or IMAGE_CHAT_VERSION
        path = f"/messages/{path_segment(message_id)}"
        return self._call("PATCH", path, 204, parse_nothing, api_version, body, MERGE_PATCH)

    def delete_message(self, message_id: str, api_version: str | None = None) -> Call[None]:
        """``DELETE .../messages/{mid}``."""
        _require(message_id, "message_id cannot be None.")
        return self._call("DELETE", f"/messages/{path_segment(message_id)}", 204, parse_nothing, api_version)

    # -- participants ------------------------------------------------------------------------

    def list_participants(
        self, results_per_page: int | None, skip: int | None, api_version: str | None = None
    ) -> Pager[ChatParticipant]:
        """``GET .../participants?maxPageSize=&skip=``."""
        query = self._paging_query(results_per_page, skip=skip)
        return self._pager("/participants", wire.Participant, participant_from_wire, query, api_version)

    def add_participants(
        self, thread_participants: Sequence[ChatParticipant], api_version: str | None = None
    ) -> Call[list[tuple[ChatParticipant | None, ChatError]]] | None:
        """``POST .../participants/:add``; None (no request at all) for an empty list, as the official."""
        if not thread_participants:
            return None
        requested = list(thread_participants)
        body = wire.AddParticipantsRequest(participants=[participant_to_wire(p) for p in requested])

        def parse(data: bytes) -> list[tuple[ChatParticipant | None, ChatError]]:
            if not data.strip():
                return []
            result = wire.decode(data, wire.AddParticipantsResult)
            return failed_participants(requested, result.invalid_participants)

        return self._call("POST", "/participants/:add", 201, parse, api_version, body)

    def remove_participant(
        self, identifier: CommunicationIdentifier, api_version: str | None = None
    ) -> Call[None]:
        """``POST .../participants/:remove`` with the bare identifier as body."""
        _require(identifier, "identifier cannot be None.")
        body = identifier_to_wire(identifier)
        return self._call("POST", "/participants/:remove", 204, parse_nothing, api_version, body)

    # -- receipts and typing -----------------------------------------------------------------

    def send_read_receipt(self, message_id: str, api_version: str | None = None) -> Call[None]:
        """``POST .../readReceipts`` (answers 200)."""
        _require(message_id, "message_id cannot be None.")
        body = wire.ReadReceiptRequest(chat_message_id=message_id)
        return self._call("POST", "/readReceipts", 200, parse_nothing, api_version, body)

    def list_read_receipts(
        self, results_per_page: int | None, skip: int | None, api_version: str | None = None
    ) -> Pager[ChatMessageReadReceipt]:
        """``GET .../readReceipts?maxPageSize=&skip=``."""
        query = self._paging_query(results_per_page, skip=skip)
        return self._pager("/readReceipts", wire.ReadReceipt, read_receipt_from_wire, query, api_version)

    def send_typing_notification(
        self, sender_display_name: str | None, api_version: str | None = None
    ) -> Call[None]:
        """``POST .../typing`` (answers 200); ``{}`` without a display name."""
        body = wire.TypingRequest(sender_display_name=sender_display_name)
        return self._call("POST", "/typing", 200, parse_nothing, api_version, body)
