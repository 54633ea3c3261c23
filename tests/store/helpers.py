"""Small builders shared by the store contract tests."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from threadline.store.base import Effects, Outcome, Store
from threadline.store.positions import partition_of
from threadline.store.records import MessageDraft, MessageRecord, ParticipantRecord, ThreadRecord, UserRecord

#: A fixed clock: every test passes its own times, so results are exact.
T0 = 1_700_000_000_000


def user_id() -> str:
    return f"8:acs:test_{secrets.token_hex(6)}"


def thread_id() -> str:
    return f"19:{secrets.token_hex(8)}@thread.v2"


async def make_users(store: Store, count: int) -> list[str]:
    """Create ``count`` live users and return their ids."""
    ids = [user_id() for _ in range(count)]
    for uid in ids:
        await store.create_user(UserRecord(uid, T0))
    return ids


def message_events(kind: str = "chatMessageReceived") -> Effects[MessageRecord]:
    """Effects whose one event carries the message id as payload."""
    return Effects(events=lambda m: [(kind, m.id.encode())])


def optional_events(kind: str) -> Effects[MessageRecord | None]:
    return Effects(events=lambda m: [(kind, m.id.encode())] if m is not None else [])


async def make_thread(
    store: Store,
    creator: str,
    others: Sequence[str] = (),
    *,
    now: int = T0,
    tid: str | None = None,
    idempotency: tuple[str, str] | None = None,
) -> Outcome[list[MessageRecord]]:
    """Create a thread as the services do: a participantAdded and a topicUpdated message, one event."""
    thread = ThreadRecord(tid or thread_id(), "Topic", now, creator)
    members = [ParticipantRecord(creator), *(ParticipantRecord(o) for o in others)]
    drafts = [
        MessageDraft("participantAdded", participants=members, initiator_id=creator),
        MessageDraft("topicUpdated", topic="Topic", initiator_id=creator),
    ]
    effects: Effects[list[MessageRecord]] = Effects(
        idempotency=idempotency,
        result=lambda _: thread.id,
        events=lambda _: [("chatThreadCreated", thread.id.encode())],
    )
    return await store.create_thread(thread, members, drafts, effects)


async def send(
    store: Store, tid: str, sender: str, content: str, now: int, key: str | None = None
) -> Outcome[MessageRecord]:
    """Send a text message, idempotent under ``key`` when given."""
    effects: Effects[MessageRecord] = Effects(
        idempotency=(f"send:{sender}:{tid}", key) if key else None,
        result=lambda m: m.id,
        events=lambda m: [("chatMessageReceived", m.id.encode())],
    )
    draft = MessageDraft("text", sender_id=sender, content=content)
    return await store.send_message(tid, draft, now, effects)


def at(store: Store, tid: str, k: int) -> int:
    """The position of the k-th event (1-based) of the partition ``tid`` belongs to."""
    count = store.partitions
    return k * count + partition_of(tid, count)


def nth(store: Store, tid: str, positions: Sequence[int]) -> list[int]:
    """Positions of ``tid``'s partition as their rank in it (1, 2, ...): dense iff gap-free."""
    count = store.partitions
    part = partition_of(tid, count)
    assert all(p % count == part for p in positions), "an event outside the thread's partition"
    return [p // count for p in positions]


async def bounds(store: Store, tid: str) -> tuple[int, int]:
    """``event_bounds`` of the partition ``tid`` belongs to, as ranks (see :func:`nth`)."""
    lows, highs = await store.event_bounds()
    part = partition_of(tid, store.partitions)
    return lows[part] // store.partitions, highs[part] // store.partitions


#: Three threads an older schema left (0048's tests): a and c last written at 125,000 ms, b made at 119,999.
OLD_ACTIVITY_THREADS = ("19:a@thread.v2", "19:b@thread.v2", "19:c@thread.v2")


async def assert_activity_pages(store: Store) -> None:
    """The admin pages list :data:`OLD_ACTIVITY_THREADS` by latest activity, ties by id, from any cursor."""
    a, b, c = OLD_ACTIVITY_THREADS
    page = await store.admin_threads(topic=None, member=None, after=None, limit=10)
    assert [t.id for t, _ in page] == [c, a, b]
    after = await store.admin_threads(topic=None, member=None, after=(125_000, c), limit=10)
    assert [t.id for t, _ in after] == [a, b]


#: One message id in two threads (0049's tests): the pair stays unique whichever way the index is keyed.
OLD_MESSAGE = ("1700000000000", ("19:a@thread.v2", "19:b@thread.v2"))


async def assert_old_messages_found(store: Store) -> None:
    """Each thread of :data:`OLD_MESSAGE` finds its own message by the shared id (its content is its thread id)."""
    message_id, threads = OLD_MESSAGE
    for tid in threads:
        found = await store.get_message(tid, message_id)
        assert found is not None and found.content == tid
