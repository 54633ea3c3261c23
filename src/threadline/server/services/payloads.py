"""Real-time event payloads, shaped as the ACS JS SDK's chat events.

Payloads are built inside the write transaction and stored in the event log,
so a client that resumes later receives exactly what a live client received.
The per-connection ``recipient`` field is added at delivery.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from threadline.protocol import ids
from threadline.protocol.times import format_ms
from threadline.protocol.wire import encode
from threadline.server import views
from threadline.store.records import MessageRecord, ParticipantRecord, ReadReceiptRecord, ThreadRecord

__all__ = [
    "identifier_kind",
    "message_event",
    "participants_event",
    "receipt_event",
    "thread_created",
    "thread_deleted",
    "thread_updated",
    "typing_event",
]

_MESSAGE_TYPES = {"text": "Text", "html": "RichText/Html"}


def identifier_kind(raw_id: str) -> dict[str, Any]:
    """The JS SDK's ``CommunicationIdentifierKind`` for a raw id."""
    parsed = ids.parse_raw_id(raw_id)
    if parsed.kind == ids.COMMUNICATION_USER:
        return {"kind": "communicationUser", "communicationUserId": raw_id}
    if parsed.kind == ids.PHONE_NUMBER:
        return {"kind": "phoneNumber", "phoneNumber": parsed.properties["value"], "rawId": raw_id}
    if parsed.kind == ids.MICROSOFT_TEAMS_USER:
        return {"kind": "microsoftTeamsUser", "microsoftTeamsUserId": parsed.properties["user_id"],
                "rawId": raw_id}
    return {"kind": "unknown", "id": raw_id}


@functools.lru_cache(maxsize=4096)
def _sender(raw_id: str) -> msgspec.Raw:
    """A message event's ``sender``, encoded once per sender (every send of a user repeats it)."""
    return msgspec.Raw(encode(identifier_kind(raw_id)))


def _participant(p: ParticipantRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"id": identifier_kind(p.user_id), "shareHistoryTime": format_ms(p.share_history_ms)}
    if p.display_name is not None:
        out["displayName"] = p.display_name
    if p.metadata:
        out["metadata"] = p.metadata
    return out


def _properties(thread: ThreadRecord) -> dict[str, Any]:
    """The ``properties`` of thread events: topic and (when any) metadata."""
    props: dict[str, Any] = {"topic": thread.topic}
    if thread.metadata:
        props["metadata"] = thread.metadata
    return props


def message_event(kind: str, message: MessageRecord) -> list[tuple[str, bytes]]:
    """``chatMessageReceived``/``Edited``/``Deleted`` for a user message."""
    body: dict[str, Any] = {
        "threadId": message.thread_id,
        "sender": _sender(message.sender_id or ""),
        "senderDisplayName": message.sender_display_name or "",
        "id": message.id,
        "createdOn": format_ms(message.created_ms),
        "version": str(message.version),
        "sequenceId": str(message.sequence_id),
    }
    if kind != "chatMessageDeleted":
        body["type"] = _MESSAGE_TYPES.get(message.type, message.type)
        body["message"] = message.content or ""
        body["metadata"] = message.metadata or {}
        if message.attachments:
            body["attachments"] = [views.attachment(i) for i in message.attachments]
    if kind == "chatMessageEdited" and message.edited_ms is not None:
        body["editedOn"] = format_ms(message.edited_ms)
    if kind == "chatMessageDeleted" and message.deleted_ms is not None:
        body["deletedOn"] = format_ms(message.deleted_ms)
    return [(kind, encode(body))]


def _by(raw_id: str, members: list[ParticipantRecord] | None = None) -> dict[str, Any]:
    """The ``createdBy``/``updatedBy``/... participant: its id and, when known, its display name."""
    out: dict[str, Any] = {"id": identifier_kind(raw_id)}
    name = next((m.display_name for m in members or [] if m.user_id == raw_id), None)
    if name is not None:
        out["displayName"] = name
    return out


def thread_created(thread: ThreadRecord, members: list[ParticipantRecord]) -> list[tuple[str, bytes]]:
    body: dict[str, Any] = {
        "threadId": thread.id,
        "version": str(thread.created_ms),
        "createdOn": format_ms(thread.created_ms),
        "properties": _properties(thread),
        "participants": [_participant(p) for p in members],
        "createdBy": _by(thread.created_by, members),
    }
    if thread.retention is not None:
        body["retentionPolicy"] = thread.retention
    return [("chatThreadCreated", encode(body))]


def thread_updated(thread: ThreadRecord, by: str, now_ms: int) -> list[tuple[str, bytes]]:
    """``chatThreadPropertiesUpdated`` with the thread's properties after the update."""
    body: dict[str, Any] = {
        "threadId": thread.id,
        "version": str(now_ms),
        "properties": _properties(thread),
        "updatedOn": format_ms(now_ms),
        "updatedBy": _by(by),
    }
    if thread.retention is not None:
        body["retentionPolicy"] = thread.retention
    return [("chatThreadPropertiesUpdated", encode(body))]


def thread_deleted(thread_id: str, by: str, now_ms: int) -> list[tuple[str, bytes]]:
    body = {
        "threadId": thread_id,
        "version": str(now_ms),
        "deletedOn": format_ms(now_ms),
        "deletedBy": _by(by),
    }
    return [("chatThreadDeleted", encode(body))]


def participants_event(added: bool, message: MessageRecord) -> list[tuple[str, bytes]]:
    """``participantsAdded``/``participantsRemoved`` from the system message that records it."""
    kind, verb = ("participantsAdded", "added") if added else ("participantsRemoved", "removed")
    when = format_ms(message.created_ms)
    body = {
        "threadId": message.thread_id,
        "version": str(message.version),
        f"{verb}On": when,
        f"participants{verb.capitalize()}": [_participant(p) for p in message.participants or []],
        f"{verb}By": _by(message.initiator_id or ""),
    }
    return [(kind, encode(body))]


def receipt_event(receipt: ReadReceiptRecord, display_name: str | None = None) -> list[tuple[str, bytes]]:
    """The ``readReceiptReceived`` event; ``display_name`` is the reader's name in the thread, when it has one."""
    body = {
        "threadId": receipt.thread_id,
        "sender": identifier_kind(receipt.user_id),
        "senderDisplayName": display_name or "",
        "chatMessageId": receipt.message_id,
        "readOn": format_ms(receipt.read_ms),
    }
    return [("readReceiptReceived", encode(body))]


def typing_event(thread_id: str, sender: str, display_name: str | None, now_ms: int) -> bytes:
    body = {
        "threadId": thread_id,
        "sender": identifier_kind(sender),
        "senderDisplayName": display_name or "",
        "receivedOn": format_ms(now_ms),
        "version": str(now_ms),
    }
    return encode(body)
