"""Turning database rows into records and back, shared by every engine.

Rows are read by column name (``sqlite3.Row`` and asyncpg's ``Record`` both
allow it). JSON columns hold metadata, retention policies and the
participants of system messages.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .records import MessageDraft, MessageRecord, ParticipantRecord, ReadReceiptRecord, ThreadRecord, UserRecord

__all__ = [
    "MESSAGE_COLUMNS",
    "PARTICIPANT_COLUMNS",
    "THREAD_COLUMNS",
    "T_THREAD_COLUMNS",
    "access_from",
    "drafted_message",
    "dump_json",
    "dump_participants",
    "load_json",
    "message_from",
    "message_values",
    "participant_from",
    "receipt_from",
    "thread_from",
    "user_from",
]

THREAD_COLUMNS = "id, topic, created_ms, created_by, deleted_ms, last_message_ms, metadata, retention"
#: :data:`THREAD_COLUMNS` of a query where ``threads`` is aliased ``t``.
T_THREAD_COLUMNS = ", ".join(f"t.{c}" for c in THREAD_COLUMNS.split(", "))
PARTICIPANT_COLUMNS = "user_id, display_name, share_history_ms, metadata"
MESSAGE_COLUMNS = (
    "thread_id, seq, id, type, sender_id, sender_display_name, content, topic, participants, "
    "initiator_id, metadata, created_ms, version, edited_ms, deleted_ms"
)

#: A row readable by column name (sqlite3.Row or asyncpg.Record).
Row = Any


def dump_json(value: Any) -> str | None:
    """Encode a JSON column; None stays NULL."""
    return None if value is None else msgspec.json.encode(value).decode("utf-8")


def load_json(text: str | bytes | None) -> Any:
    """Decode a JSON column; NULL gives None."""
    return None if text is None else msgspec.json.decode(text)


def dump_participants(participants: list[ParticipantRecord] | None) -> str | None:
    """Encode the participants of a system message."""
    if participants is None:
        return None
    return dump_json([
        {"u": p.user_id, "n": p.display_name, "s": p.share_history_ms, **({"m": p.metadata} if p.metadata else {})}
        for p in participants
    ])


def _load_participants(text: str | None) -> list[ParticipantRecord] | None:
    items = load_json(text)
    if items is None:
        return None
    return [
        ParticipantRecord(user_id=i["u"], display_name=i["n"], share_history_ms=i["s"], metadata=i.get("m"))
        for i in items
    ]


def user_from(row: Row) -> UserRecord:
    return UserRecord(
        id=row["id"],
        created_ms=row["created_ms"],
        token_generation=row["token_generation"],
        deleted_ms=row["deleted_ms"],
    )


def thread_from(row: Row) -> ThreadRecord:
    return ThreadRecord(
        id=row["id"],
        topic=row["topic"],
        created_ms=row["created_ms"],
        created_by=row["created_by"],
        deleted_ms=row["deleted_ms"],
        last_message_ms=row["last_message_ms"],
        metadata=load_json(row["metadata"]),
        retention=load_json(row["retention"]),
    )


def access_from(row: Row) -> tuple[ThreadRecord, ParticipantRecord | None]:
    """A thread (:data:`T_THREAD_COLUMNS`) and the live membership LEFT JOINed to it.

    The membership columns are ``p.user_id, p.display_name, p.share_history_ms``
    (its metadata is not read); a NULL ``user_id`` means no membership.
    """
    member = None
    if row["user_id"] is not None:
        member = ParticipantRecord(
            user_id=row["user_id"], display_name=row["display_name"],
            share_history_ms=row["share_history_ms"], metadata=None,
        )
    return thread_from(row), member


def participant_from(row: Row) -> ParticipantRecord:
    return ParticipantRecord(
        user_id=row["user_id"],
        display_name=row["display_name"],
        share_history_ms=row["share_history_ms"],
        metadata=load_json(row["metadata"]),
    )


def message_from(row: Row) -> MessageRecord:
    return MessageRecord(
        thread_id=row["thread_id"],
        id=row["id"],
        sequence_id=row["seq"],
        type=row["type"],
        created_ms=row["created_ms"],
        version=row["version"],
        sender_id=row["sender_id"],
        sender_display_name=row["sender_display_name"],
        content=row["content"],
        topic=row["topic"],
        participants=_load_participants(row["participants"]),
        initiator_id=row["initiator_id"],
        metadata=load_json(row["metadata"]),
        edited_ms=row["edited_ms"],
        deleted_ms=row["deleted_ms"],
    )


def drafted_message(thread_id: str, seq: int, message_id: int, draft: MessageDraft, now_ms: int) -> MessageRecord:
    """The record of a draft given its sequence id and epoch-ms id (which is also its version)."""
    return MessageRecord(
        thread_id=thread_id, id=str(message_id), sequence_id=seq, type=draft.type, created_ms=now_ms,
        version=message_id, sender_id=draft.sender_id, sender_display_name=draft.sender_display_name,
        content=draft.content, topic=draft.topic, participants=draft.participants,
        initiator_id=draft.initiator_id, metadata=draft.metadata,
    )


def message_values(m: MessageRecord) -> tuple[Any, ...]:
    """The values of :data:`MESSAGE_COLUMNS` for a message, in order (the inverse of :func:`message_from`)."""
    return (
        m.thread_id, m.sequence_id, m.id, m.type, m.sender_id, m.sender_display_name, m.content, m.topic,
        dump_participants(m.participants), m.initiator_id, dump_json(m.metadata), m.created_ms, m.version,
        m.edited_ms, m.deleted_ms,
    )


def receipt_from(row: Row) -> ReadReceiptRecord:
    return ReadReceiptRecord(
        thread_id=row["thread_id"],
        user_id=row["user_id"],
        message_id=row["message_id"],
        read_ms=row["read_ms"],
    )
