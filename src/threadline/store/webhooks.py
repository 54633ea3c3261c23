"""The webhook part of the store: subscriptions, their cursors and leases, dead letters.

Both engines implement :class:`WebhookStore` (``store.webhooks``) over the
tables of migration ``0020_webhooks``. Every progress write is fenced by the
lease: it applies only while the writer still holds the subscription's lease,
so a node that lost its lease (paused, partitioned) can never move a cursor
its successor already moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from .dialect import Shared
from .positions import LEGACY, Cursor, parse
from .records import Event

__all__ = [
    "DeadLetterRecord", "Progress", "SubscriptionRecord", "WebhookStore", "keep_bounds", "read_cursor", "recipients_at",
]


@dataclass(slots=True)
class SubscriptionRecord:
    """A webhook subscription.

    Attributes:
        id: its id (``wh_...``).
        url: the destination (http/https).
        schema: ``eventgrid`` or ``cloudevents``.
        event_types: the event types delivered (None: all).
        subject_prefix: only subjects starting with it (None: all).
        secret: the HMAC-SHA256 signing secret (None: unsigned).
        status: ``pending`` until the handshake succeeds, then ``active``.
        validation_code: the code of the Event Grid handshake.
        batch_size: most events per POST.
        max_attempts: attempts per event before dead-lettering.
        ttl_minutes: minutes an event may wait before dead-lettering.
        created_ms: creation time.
        cursor: the resume token (:mod:`..positions`) of the last event handled in each partition
            (see ``server/webhooks/cursor.py``).
        attempts: failed attempts of the batch after the cursor.
        first_attempt_ms: when that batch was first tried.
        next_attempt_ms: when to try it again.
        lease_owner: the node delivering it, if any.
        lease_expires_ms: when that lease ends unless renewed.
    """

    id: str
    url: str
    schema: str
    event_types: list[str] | None
    subject_prefix: str | None
    secret: str | None
    status: str
    validation_code: str
    batch_size: int
    max_attempts: int
    ttl_minutes: int
    created_ms: int
    cursor: str
    attempts: int = 0
    first_attempt_ms: int | None = None
    next_attempt_ms: int = 0
    lease_owner: str | None = None
    lease_expires_ms: int = 0


@dataclass(slots=True)
class DeadLetterRecord:
    """An event whose delivery gave up, kept with its exact envelope."""

    id: int
    subscription_id: str
    event_id: str
    event_type: str
    thread_id: str
    position: int
    envelope: bytes
    reason: str
    attempts: int
    created_ms: int
    replay: bool = False


@dataclass(slots=True)
class Progress:
    """A fenced update of a subscription's delivery state.

    Attributes:
        cursor: the new cursor (a resume token).
        attempts: failed attempts of the next batch.
        first_attempt_ms: when the next batch was first tried.
        next_attempt_ms: when to try again.
        dead: dead letters to store in the same transaction.
        replayed: dead-letter ids delivered by a replay (deleted).
    """

    cursor: str
    attempts: int = 0
    first_attempt_ms: int | None = None
    next_attempt_ms: int = 0
    dead: list[DeadLetterRecord] = field(default_factory=list)
    replayed: list[int] = field(default_factory=list)


def read_cursor(token: str, partitions: int) -> Cursor:
    """A subscription's stored cursor as a :class:`~.positions.Cursor` over the store's partitions.

    Args:
        token: the stored resume token.
        partitions: how many partitions the store has.

    Returns:
        The cursor.

    Raises:
        StoreError: the token is not one of this store's cursors (corrupt row).
    """
    from .base import StoreError  # here: base imports this module

    try:
        cursor = parse(token)
    except ValueError:
        cursor = LEGACY
    if not isinstance(cursor, Cursor) or cursor.partitions != partitions:
        raise StoreError(f"webhook cursor {token[:40]!r} is not a cursor over {partitions} partitions")
    return cursor


def keep_bounds(tokens: Sequence[str], partitions: int) -> list[int] | None:
    """The pruner's webhook rule: per partition, the highest position every subscription has handled.

    An event above its partition's bound stays (some subscription has not delivered,
    filtered out or dead-lettered it yet); None when there is no subscription.

    Args:
        tokens: the cursors of every subscription.
        partitions: how many partitions the store has.

    Returns:
        One bound per partition, or None.
    """
    if not tokens:
        return None
    cursors = [read_cursor(t, partitions).after for t in tokens]
    return [min(c[k] for c in cursors) for k in range(partitions)]

COLUMNS = (
    "id, url, schema, event_types, subject_prefix, secret, status, validation_code, batch_size, max_attempts, "
    "ttl_minutes, created_ms, cursor, attempts, first_attempt_ms, next_attempt_ms, lease_owner, lease_expires_ms"
)
DEAD_COLUMNS = (
    "id, subscription_id, event_id, event_type, thread_id, position, envelope, reason, attempts, created_ms, replay"
)

# Statements the same on both engines but for their placeholders (see store/dialect.py).
ADD_SUBSCRIPTION = Shared.of(
    f"INSERT INTO webhook_subscriptions ({COLUMNS}) VALUES ({', '.join('?' * len(COLUMNS.split(',')))})"
)
GET_SUBSCRIPTION = Shared.of(f"SELECT {COLUMNS} FROM webhook_subscriptions WHERE id = ?")
LIST_SUBSCRIPTIONS = f"SELECT {COLUMNS} FROM webhook_subscriptions ORDER BY created_ms, id"
#: The subscription's cursor; PostgreSQL's form locks the row (SQLite's one writer needs no lock).
GET_CURSOR = Shared.of("SELECT cursor FROM webhook_subscriptions WHERE id = ?", lock=" FOR UPDATE")
DROP_DEADLETTERS = Shared.of("DELETE FROM webhook_deadletters WHERE subscription_id = ?")
REMOVE_SUBSCRIPTION = Shared.of("DELETE FROM webhook_subscriptions WHERE id = ?")
#: Arguments: subscription id, the handshake code (None: any) twice.
ACTIVATE = Shared.of(
    "UPDATE webhook_subscriptions SET status = 'active', attempts = 0, first_attempt_ms = NULL, "
    "next_attempt_ms = 0 WHERE id = ? AND (CAST(? AS TEXT) IS NULL OR validation_code = ?)"
)
#: Arguments: owner, lease end, subscription id, owner again, now.
ACQUIRE_LEASE = Shared.of(
    "UPDATE webhook_subscriptions SET lease_owner = ?, lease_expires_ms = ? WHERE id = ? "
    "AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_ms < ?)"
)
LIST_DEADLETTERS = Shared.of(
    f"SELECT {DEAD_COLUMNS} FROM webhook_deadletters WHERE subscription_id = ? ORDER BY id LIMIT ?"
)
REQUEST_REPLAY = Shared.of("UPDATE webhook_deadletters SET replay = 1 WHERE subscription_id = ?")
#: A rewind: the new cursor, delivery state and lease reset; arguments: cursor, subscription id.
REWIND = Shared.of(
    "UPDATE webhook_subscriptions SET cursor = ?, attempts = 0, first_attempt_ms = NULL, next_attempt_ms = 0, "
    "lease_owner = NULL, lease_expires_ms = 0 WHERE id = ?"
)
RELEASE_LEASE = Shared.of(
    "UPDATE webhook_subscriptions SET lease_owner = NULL, lease_expires_ms = 0 WHERE id = ? AND lease_owner = ?"
)
#: Arguments: cursor, attempts, first attempt, next attempt, subscription id, lease owner, now.
SAVE_PROGRESS = Shared.of(
    "UPDATE webhook_subscriptions SET cursor = ?, attempts = ?, first_attempt_ms = ?, "
    "next_attempt_ms = ? WHERE id = ? AND lease_owner = ? AND lease_expires_ms >= ?"
)
ADD_DEAD = Shared.of(
    "INSERT INTO webhook_deadletters (subscription_id, event_id, event_type, thread_id, position, "
    "envelope, reason, attempts, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
DROP_DEAD = Shared.of("DELETE FROM webhook_deadletters WHERE id = ? AND subscription_id = ?")


def subscription_params(s: SubscriptionRecord) -> tuple[Any, ...]:
    """The insert parameters of a subscription, in :data:`COLUMNS` order."""
    types = msgspec.json.encode(s.event_types).decode() if s.event_types is not None else None
    return (s.id, s.url, s.schema, types, s.subject_prefix, s.secret, s.status, s.validation_code, s.batch_size,
            s.max_attempts, s.ttl_minutes, s.created_ms, s.cursor, s.attempts, s.first_attempt_ms,
            s.next_attempt_ms, s.lease_owner, s.lease_expires_ms)


def subscription_from(row: Any) -> SubscriptionRecord:
    """A subscription from a row of :data:`COLUMNS`."""
    types = row["event_types"]
    return SubscriptionRecord(
        id=row["id"], url=row["url"], schema=row["schema"],
        event_types=msgspec.json.decode(types) if types is not None else None,
        subject_prefix=row["subject_prefix"], secret=row["secret"], status=row["status"],
        validation_code=row["validation_code"], batch_size=int(row["batch_size"]),
        max_attempts=int(row["max_attempts"]), ttl_minutes=int(row["ttl_minutes"]),
        created_ms=int(row["created_ms"]), cursor=str(row["cursor"]), attempts=int(row["attempts"]),
        first_attempt_ms=int(row["first_attempt_ms"]) if row["first_attempt_ms"] is not None else None,
        next_attempt_ms=int(row["next_attempt_ms"]), lease_owner=row["lease_owner"],
        lease_expires_ms=int(row["lease_expires_ms"]),
    )


def dead_from(row: Any) -> DeadLetterRecord:
    """A dead letter from a row of :data:`DEAD_COLUMNS`."""
    return DeadLetterRecord(
        id=int(row["id"]), subscription_id=row["subscription_id"], event_id=row["event_id"],
        event_type=row["event_type"], thread_id=row["thread_id"], position=int(row["position"]),
        envelope=bytes(row["envelope"]), reason=row["reason"], attempts=int(row["attempts"]),
        created_ms=int(row["created_ms"]), replay=bool(row["replay"]),
    )


def recipients_at(members: Sequence[Any], position: int) -> tuple[str, ...]:
    """The users whose membership rows (``user_id, joined_pos, left_pos``) cover ``position``."""
    return tuple(
        m["user_id"] for m in members
        if int(m["joined_pos"]) <= position and (m["left_pos"] is None or int(m["left_pos"]) >= position)
    )


class WebhookStore(Protocol):
    """What the webhook subsystem asks of the database."""

    async def add_subscription(self, sub: SubscriptionRecord) -> None:
        """Insert a subscription whose cursor is the current end of the event log."""

    async def get_subscription(self, sub_id: str) -> SubscriptionRecord | None: ...

    async def list_subscriptions(self) -> list[SubscriptionRecord]: ...

    async def remove_subscription(self, sub_id: str) -> bool:
        """Delete it with its dead letters; False if unknown."""

    async def activate(self, sub_id: str, code: str | None) -> bool:
        """Mark it active (when ``code`` matches, or unconditionally when None); False otherwise."""

    async def acquire_lease(self, sub_id: str, owner: str, now_ms: int, ttl_ms: int) -> bool:
        """Take or renew the lease when free, expired or already ours."""

    async def release_lease(self, sub_id: str, owner: str) -> None: ...

    async def save_progress(self, sub_id: str, owner: str, now_ms: int, progress: Progress) -> bool:
        """Apply progress (and its dead letters) iff ``owner`` holds an unexpired lease."""

    async def events_after(self, after: Sequence[int], limit: int) -> list[Event]:
        """Logged events after a cursor (its ``after``), in position order, each with its recipients.

        A page is a prefix of every partition's remaining events, so advancing the
        cursor past each delivered event never skips one.
        """

    async def latest_positions(self) -> list[int]:
        """Per partition, the highest committed event-log position."""

    async def list_deadletters(self, sub_id: str, limit: int) -> list[DeadLetterRecord]: ...

    async def request_replay(self, sub_id: str) -> int:
        """Mark every dead letter of the subscription for redelivery; return how many."""

    async def rewind(self, sub_id: str, since_ms: int) -> str | None:
        """Move the cursor back, in each partition, before its first kept event created at or after ``since_ms``.

        Returns the new token (None for an unknown subscription). A partition whose
        cursor is already lower stays where it is.

        The lease is broken too, so the deliverer's next (fenced) save fails and it restarts
        from the rewound cursor instead of overwriting it.
        """
