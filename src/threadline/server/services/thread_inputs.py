"""The thread service's input rules: a topic, the participants of a request, a thread-list cursor."""

from __future__ import annotations

import re

from threadline.protocol.errors import ChatServiceError
from threadline.protocol.inputs import MAX_ID_CHARS, invalid, parse_time_ms
from threadline.protocol.wire import CommunicationError, Participant
from threadline.server.limits import Limits
from threadline.store.records import ParticipantRecord

from .common import check_participant_id, parse_sequence_cursor, resolve_identifier, validate_metadata

__all__ = ["parse_list_cursor", "thread_topic", "wire_members"]

_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def thread_topic(limits: Limits, topic: str | None) -> str:
    """Return a valid topic.

    Raises:
        ChatServiceError: 400 for an empty or over-long topic.
    """
    if topic is None or not topic.strip():
        raise invalid("topic must not be empty.", "topic")
    if len(topic) > limits.topic_chars:
        raise invalid(f"topic must not exceed {limits.topic_chars} characters.", "topic")
    return topic


def wire_members(
    limits: Limits, resource_id: str, participants: list[Participant]
) -> tuple[list[ParticipantRecord], list[CommunicationError]]:
    """Turn wire participants into records; ids that may not join become ACS errors.

    Returns:
        The records (one per raw id, the last given wins) and the per-participant errors.

    Raises:
        ChatServiceError: 400 for too many participants, an over-long name, bad metadata or a
            bad share time.
    """
    if len(participants) > limits.participants_per_batch:
        raise invalid(
            f"At most {limits.participants_per_batch} participants may be given at once.", "participants"
        )
    records: dict[str, ParticipantRecord] = {}
    errors: list[CommunicationError] = []
    for p in participants:
        raw = resolve_identifier(p.communication_identifier)
        if p.display_name is not None and len(p.display_name) > limits.display_name_chars:
            raise invalid("displayName is too long.", "displayName")
        validate_metadata(p.metadata, limits, "participants.metadata")
        reason = check_participant_id(raw, resource_id)
        if reason is not None:
            errors.append(CommunicationError(code=reason[0], message=reason[1], target=raw))
            continue
        share = parse_time_ms(p.share_history_time, "shareHistoryTime") or 0
        # ACS keeps whole seconds of the share time; an earlier one than 1970 stays as sent.
        records[raw] = ParticipantRecord(raw, p.display_name, share - share % 1000, p.metadata)
    return list(records.values()), errors


def parse_list_cursor(cursor: str) -> tuple[int, str]:
    """Read a thread-list cursor: ``<activity ms>.<hex of the last thread id>``.

    Raises:
        ChatServiceError: 400 unless the activity fits a 64-bit integer and the id is
            lowercase hex of a UTF-8 id without NUL, of at most ``MAX_ID_CHARS``.
    """
    activity, _, last_id = cursor.partition(".")
    try:
        when = parse_sequence_cursor(activity)
        if when is None or _HEX.fullmatch(last_id) is None or len(last_id) > 2 * MAX_ID_CHARS:
            raise ValueError(cursor)
        thread_id = bytes.fromhex(last_id).decode("utf-8")
        if "\x00" in thread_id:
            raise ValueError(cursor)
        return when, thread_id
    except (ValueError, ChatServiceError):
        raise invalid("The continuation token is not valid.", "syncState") from None
