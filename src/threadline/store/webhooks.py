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

from .records import Event

__all__ = ["KEEP_FOR_WEBHOOKS", "DeadLetterRecord", "Progress", "SubscriptionRecord", "WebhookStore", "recipients_at"]


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
        cursor: the last event-log position handled (see ``server/webhooks/cursor.py``).
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
    cursor: int
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
        cursor: the new cursor.
        attempts: failed attempts of the next batch.
        first_attempt_ms: when the next batch was first tried.
        next_attempt_ms: when to try again.
        dead: dead letters to store in the same transaction.
        replayed: dead-letter ids delivered by a replay (deleted).
    """

    cursor: int
    attempts: int = 0
    first_attempt_ms: int | None = None
    next_attempt_ms: int = 0
    dead: list[DeadLetterRecord] = field(default_factory=list)
    replayed: list[int] = field(default_factory=list)


#: The pruner's extra condition: an event stays while a subscription has not handled it
#: (delivered, filtered out or dead-lettered). Both engines append it to their DELETE.
KEEP_FOR_WEBHOOKS = "position <= COALESCE((SELECT MIN(cursor) FROM webhook_subscriptions), position)"

COLUMNS = (
    "id, url, schema, event_types, subject_prefix, secret, status, validation_code, batch_size, max_attempts, "
    "ttl_minutes, created_ms, cursor, attempts, first_attempt_ms, next_attempt_ms, lease_owner, lease_expires_ms"
)
DEAD_COLUMNS = (
    "id, subscription_id, event_id, event_type, thread_id, position, envelope, reason, attempts, created_ms, replay"
)


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
        created_ms=int(row["created_ms"]), cursor=int(row["cursor"]), attempts=int(row["attempts"]),
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

    async def events_after(self, after: int, limit: int) -> list[Event]:
        """Logged events after a position, in order, each with its recipients."""

    async def latest_position(self) -> int:
        """The highest committed event-log position (0 when none)."""

    async def list_deadletters(self, sub_id: str, limit: int) -> list[DeadLetterRecord]: ...

    async def request_replay(self, sub_id: str) -> int:
        """Mark every dead letter of the subscription for redelivery; return how many."""

    async def rewind(self, sub_id: str, since_ms: int) -> int | None:
        """Move the cursor back before the first kept event created at or after ``since_ms``.

        The lease is broken too, so the deliverer's next (fenced) save fails and it restarts
        from the rewound cursor instead of overwriting it.
        """
