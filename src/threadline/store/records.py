"""Plain records the store reads and writes; no SQL and no HTTP in them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Event",
    "ImageRecord",
    "MessageDraft",
    "MessageRecord",
    "MetadataPatch",
    "ParticipantRecord",
    "ReadReceiptRecord",
    "RetentionChange",
    "ThreadRecord",
    "ThreadUpdate",
    "UserRecord",
    "blob_key",
]


@dataclass(slots=True)
class UserRecord:
    """An identity: ``token_generation`` rises with each revocation."""

    id: str
    created_ms: int
    token_generation: int = 0
    deleted_ms: int | None = None


@dataclass(slots=True)
class ThreadRecord:
    """A thread. ``expires_ms`` (written, not read back) is when its retention policy deletes it."""

    id: str
    topic: str
    created_ms: int
    created_by: str
    deleted_ms: int | None = None
    last_message_ms: int | None = None
    metadata: dict[str, str] | None = None
    retention: dict[str, Any] | None = None
    expires_ms: int | None = None


@dataclass(slots=True)
class MetadataPatch:
    """A merge-patch of a thread's metadata, merged by the store inside the write that stores it.

    The store reads the stored map under the write's lock (the thread row on PostgreSQL,
    the one writer on SQLite), so concurrent patches each see the others' keys.

    Attributes:
        changes: key -> new value; a None value removes the key.
        clear: merge into an empty map instead of the stored one (``metadata: null`` clears it).
        max_bytes: the most bytes the merged map's compact JSON may take (None: no limit).
    """

    changes: dict[str, str | None] = field(default_factory=dict)
    clear: bool = False
    max_bytes: int | None = None

    def merged(self, current: dict[str, str] | None) -> dict[str, str]:
        """The map after this patch, from ``current`` (the stored map; None: none)."""
        merged = {} if self.clear else dict(current or {})
        for key, value in self.changes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged


@dataclass(slots=True)
class RetentionChange:
    """A new retention policy (None removes it) and the expiry it gives the thread."""

    policy: dict[str, Any] | None
    expires_ms: int | None


@dataclass(slots=True)
class ParticipantRecord:
    """A member of a thread. ``share_history_ms`` 0 means the whole history."""

    user_id: str
    display_name: str | None = None
    share_history_ms: int = 0
    metadata: dict[str, str] | None = None


@dataclass(slots=True)
class MessageDraft:
    """A message the service wants written; the store gives it id and sequence."""

    type: str
    sender_id: str | None = None
    sender_display_name: str | None = None
    content: str | None = None
    topic: str | None = None
    participants: list[ParticipantRecord] | None = None
    initiator_id: str | None = None
    metadata: dict[str, str] | None = None
    #: ids of images of the thread to attach (user messages only).
    attachments: list[str] | None = None


@dataclass(slots=True)
class ImageRecord:
    """An uploaded image: its bytes live in the store's blob storage under ``blob_key``.

    ``message_id`` is the message it is attached to (None until it is attached).
    """

    thread_id: str
    id: str
    uploader_id: str
    name: str
    content_type: str
    size: int
    created_ms: int
    message_id: str | None = None

    @property
    def blob_key(self) -> str:
        """Where the bytes are kept: one folder per thread, one blob per image."""
        return blob_key(self.thread_id, self.id)


def blob_key(thread_id: str, image_id: str) -> str:
    """The blob key of an image: a digest of the thread id (safe as a file name) and the image id."""
    return f"{hashlib.sha256(thread_id.encode('utf-8')).hexdigest()[:32]}/{image_id}"


@dataclass(slots=True)
class MessageRecord:
    """A stored message. ``id`` and ``version`` are epoch-ms strings as in ACS."""

    thread_id: str
    id: str
    sequence_id: int
    type: str
    created_ms: int
    version: int
    sender_id: str | None = None
    sender_display_name: str | None = None
    content: str | None = None
    topic: str | None = None
    participants: list[ParticipantRecord] | None = None
    initiator_id: str | None = None
    metadata: dict[str, str] | None = None
    edited_ms: int | None = None
    deleted_ms: int | None = None
    #: the images attached to the message, in order (None when it has none).
    attachments: list[ImageRecord] | None = None


@dataclass(slots=True)
class ThreadUpdate:
    """A thread after an update, and the ``topicUpdated`` message it wrote (None when the topic stayed)."""

    thread: ThreadRecord
    message: MessageRecord | None = None


@dataclass(slots=True)
class ReadReceiptRecord:
    thread_id: str
    user_id: str
    message_id: str
    read_ms: int


@dataclass(slots=True)
class Event:
    """A committed change for real-time delivery.

    ``position`` orders all events of the database (0 for ephemeral events,
    such as typing, that are never stored); ``recipients`` are the users who
    were members of the thread when it happened (and, for an event revealing a
    message, whose share-history time is not after ``message_ms``, the creation
    time of that message).
    """

    position: int
    thread_id: str
    type: str
    payload: bytes
    created_ms: int
    recipients: tuple[str, ...] = field(default_factory=tuple)
    message_ms: int | None = None
