"""Store events -> ACS Event Grid chat events (``Microsoft.Communication.*``).

The event log holds each change once, shaped as the JS SDK's real-time event
(see :mod:`threadline.server.services.payloads`). ACS publishes every change
to Event Grid at two levels (``docs/webhooks.md``):

* thread-level (``...InThread``, ``ChatThreadCreated`` ...): once per thread;
* user-level (``ChatMessageReceived``, ``...WithUser``, ``...PerUser``): once
  per member of the thread at that moment, except the one who caused it.

:func:`map_event` turns one stored event into those :class:`ChatEvent` items.
Ids are derived from (resource, position, type, recipient, index), so every
retry and every replay of the same change carries the same id.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from threadline.protocol.times import parse_iso
from threadline.server.views import identifier
from threadline.store.records import Event, ThreadRecord

__all__ = ["CHAT_EVENT_TYPES", "PREFIX", "ChatEvent", "format_event_time", "map_event"]

PREFIX = "Microsoft.Communication."

#: Every chat event type Threadline emits, with its level.
CHAT_EVENT_TYPES: dict[str, str] = {
    f"{PREFIX}ChatMessageReceived": "user",
    f"{PREFIX}ChatMessageEdited": "user",
    f"{PREFIX}ChatMessageDeleted": "user",
    f"{PREFIX}ChatThreadCreatedWithUser": "user",
    f"{PREFIX}ChatThreadWithUserDeleted": "user",
    f"{PREFIX}ChatThreadPropertiesUpdatedPerUser": "user",
    f"{PREFIX}ChatParticipantAddedToThreadWithUser": "user",
    f"{PREFIX}ChatParticipantRemovedFromThreadWithUser": "user",
    f"{PREFIX}ChatMessageReceivedInThread": "thread",
    f"{PREFIX}ChatMessageEditedInThread": "thread",
    f"{PREFIX}ChatMessageDeletedInThread": "thread",
    f"{PREFIX}ChatThreadCreated": "thread",
    f"{PREFIX}ChatThreadDeleted": "thread",
    f"{PREFIX}ChatThreadPropertiesUpdated": "thread",
    f"{PREFIX}ChatThreadParticipantAdded": "thread",
    f"{PREFIX}ChatThreadParticipantRemoved": "thread",
    f"{PREFIX}ChatTypingIndicatorReceivedInThread": "thread",
}

log = logging.getLogger("threadline.webhooks")

_NAMESPACE = uuid.UUID("5c1f0f8e-3c43-4c55-9a0b-8f0d1e2a7b61")
_EG_MESSAGE_TYPES = {"Text": "Text", "RichText/Html": "Html"}


@dataclass(slots=True)
class ChatEvent:
    """One Event Grid chat event, before its envelope.

    Attributes:
        id: stable id (a UUID string), the same on every retry and replay.
        event_type: ``Microsoft.Communication.ChatMessageReceived`` ...
        subject: ``thread/{threadId}/sender/{rawId}[/recipient/{rawId}]`` ...
        data: the ``data`` object, with ACS field names.
        time_ms: when the change happened (the envelope's ``eventTime``).
        thread_id: the thread, for ordering.
        position: the event-log position it comes from (0 when never stored).
    """

    id: str
    event_type: str
    subject: str
    data: dict[str, Any]
    time_ms: int
    thread_id: str
    position: int


def format_event_time(ms: int) -> str:
    """Epoch ms as Event Grid writes ``eventTime``: ``2021-02-19T00:25:59.9430000Z``."""
    whole = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{ms % 1000:03d}0000Z"


def _ms_time(ms: int) -> str:
    """Epoch ms as ACS writes ``composeTime``: ``2021-02-19T00:25:58.927Z``."""
    whole = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{ms % 1000:03d}Z"


def _iso_ms(text: str | None, fallback: int) -> int:
    if not text:
        return fallback
    try:
        return int(parse_iso(text).timestamp() * 1000)
    except ValueError:
        return fallback


def _int(value: Any, fallback: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return fallback


def _raw(kind: Any) -> str:
    """The raw id of a JS-SDK ``CommunicationIdentifierKind`` (or ``{"id": kind}`` wrapper)."""
    if not isinstance(kind, dict):
        return ""
    if "id" in kind and isinstance(kind["id"], dict):
        return _raw(kind["id"])
    for key in ("rawId", "communicationUserId", "id"):
        value = kind.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _ident(raw_id: str) -> dict[str, Any]:
    """A ``CommunicationIdentifierModel`` as in Event Grid data."""
    return msgspec.to_builtins(identifier(raw_id))  # type: ignore[no-any-return]


def _participant(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"participantCommunicationIdentifier": _ident(_raw(p.get("id")))}
    if p.get("displayName") is not None:
        out["displayName"] = p["displayName"]
    if isinstance(p.get("metadata"), dict):
        out["metadata"] = p["metadata"]
    return out


class _Builder:
    """Collects the events of one stored event with stable ids."""

    def __init__(self, resource: str, event: Event) -> None:
        self.resource = resource
        self.event = event
        self.items: list[ChatEvent] = []
        digest = hashlib.sha256(f"{resource}/{event.position}/{event.type}/{event.created_ms}".encode()).digest()
        self.transaction = f"{base64.b64encode(digest[:16]).decode().rstrip('=')}.{event.position}"

    def add(self, name: str, subject: str, data: dict[str, Any], *, recipient: str | None = None,
            index: int = 0) -> None:
        ev = self.event
        data["threadId"] = ev.thread_id
        data["transactionId"] = self.transaction
        if recipient is not None:
            data["recipientCommunicationIdentifier"] = _ident(recipient)
            subject = f"{subject}/recipient/{recipient}"
        key = f"{self.resource}/{ev.thread_id}/{ev.position}/{ev.created_ms}/{name}/{recipient or ''}/{index}"
        self.items.append(ChatEvent(
            id=str(uuid.uuid5(_NAMESPACE, key)), event_type=PREFIX + name, subject=subject, data=data,
            time_ms=ev.created_ms, thread_id=ev.thread_id, position=ev.position,
        ))

    def both(self, thread_name: str, user_name: str, subject: str, data: dict[str, Any], actor: str,
             *, index: int = 0, user_extra: Callable[[dict[str, Any], str], None] | None = None,
             thread_drop: tuple[str, ...] = ()) -> None:
        """One thread-level event (without ``thread_drop`` fields), then one user-level event per
        recipient except ``actor``."""
        self.add(thread_name, subject, {k: v for k, v in data.items() if k not in thread_drop}, index=index)
        for recipient in self.event.recipients:
            if recipient == actor:
                continue
            copy = dict(data)
            if user_extra is not None:
                user_extra(copy, recipient)
            self.add(user_name, subject, copy, recipient=recipient, index=index)


def map_event(event: Event, resource: str, thread: ThreadRecord | None = None) -> list[ChatEvent]:
    """The Event Grid chat events of one stored (or ephemeral) event.

    Args:
        event: the event with its recipients (members when it happened).
        resource: the topic (ARM-like resource id); part of every id.
        thread: the thread, when known, for ``createTime`` and thread ``metadata``.

    Returns:
        Thread-level first, then user-level events; empty for types Event
        Grid has no counterpart for (read receipts).
    """
    try:
        body = msgspec.json.decode(event.payload)
    except msgspec.DecodeError:
        return []
    if not isinstance(body, dict):
        return []
    build = _Builder(resource, event)
    handler = _HANDLERS.get(event.type)
    if handler is not None:
        try:
            handler(build, body, thread)
        except (AttributeError, KeyError, TypeError, ValueError):
            # A payload of an unexpected shape must not block the subscription forever.
            log.exception("webhook mapping skipped an event", extra={"position": event.position, "type": event.type})
            return []
    return build.items


def _message(build: _Builder, body: dict[str, Any], _thread: ThreadRecord | None) -> None:
    kind = build.event.type
    sender = _raw(body.get("sender"))
    message_id = str(body.get("id", ""))
    compose_ms = _int(message_id, _iso_ms(body.get("createdOn"), build.event.created_ms))
    data: dict[str, Any] = {
        "messageId": message_id,
        "senderCommunicationIdentifier": _ident(sender),
        "senderDisplayName": body.get("senderDisplayName") or "",
        "composeTime": _ms_time(compose_ms),
        "type": _EG_MESSAGE_TYPES.get(body.get("type") or "Text", body.get("type") or "Text"),
        "version": _int(body.get("version"), compose_ms),
    }
    if kind == "chatMessageDeleted":
        data["deleteTime"] = _ms_time(_iso_ms(body.get("deletedOn"), build.event.created_ms))
        names = ("ChatMessageDeletedInThread", "ChatMessageDeleted")
    else:
        data["messageBody"] = body.get("message") or ""
        data["metadata"] = body.get("metadata") or {}
        names = ("ChatMessageReceivedInThread", "ChatMessageReceived")
        if kind == "chatMessageEdited":
            data["editTime"] = _ms_time(_iso_ms(body.get("editedOn"), build.event.created_ms))
            names = ("ChatMessageEditedInThread", "ChatMessageEdited")

    def legacy(d: dict[str, Any], recipient: str) -> None:
        d["senderId"] = sender
        d["recipientId"] = recipient

    subject = f"thread/{build.event.thread_id}/sender/{sender}"
    build.both(*names, subject, data, sender, user_extra=legacy)


def _thread_base(build: _Builder, body: dict[str, Any], thread: ThreadRecord | None) -> dict[str, Any]:
    created = thread.created_ms if thread is not None else _iso_ms(body.get("createdOn"), build.event.created_ms)
    return {"createTime": _ms_time(created), "version": _int(body.get("version"), build.event.created_ms)}


def _thread_created(build: _Builder, body: dict[str, Any], thread: ThreadRecord | None) -> None:
    creator = _raw(body.get("createdBy"))
    data = _thread_base(build, body, thread)
    data["createdByCommunicationIdentifier"] = _ident(creator)
    data["properties"] = body.get("properties") or {}
    data["metadata"] = body.get("metadata") or (thread.metadata if thread is not None else None) or {}
    data["participants"] = [_participant(p) for p in body.get("participants") or []]
    subject = f"thread/{build.event.thread_id}/createdBy/{creator}"
    build.both("ChatThreadCreated", "ChatThreadCreatedWithUser", subject, data, creator)


def _thread_updated(build: _Builder, body: dict[str, Any], thread: ThreadRecord | None) -> None:
    editor = _raw(body.get("updatedBy"))
    data = _thread_base(build, body, thread)
    data["editedByCommunicationIdentifier"] = _ident(editor)
    data["editTime"] = _ms_time(_iso_ms(body.get("updatedOn"), build.event.created_ms))
    data["properties"] = body.get("properties") or {}
    data["metadata"] = body.get("metadata") or (thread.metadata if thread is not None else None) or {}
    subject = f"thread/{build.event.thread_id}/editedBy/{editor}"
    build.both("ChatThreadPropertiesUpdated", "ChatThreadPropertiesUpdatedPerUser", subject, data, editor)


def _thread_deleted(build: _Builder, body: dict[str, Any], thread: ThreadRecord | None) -> None:
    deleter = _raw(body.get("deletedBy"))
    data = _thread_base(build, body, thread)
    data["deletedByCommunicationIdentifier"] = _ident(deleter)
    data["deleteTime"] = _ms_time(_iso_ms(body.get("deletedOn"), build.event.created_ms))
    subject = f"thread/{build.event.thread_id}/deletedBy/{deleter}"
    build.both("ChatThreadDeleted", "ChatThreadWithUserDeleted", subject, data, deleter)


def _membership(build: _Builder, body: dict[str, Any], thread: ThreadRecord | None) -> None:
    added = build.event.type == "participantsAdded"
    verb = "added" if added else "removed"
    actor = _raw(body.get(f"{verb}By"))
    when = _ms_time(_iso_ms(body.get(f"{verb}On"), build.event.created_ms))
    names = (("ChatThreadParticipantAdded", "ChatParticipantAddedToThreadWithUser") if added
             else ("ChatThreadParticipantRemoved", "ChatParticipantRemovedFromThreadWithUser"))
    segment = "participantAdded" if added else "participantRemoved"
    for index, member in enumerate(body.get(f"participants{verb.capitalize()}") or []):
        data = _thread_base(build, body, thread)
        data["time"] = when
        data[f"{verb}ByCommunicationIdentifier"] = _ident(actor)
        data[segment] = _participant(member)
        subject = f"thread/{build.event.thread_id}/{segment}/{_raw(member.get('id'))}"
        # The thread-level participant events have no createTime in the ACS schema; the user-level ones do.
        build.both(*names, subject, data, actor, index=index, thread_drop=("createTime",))


def _typing(build: _Builder, body: dict[str, Any], _thread: ThreadRecord | None) -> None:
    sender = _raw(body.get("sender"))
    version = _int(body.get("version"), build.event.created_ms)
    data: dict[str, Any] = {
        "messageId": str(version),
        "senderCommunicationIdentifier": _ident(sender),
        "senderDisplayName": body.get("senderDisplayName") or "",
        "composeTime": _ms_time(_iso_ms(body.get("receivedOn"), build.event.created_ms)),
        "type": "Text",
        "version": version,
        "messageBody": "",
        "metadata": {},
    }
    build.add("ChatTypingIndicatorReceivedInThread", f"thread/{build.event.thread_id}/sender/{sender}", data)


_HANDLERS: dict[str, Callable[[_Builder, dict[str, Any], ThreadRecord | None], None]] = {
    "chatMessageReceived": _message,
    "chatMessageEdited": _message,
    "chatMessageDeleted": _message,
    "chatThreadCreated": _thread_created,
    "chatThreadPropertiesUpdated": _thread_updated,
    "chatThreadDeleted": _thread_deleted,
    "participantsAdded": _membership,
    "participantsRemoved": _membership,
    "typingIndicatorReceived": _typing,
}
