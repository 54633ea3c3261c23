"""Chat events as the browser SDK's notification bodies (``@azure/communication-signaling``).

Threadline stores each event in the JS SDK's event shape (``services/payloads``);
the browser channel re-encodes it as the body the real service sends, which
the SDK decodes back (``TrouterUtils.toEventPayload``):

* a numeric ``eventId`` selects the handler;
* identifiers travel as raw ids (MRIs: ``8:acs:...``);
* some fields are JSON text inside a string (metadata, attachments, the read
  receipt's ``messageBody``), others JSON text encoded with JavaScript's
  ``escape()`` (participants, ``properties``, ``createdBy``...), because the
  SDK applies ``unescape`` before ``JSON.parse``;
* a read receipt's time is epoch milliseconds inside ``consumptionhorizon``.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import msgspec

from threadline.protocol.times import parse_iso

__all__ = ["EVENT_IDS", "js_escape", "notification_body", "raw_id"]

#: The SDK's event ids (``TrouterUtils.eventIds``).
EVENT_IDS = {
    "chatMessageReceived": 200,
    "typingIndicatorReceived": 245,
    "readReceiptReceived": 246,
    "chatMessageEdited": 247,
    "chatMessageDeleted": 248,
    "chatThreadCreated": 257,
    "chatThreadPropertiesUpdated": 258,
    "chatThreadDeleted": 259,
    "participantsAdded": 260,
    "participantsRemoved": 261,
}

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@*_+-./")
_encode = msgspec.json.Encoder().encode


def js_escape(text: str) -> str:
    """JavaScript's ``escape()``: what the SDK's ``unescape()`` reverses exactly.

    Characters below U+0100 become ``%XX``, others ``%uXXXX`` per UTF-16 unit
    (astral characters as two surrogates); ``A-Z a-z 0-9 @*_+-./`` stay.
    """
    out: list[str] = []
    for char in text:
        if char in _SAFE:
            out.append(char)
            continue
        point = ord(char)
        if point < 0x100:
            out.append(f"%{point:02X}")
        elif point < 0x10000:
            out.append(f"%u{point:04X}")
        else:
            point -= 0x10000
            out.append(f"%u{0xD800 + (point >> 10):04X}%u{0xDC00 + (point & 0x3FF):04X}")
    return "".join(out)


def raw_id(kind: Any) -> str:
    """The raw id (MRI) of a ``CommunicationIdentifierKind`` object."""
    if not isinstance(kind, dict):
        return ""
    for key in ("communicationUserId", "rawId", "id"):
        value = kind.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _json_text(value: Any) -> str:
    """JSON text of a value, or ``""`` for an empty one (the SDK reads ``""`` as absent)."""
    if value in (None, {}, []):
        return ""
    return _encode(value).decode()


def _escaped(value: Any) -> str:
    return js_escape(_encode(value).decode())


def _participant(item: Any) -> dict[str, Any]:
    """A participant as the payload's ``{participantId, displayName, shareHistoryTime?, memberMetaData?}``."""
    if not isinstance(item, dict):
        return {"participantId": "", "displayName": ""}
    out: dict[str, Any] = {"participantId": raw_id(item.get("id")), "displayName": item.get("displayName") or ""}
    share = item.get("shareHistoryTime")
    if isinstance(share, str) and share and not share.startswith("1970-01-01"):
        out["shareHistoryTime"] = share  # omitted when unset: the SDK would surface epoch 0 as a date
    if item.get("metadata"):
        out["memberMetaData"] = _json_text(item["metadata"])
    return out


def _by(item: Any, names: dict[str, str]) -> str:
    """``createdBy``/``editedBy``/...: a participant, named when the event lists its display name."""
    who = raw_id(item.get("id")) if isinstance(item, dict) else ""
    display = (item or {}).get("displayName") if isinstance(item, dict) else None
    return _escaped({"participantId": who, "displayName": display or names.get(who, "")})


def _retention(policy: Any) -> str:
    """The SDK's ``retentionPolicy`` JSON text for the JS shape ``{kind, deleteThreadAfterDays}``."""
    if isinstance(policy, dict) and policy.get("kind") == "threadCreationDate":
        days = int(policy.get("deleteThreadAfterDays") or 0)
        return _encode({"retentionPolicyType": "DeleteAfterCreationTime", "executeAfter": f"{days}.00:00:00"}).decode()
    return ""


def _properties(data: dict[str, Any]) -> str:
    props = data.get("properties") if isinstance(data.get("properties"), dict) else {}
    assert isinstance(props, dict)
    out: dict[str, Any] = {"topic": props.get("topic") or ""}
    metadata = _json_text(props.get("metadata"))
    if metadata:
        out["acsChatThreadMetadata"] = metadata
    retention = _retention(data.get("retentionPolicy"))
    if retention:
        out["retentionPolicy"] = retention
    return _escaped(out)


def _epoch_ms(text: Any) -> int:
    if not isinstance(text, str) or not text:
        return 0
    moment = parse_iso(text)
    return int(moment.astimezone(UTC).timestamp() * 1000)


def _message(event_type: str, data: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    base.update(
        groupId=data.get("threadId", ""), senderId=raw_id(data.get("sender")), messageId=data.get("id", ""),
        clientMessageId="", senderDisplayName=data.get("senderDisplayName") or "",
        messageType=data.get("type") or "Text", version=data.get("version", ""),
        originalArrivalTime=data.get("createdOn", ""),
    )
    if event_type == "chatMessageDeleted":
        base["deletetime"] = data.get("deletedOn", "")
        return base
    base["messageBody"] = data.get("message") or ""
    base["acsChatMessageMetadata"] = _json_text(data.get("metadata"))
    base["attachments"] = _json_text(data.get("attachments"))
    if event_type == "chatMessageEdited":
        base["edittime"] = data.get("editedOn", "")
    return base


def notification_body(event_type: str, data: dict[str, Any], recipient: str) -> str | None:
    """The notification body (JSON text) of one event for one recipient, or None for an unknown type.

    Args:
        event_type: the JS SDK's event name (``Event.type``).
        data: the event's stored payload (the JS SDK's shape).
        recipient: the raw id of the user the notification goes to.

    Returns:
        The JSON text to put, as a string, in the notification frame's ``body``.
    """
    event_id = EVENT_IDS.get(event_type)
    if event_id is None:
        return None
    body: dict[str, Any] = {"eventId": event_id, "recipientMri": recipient}
    if event_type in ("chatMessageReceived", "chatMessageEdited", "chatMessageDeleted"):
        _message(event_type, data, body)
    elif event_type == "typingIndicatorReceived":
        body.update(groupId=data.get("threadId", ""), senderId=raw_id(data.get("sender")),
                    senderDisplayName=data.get("senderDisplayName") or "", version=data.get("version", ""),
                    originalArrivalTime=data.get("receivedOn", ""))
    elif event_type == "readReceiptReceived":
        message_id = str(data.get("chatMessageId", ""))
        reader = raw_id(data.get("sender"))
        horizon = f"{message_id};{_epoch_ms(data.get('readOn'))};{message_id}"
        body.update(groupId=data.get("threadId", ""), senderId=reader, messageId=message_id, clientMessageId="",
                    messageBody=_encode({"user": reader, "consumptionhorizon": horizon,
                                         "messageVisibilityTime": 0, "version": message_id}).decode())
    else:
        _thread_event(event_type, data, body)
    return _encode(body).decode()


def _thread_event(event_type: str, data: dict[str, Any], body: dict[str, Any]) -> None:
    body.update(threadId=data.get("threadId", ""), version=data.get("version", ""))
    listed = [p for key in ("participants", "participantsAdded", "participantsRemoved")
              for p in (data.get(key) or []) if isinstance(p, dict)]
    names = {raw_id(p.get("id")): p.get("displayName") or "" for p in listed}
    if event_type == "chatThreadCreated":
        body.update(createTime=data.get("createdOn", ""), createdBy=_by(data.get("createdBy"), names),
                    members=_escaped([_participant(p) for p in data.get("participants") or []]),
                    properties=_properties(data))
    elif event_type == "chatThreadPropertiesUpdated":
        body.update(editTime=data.get("updatedOn", ""), editedBy=_by(data.get("updatedBy"), names),
                    properties=_properties(data))
    elif event_type == "chatThreadDeleted":
        body["deleteTime"] = data.get("deletedOn", "")
        if data.get("deletedBy"):
            body["deletedBy"] = _by(data.get("deletedBy"), names)
        else:
            body["reason"] = "deletedByPolicy"
    else:
        verb = "added" if event_type == "participantsAdded" else "removed"
        key = "participantsAdded" if verb == "added" else "participantsRemoved"
        body.update({"time": data.get(f"{verb}On", ""), f"{verb}By": _by(data.get(f"{verb}By"), names),
                     key: _escaped([_participant(p) for p in data.get(key) or []])})
