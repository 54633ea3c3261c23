"""The Store interface: everything the services may ask of a database.

Two engines implement it: :class:`~threadline.store.sqlite.SqliteStore` (the
embedded default: one writer thread, WAL) and the PostgreSQL store. A store
speaks records (:mod:`.records`), never HTTP; it raises no HTTP errors, only
:class:`StoreError` subclasses for conditions the caller must handle.

Writes are one transaction each. A write may carry :class:`Effects` (defined, with
:class:`Outcome` and the errors, in :mod:`.outcomes` and re-exported here):

* an idempotency key: when the same (scope, key) was written before, nothing
  is applied and :attr:`Outcome.replayed` holds the stored result string;
* an event factory: called inside the transaction with the written value, its
  events are stored in the event log (gaining a ``position``) and returned
  with their recipients, to be published once the transaction has committed.

Event positions are visible in order: no event commits after one with a
higher position, so a reader that saw position P has seen all below P.
Recipients of an event are the users whose membership covers its position:
members of the thread at that moment, including those it adds or removes.
An event that reveals a message (:attr:`Effects.reveals`) reaches only those
of them whose share-history time is at or before the message's creation,
live and in :meth:`Store.events_since` alike.

Count-based caps (``max_members``) are checked inside the write transaction,
after the rows they count are locked, so concurrent writes cannot together
pass them; a write that would raises :class:`TooManyParticipants`. Likewise a
thread's metadata patch is merged into the stored map, and its size checked,
inside the write, under the thread's lock (:mod:`.metadata`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .outcomes import (
    Effects,
    EventFactory,
    NotAllowed,
    Outcome,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
    TooManyParticipants,
)
from .records import (
    Event,
    ImageRecord,
    MessageDraft,
    MessageRecord,
    MetadataPatch,
    ParticipantRecord,
    ReadReceiptRecord,
    RetentionChange,
    ThreadRecord,
    ThreadUpdate,
    UserRecord,
)
from .webhooks import WebhookStore

__all__ = [
    "Effects", "EventFactory", "NotAllowed", "Outcome", "Store", "StoreError", "StoreReadOnly", "StoreUnavailable",
    "TooManyParticipants",
]


class Store(Protocol):
    """The persistence contract shared by every engine."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None:
        """Finish pending writes and release every connection."""

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers (:class:`StoreReadOnly`: but refuses writes)."""

    async def resource_identity(self, resource_id: str, key_fingerprint: str) -> tuple[str, str]:
        """Record the resource id and key fingerprint when none is recorded; return the recorded pair."""

    @property
    def webhooks(self) -> WebhookStore:
        """The webhook subscriptions, cursors, leases and dead letters (``store/webhooks.py``)."""
        ...

    def write_batches(self) -> tuple[int, int]:
        """Transactions that wrote batched writes since the store opened, and the writes they carried."""
        ...

    # -- users -------------------------------------------------------------------------------

    async def create_user(self, user: UserRecord) -> None: ...

    async def get_user(self, user_id: str) -> UserRecord | None: ...

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserRecord]: ...

    async def revoke_tokens(self, user_id: str) -> int | None:
        """Raise the user's token generation; return it, or None if no such live user."""

    async def delete_user(self, user_id: str, now_ms: int) -> bool:
        """Mark the user deleted and end its memberships; False if no such live user."""

    # -- threads -----------------------------------------------------------------------------

    async def create_thread(
        self,
        thread: ThreadRecord,
        participants: Sequence[ParticipantRecord],
        drafts: Sequence[MessageDraft],
        effects: Effects[list[MessageRecord]],
        *,
        max_members: int | None = None,
    ) -> Outcome[list[MessageRecord]]:
        """Create a thread with its members and first (system) messages.

        Raises:
            TooManyParticipants: more than ``max_members`` participants.
        """

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        """Return the thread, deleted or not."""

    async def get_access(
        self, thread_id: str, user_id: str
    ) -> tuple[ThreadRecord | None, ParticipantRecord | None]:
        """Return the thread and the user's live membership in it, in one read."""

    async def list_threads(
        self, user_id: str, *, start_ms: int | None, limit: int, after: tuple[int, str] | None
    ) -> list[ThreadRecord]:
        """List the user's threads, most recent activity first.

        Order is by (last activity desc, id desc); ``after`` is the
        (activity ms, id) of the last row of the previous page. The activity is
        the one the user may see (``dialect.VISIBLE_ACTIVITY``): the last
        message's time when it is within the user's share-history window, else
        the thread's creation; it is also the rows' ``last_message_ms`` and what
        ``start_ms`` is compared with.
        """

    async def update_thread(
        self,
        thread_id: str,
        *,
        topic: str | None,
        metadata: MetadataPatch | dict[str, str] | None,
        draft: MessageDraft | None,
        now_ms: int,
        effects: Effects[ThreadUpdate],
        retention: RetentionChange | None = None,
    ) -> Outcome[ThreadUpdate]:
        """Set the given properties (None: unchanged) of a live thread in one transaction.

        The ``topicUpdated`` draft is written only when ``topic`` differs from the
        stored topic. A metadata patch is merged into the map read in the same
        transaction, under the thread's lock, so concurrent patches lose no key (a
        plain map replaces the stored one). The value (and so the events) is None
        when the thread is not live.

        Raises:
            ~threadline.store.metadata.MetadataTooLarge: the merged map is over the patch's limit.
        """

    async def delete_thread(
        self, thread_id: str, now_ms: int, effects: Effects[ThreadRecord], *, expired_by: int | None = None
    ) -> Outcome[ThreadRecord]:
        """Mark a live thread deleted and drop its images; the value is None if it was not live.

        This is the one way a thread is deleted: by a user and by the retention pruner alike.
        With ``expired_by``, only a thread whose retention expiry is at or before it
        is deleted (the check and the change are one statement, so nodes racing
        delete it once).
        """

    async def due_threads(self, now_ms: int, limit: int) -> list[str]:
        """Ids of live threads whose retention expiry is at or before ``now_ms``, oldest expiry first."""

    # -- participants -------------------------------------------------------------------------

    async def list_participants(self, thread_id: str, *, skip: int, limit: int) -> list[ParticipantRecord]:
        """Live members in join order."""

    async def count_participants(self, thread_id: str) -> int: ...

    async def add_participants(
        self,
        thread_id: str,
        participants: Sequence[ParticipantRecord],
        draft: MessageDraft,
        now_ms: int,
        effects: Effects[MessageRecord | None],
        *,
        max_members: int | None = None,
    ) -> Outcome[MessageRecord | None]:
        """Add members; those already in are left exactly as they are and not announced.

        The draft's ``participants`` are set to the newly added; with none
        added, no message and no event are written and the value is None. A
        user who left earlier is added anew (a new stay, with the new record).

        Raises:
            TooManyParticipants: the live members plus the new ones would be more
                than ``max_members`` (counted under the thread's lock).
        """

    async def remove_participant(
        self, thread_id: str, user_id: str, draft: MessageDraft, now_ms: int,
        effects: Effects[MessageRecord | None],
    ) -> Outcome[MessageRecord | None]:
        """End a membership and write the ``participantRemoved`` draft; None if not a member."""

    # -- messages -----------------------------------------------------------------------------

    async def send_message(
        self, thread_id: str, draft: MessageDraft, now_ms: int, effects: Effects[MessageRecord]
    ) -> Outcome[MessageRecord]:
        """Append a message with the next sequence id and a fresh epoch-ms id.

        Raises:
            NotAllowed: the thread is missing or deleted, or ``draft.sender_id`` is not a live
                member of it (checked inside the write, before an idempotent replay too).
        """

    async def get_message(self, thread_id: str, message_id: str) -> MessageRecord | None: ...

    async def list_messages(
        self, thread_id: str, *, before_seq: int | None, min_created_ms: int, limit: int
    ) -> list[MessageRecord]:
        """Messages newest first, with ``sequence_id < before_seq`` when given."""

    async def update_message(
        self,
        thread_id: str,
        message_id: str,
        *,
        content: str | None,
        metadata: MetadataPatch | dict[str, str] | None,
        now_ms: int,
        effects: Effects[MessageRecord],
        attachments: Sequence[str] | None = None,
    ) -> Outcome[MessageRecord]:
        """Edit a live message (a None field is left as it is); None if not live.

        ``metadata`` is a :class:`~.records.MetadataPatch`, merged with the stored map inside the
        write (under the message row's lock on PostgreSQL, in the one writer on SQLite), or a whole
        map that replaces it. ``attachments`` (image ids) replaces the message's images; the
        images it drops are deleted. An image that is not the thread's, or is attached to another
        message, raises :class:`~.blobs.AttachmentUnavailable` and nothing is written (so does a
        draft's).

        Raises:
            ~threadline.store.metadata.MetadataTooLarge: a patch would leave the map over its limit
                (nothing written).
        """

    async def delete_message(
        self, thread_id: str, message_id: str, now_ms: int, effects: Effects[MessageRecord]
    ) -> Outcome[MessageRecord]:
        """Mark a live message deleted and drop its images; None if not live."""

    # -- images (bytes in the engine's blob storage, see :mod:`.blobs`) ---------------------------------

    async def add_image(self, image: ImageRecord, data: bytes, *, limit: int | None = None) -> bool:
        """Keep an uploaded image; False (and nothing kept) when the thread is not live.

        Raises:
            ~.blobs.ImageLimitReached: the thread already holds ``limit`` images (checked in the write).
        """

    async def get_image(self, thread_id: str, image_id: str) -> ImageRecord | None:
        """The image's row, attached or not; None when unknown."""

    async def read_image(self, image: ImageRecord) -> bytes | None:
        """The image's bytes; None when they are gone."""

    async def delete_image(self, thread_id: str, image_id: str) -> bool:
        """Forget an image, row and bytes; False when there was none."""

    # -- read receipts --------------------------------------------------------------------------

    async def send_read_receipt(
        self, receipt: ReadReceiptRecord, effects: Effects[ReadReceiptRecord]
    ) -> Outcome[ReadReceiptRecord]:
        """Keep the reader's latest receipt."""

    async def list_read_receipts(
        self, thread_id: str, *, skip: int, limit: int, min_message_ms: int = 0
    ) -> list[ReadReceiptRecord]:
        """One receipt per reader, most recent first.

        With ``min_message_ms`` above 0, only receipts naming a kept message
        created at or after it (a caller's share-history time).
        """

    # -- events ---------------------------------------------------------------------------------

    #: How many event partitions the store orders events in (:mod:`.positions`; SQLite: 1).
    partitions: int

    async def events_since(self, user_id: str, after: int | Sequence[int], limit: int) -> list[Event]:
        """Stored events after ``after`` that the user was a recipient of, in position order.

        ``after`` is a :class:`~threadline.store.positions.Cursor`'s ``after`` (the last
        position delivered in each partition), or one position that bounds every partition.
        As live: the user's membership covers the position, and an event that
        reveals a message is left out when the message is older than the
        share-history time of that membership.
        """

    async def event_bounds(self) -> tuple[list[int], list[int]]:
        """Per partition: the position before the lowest kept one, and the highest committed one.

        A cursor below the first list misses pruned events; one above the second names
        events this database never had. Both equal the partition's start when it is empty.
        """

    async def prune_events(self, before_ms: int) -> int:
        """Drop events created before ``before_ms``; return how many."""

    async def prune_idempotency(self, before_ms: int) -> int:
        """Forget repeatability ids recorded before ``before_ms``; return how many."""

    # -- admin (the resource-wide reads of /admin and the Explorer, ``admin_queries.py``) ---------

    async def admin_users(
        self, *, search: str | None, after: tuple[int, str] | None, limit: int
    ) -> list[UserRecord]:
        """Every identity (deleted ones too), newest first.

        Order is (created ms desc, id desc); ``after`` is that key of the last row
        of the previous page; ``search`` keeps ids containing it (case-insensitive).
        """

    async def admin_threads(
        self, *, topic: str | None, member: str | None, after: tuple[int, str] | None, limit: int
    ) -> list[tuple[ThreadRecord, int]]:
        """Every thread (deleted ones too) with its live member count, latest activity first.

        Order is (last message ms, else created ms, desc; id desc); ``after`` is that
        key of the last row of the previous page. ``topic`` keeps topics containing it,
        ``member`` threads with a live member whose id contains it (both case-insensitive).
        """

    async def admin_counts(self) -> dict[str, int]:
        """Counts for the status page: ``users``, ``threads`` (live), ``messages``, ``memberships``, ``events``."""
