"""Checks shared by the chat services: access, validation, paging cursors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from threadline.protocol import ids
from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.inputs import MAX_ID_CHARS, check_text, invalid, parse_int_text
from threadline.protocol.wire import Identifier
from threadline.server.limits import Limits
from threadline.store.base import Store
from threadline.store.records import ParticipantRecord, ThreadRecord

from .access import Access
from .actor import Actor

__all__ = [
    "Page",
    "merge_metadata",
    "require_member",
    "require_member_thread",
    "resolve_identifier",
    "validate_metadata",
    "validate_page_size",
    "validate_skip",
]

T = TypeVar("T")


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a list and the opaque cursor of the next (None on the last)."""

    items: list[T]
    cursor: str | None = None

    @classmethod
    def by_offset(cls, rows: list[T], size: int, offset: int) -> Page[T]:
        """A page from ``size + 1`` rows read at ``offset``; the cursor is the next offset."""
        if len(rows) > size:
            return cls(rows[:size], str(offset + size))
        return cls(rows)


async def require_member(access: Access, actor: Actor, thread_id: str) -> ParticipantRecord:
    """Return the actor's live membership of a live thread (from the access cache when it holds it).

    Raises:
        ChatServiceError: 404 for an unknown or deleted thread, 403 for a non-member.
    """
    if not actor.can_chat:
        raise ChatServiceError(ErrorKind.FORBIDDEN, "The token has no chat scope.")
    live, member = await access.membership(thread_id, actor.user_id)
    if not live:
        raise ChatServiceError(ErrorKind.NOT_FOUND, "Thread not found.", target="chatThreadId")
    if member is None:
        raise ChatServiceError(ErrorKind.FORBIDDEN)
    return member


async def require_member_thread(
    store: Store, actor: Actor, thread_id: str
) -> tuple[ThreadRecord, ParticipantRecord]:
    """Return the live thread, read now (its topic, metadata...), and the actor's membership.

    Raises:
        ChatServiceError: 404 for an unknown or deleted thread, 403 for a non-member.
    """
    if not actor.can_chat:
        raise ChatServiceError(ErrorKind.FORBIDDEN, "The token has no chat scope.")
    thread, member = await store.get_access(thread_id, actor.user_id)
    if thread is None or thread.deleted_ms is not None:
        raise ChatServiceError(ErrorKind.NOT_FOUND, "Thread not found.", target="chatThreadId")
    if member is None:
        raise ChatServiceError(ErrorKind.FORBIDDEN)
    return thread, member


def resolve_identifier(identifier: Identifier, target: str = "communicationIdentifier") -> str:
    """Return the raw id an identifier model names.

    Raises:
        ChatServiceError: 400 when it names nothing, or its forms disagree.
    """
    raw = identifier.raw_id
    user = identifier.communication_user.id if identifier.communication_user else None
    if raw and user and raw != user:
        raise invalid("rawId and communicationUser.id name different users.", target)
    if not raw:
        raw = user
    if not raw and identifier.phone_number is not None:
        raw = f"4:{identifier.phone_number.value}"
    if not raw:
        raise invalid("The identifier has no rawId.", target)
    return check_text(raw, f"{target}.rawId", MAX_ID_CHARS)


def parse_sequence_cursor(cursor: str | None) -> int | None:
    """Read a ``syncState`` that is a sequence number (the message list's cursor).

    Args:
        cursor: the token a client sent back; None or empty means the first page.

    Returns:
        The number, or None for the first page.

    Raises:
        ChatServiceError: 400 naming ``syncState`` unless it is ASCII digits (an optional
            sign) whose value is within ``0..INT64_MAX``.
    """
    try:
        return parse_int_text(cursor, "syncState", minimum=0)
    except ChatServiceError:
        raise invalid("The continuation token is not valid.", "syncState") from None


def validate_page_size(size: int | None, limits: Limits) -> int:
    """Return the page size to use.

    Raises:
        ChatServiceError: 400 outside [1, limit].
    """
    if size is None:
        return min(limits.page_size_default, limits.page_size_max)
    if size < 1 or size > limits.page_size_max:
        raise invalid(f"maxPageSize must be between 1 and {limits.page_size_max}.", "maxPageSize")
    return size


def validate_skip(skip: int | None) -> int:
    """Return a valid ``skip``.

    Raises:
        ChatServiceError: 400 when negative.
    """
    if skip is None:
        return 0
    if skip < 0:
        raise invalid("skip must not be negative.", "skip")
    return skip


def validate_metadata(metadata: dict[str, str] | None, limits: Limits, target: str = "metadata") -> None:
    """Check a metadata map's total size.

    Raises:
        ChatServiceError: 400 over the limit.
    """
    if metadata and len(msgspec.json.encode(metadata)) > limits.metadata_bytes:
        raise invalid(f"metadata must not exceed {limits.metadata_bytes} bytes.", target)


def merge_metadata(
    current: dict[str, str] | None, patch: dict[str, str | None], limits: Limits
) -> dict[str, str]:
    """Apply a metadata patch (a null value removes its key) and check the result's size.

    Raises:
        ChatServiceError: 400 when the merged map is over the limit.
    """
    merged = dict(current or {})
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    validate_metadata(merged, limits)
    return merged


def check_participant_id(raw_id: str, resource_id: str) -> tuple[str, str] | None:
    """Why a raw id cannot join a thread: ``(code, message)`` as ACS reports, or None."""
    if not ids.is_communication_user(raw_id):
        return "403", "Permissions check failed"
    if not raw_id.startswith(f"8:acs:{resource_id}_"):
        return "403", "Permissions check failed"
    return None
