"""The admin service: resource-wide reads for ``/admin`` and the Explorer (no HTTP, no SQL).

Chat users see only their own threads; the admin (who holds the access key)
sees every identity, thread and message of the resource. Pages are keyset
cursors wrapped in opaque continuation tokens (:func:`encode_cursor`): a token
names the list it belongs to, so a token that was tampered with, or one of
another list, is refused with a 400 rather than read as something else.

Acting as a user is not done here: the admin asks the identity service for a
token of that user and calls the ordinary chat API with it, so every chat
rule (membership, share history, scopes, limits) applies unchanged.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import msgspec

from threadline import __version__
from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.inputs import invalid
from threadline.store.base import Store
from threadline.store.positions import Cursor
from threadline.store.records import MessageRecord, ParticipantRecord, ReadReceiptRecord, ThreadRecord, UserRecord

from .common import Page

_Row = TypeVar("_Row")

__all__ = [
    "MAX_PAGE",
    "AdminService",
    "ThreadDetail",
    "decode_cursor",
    "encode_cursor",
    "limits_dict",
    "page_size",
    "search_text",
]

#: Largest admin page, and the default.
MAX_PAGE, DEFAULT_PAGE = 200, 50
#: Longest search text accepted.
MAX_SEARCH = 256
#: Participants and read receipts a thread detail holds at most (the rest: ``participantCount``).
DETAIL_ROWS = 500
_CURSOR_TARGET = "continuationToken"


def encode_cursor(kind: str, *key: int | str) -> str:
    """An opaque continuation token for list ``kind`` resuming after ``key`` (URL-safe, no padding)."""
    raw = msgspec.json.encode([kind, *key])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(token: str | None, kind: str, shape: tuple[type, ...]) -> tuple[Any, ...] | None:
    """Read a continuation token of list ``kind`` whose key has the types of ``shape``.

    Returns:
        The key, or None when no token was given.

    Raises:
        ChatServiceError: 400 ``BadRequest`` (target ``continuationToken``) for anything else.
    """
    if token is None:
        return None
    bad = invalid("The continuation token is not valid for this list.", _CURSOR_TARGET)
    if len(token) > 512:
        raise bad
    try:
        value = msgspec.json.decode(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise bad from None
    if not isinstance(value, list) or len(value) != len(shape) + 1 or value[0] != kind:
        raise bad
    key = tuple(value[1:])
    for item, want in zip(key, shape, strict=True):
        if type(item) is not want or (isinstance(item, int) and not 0 <= item < 1 << 62):
            raise bad
    return key


def page_size(size: int | None) -> int:
    """The admin page size: 1 to :data:`MAX_PAGE`, default 50.

    Raises:
        ChatServiceError: 400 outside that range.
    """
    if size is None:
        return DEFAULT_PAGE
    if not 1 <= size <= MAX_PAGE:
        raise invalid(f"maxPageSize must be between 1 and {MAX_PAGE}.", "maxPageSize")
    return size


def search_text(text: str | None, target: str) -> str | None:
    """A search term, at most :data:`MAX_SEARCH` characters.

    Raises:
        ChatServiceError: 400 when longer.
    """
    if text is not None and len(text) > MAX_SEARCH:
        raise invalid(f"{target} must be at most {MAX_SEARCH} characters.", target)
    return text


@dataclass(slots=True)
class ThreadDetail:
    """One thread as the admin sees it: its record, live members and read receipts."""

    thread: ThreadRecord
    participant_count: int
    participants: list[ParticipantRecord]
    receipts: list[ReadReceiptRecord]


class AdminService:
    """Reads across the whole resource, for the holder of the access key.

    Args:
        store: the database.
        hub: the event hub (its ``node``/``nodes_seen`` tell which nodes were heard from).
        status_extra: fixed facts for :meth:`status` (limits in force, throttle, workers).
    """

    def __init__(self, store: Store, hub: Any, status_extra: dict[str, Any]) -> None:
        self._store = store
        self._hub = hub
        self._extra = status_extra
        self._started = time.time()

    async def users(self, *, search: str | None, size: int | None, cursor: str | None) -> Page[UserRecord]:
        """A page of identities, newest first.

        Raises:
            ChatServiceError: 400 for a bad page size, search text or continuation token.
        """
        limit = page_size(size)
        after = decode_cursor(cursor, "users", (int, str))
        rows = await self._store.admin_users(
            search=search_text(search, "search"), after=(after[0], after[1]) if after else None, limit=limit + 1
        )
        if len(rows) <= limit:
            return Page(rows)
        last = rows[limit - 1]
        return Page(rows[:limit], encode_cursor("users", last.created_ms, last.id))

    async def threads(
        self, *, topic: str | None, member: str | None, size: int | None, cursor: str | None
    ) -> Page[tuple[ThreadRecord, int]]:
        """A page of threads with their live member counts, latest activity first.

        Raises:
            ChatServiceError: 400 for a bad page size, search text or continuation token.
        """
        limit = page_size(size)
        after = decode_cursor(cursor, "threads", (int, str))
        rows = await self._store.admin_threads(
            topic=search_text(topic, "topic"), member=search_text(member, "member"),
            after=(after[0], after[1]) if after else None, limit=limit + 1,
        )
        if len(rows) <= limit:
            return Page(rows)
        last = rows[limit - 1][0]
        activity = last.last_message_ms if last.last_message_ms is not None else last.created_ms
        return Page(rows[:limit], encode_cursor("threads", activity, last.id))

    async def _thread(self, thread_id: str) -> ThreadRecord:
        thread = await self._store.get_thread(thread_id)
        if thread is None:
            raise ChatServiceError(ErrorKind.NOT_FOUND, "Thread not found.", target="threadId")
        return thread

    async def thread(self, thread_id: str) -> ThreadDetail:
        """A thread (deleted ones too) with its live members and read receipts.

        Raises:
            ChatServiceError: 404 for an unknown thread.
        """
        thread = await self._thread(thread_id)
        count = await self._store.count_participants(thread_id)
        members = await self._store.list_participants(thread_id, skip=0, limit=DETAIL_ROWS)
        receipts = await self._store.list_read_receipts(thread_id, skip=0, limit=DETAIL_ROWS)
        return ThreadDetail(thread, count, members, receipts)

    async def messages(self, thread_id: str, *, size: int | None, cursor: str | None) -> Page[MessageRecord]:
        """A page of a thread's messages, newest first, system messages and tombstones included.

        Raises:
            ChatServiceError: 400 bad page size or token; 404 unknown thread.
        """
        limit = page_size(size)
        after = decode_cursor(cursor, f"messages:{thread_id}", (int,))
        await self._thread(thread_id)
        rows = await self._store.list_messages(
            thread_id, before_seq=after[0] if after else None, min_created_ms=0, limit=limit + 1
        )
        if len(rows) <= limit:
            return Page(rows)
        return Page(rows[:limit], encode_cursor(f"messages:{thread_id}", rows[limit - 1].sequence_id))

    async def participants(
        self, thread_id: str, *, size: int | None, cursor: str | None
    ) -> Page[ParticipantRecord]:
        """A page of a thread's live members in join order.

        Raises:
            ChatServiceError: 400 bad page size or token; 404 unknown thread.
        """
        return await self._offset_page("participants", thread_id, size, cursor, self._store.list_participants)

    async def receipts(
        self, thread_id: str, *, size: int | None, cursor: str | None
    ) -> Page[ReadReceiptRecord]:
        """A page of a thread's read receipts (the latest of each reader), most recent first.

        Raises:
            ChatServiceError: 400 bad page size or token; 404 unknown thread.
        """
        return await self._offset_page("receipts", thread_id, size, cursor, self._store.list_read_receipts)

    async def _offset_page(
        self,
        kind: str,
        thread_id: str,
        size: int | None,
        cursor: str | None,
        fetch: Callable[..., Awaitable[list[_Row]]],
    ) -> Page[_Row]:
        """A page of one thread's rows listed by offset; the token carries the next offset."""
        limit = page_size(size)
        after = decode_cursor(cursor, f"{kind}:{thread_id}", (int,))
        await self._thread(thread_id)
        skip = after[0] if after else 0
        rows = await fetch(thread_id, skip=skip, limit=limit + 1)
        return Page(rows[:limit], encode_cursor(f"{kind}:{thread_id}", skip + limit) if len(rows) > limit
                    else None)

    async def user(self, user_id: str) -> UserRecord:
        """One identity, deleted or not.

        Raises:
            ChatServiceError: 404 for an unknown identity.
        """
        user = await self._store.get_user(user_id)
        if user is None:
            raise ChatServiceError(ErrorKind.NOT_FOUND, "Identity not found.", code="IdentityNotFound", target="id")
        return user

    async def status(self, metrics: dict[str, float]) -> dict[str, Any]:
        """What the server runs with and how busy it is (see ``docs/admin.md``).

        Args:
            metrics: this process's key metric values.
        """
        low, high = await self._store.event_bounds()
        node = getattr(self._hub, "node", None)
        seen: dict[str, float] = dict(getattr(self._hub, "nodes_seen", {}))
        nodes = [{"id": node or "local", "self": True, "lastSeen": None}]
        nodes += [{"id": other, "self": False, "lastSeen": round(when, 3)} for other, when in sorted(seen.items())]
        return {
            "version": __version__,
            "engine": getattr(self._store, "engine", type(self._store).__name__),
            "eventHub": "redis" if node else "local",
            "nodes": nodes,
            "uptimeSeconds": round(time.time() - self._started, 3),
            **self._extra,
            "counts": await self._store.admin_counts(),
            "events": {"oldestKept": Cursor(low).token(), "latest": Cursor(high).token()},  # resume tokens
            "metrics": metrics,
        }


def limits_dict(limits: Any) -> dict[str, int]:
    """The limits in force as a JSON object (camelCase names)."""
    out: dict[str, int] = {}
    for name, value in asdict(limits).items():
        head, *rest = name.split("_")
        out[head + "".join(part.title() for part in rest)] = value
    return out
