"""Retention: the store keeps each thread's expiry, lists the due ones, and deletes each once.

Two stores on one database play two nodes whose pruners race (on SQLite, two
writers on one file; on PostgreSQL, two pools): every thread is deleted, and
announced, exactly once.
"""

from __future__ import annotations

import asyncio

import pytest

from threadline.server.services import payloads
from threadline.server.services.retention import DAY_MS, RETENTION_DELETER, RetentionPruner
from threadline.store.base import Effects, Store
from threadline.store.records import (
    Event,
    MessageDraft,
    ParticipantRecord,
    RetentionChange,
    ThreadRecord,
    ThreadUpdate,
)

from .conftest import Engine
from .helpers import T0, make_users, thread_id

pytestmark = pytest.mark.anyio


class Collect:
    """A hub that keeps what is published (the store tests have no real-time side)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, events: list[Event]) -> None:
        self.events += events


async def _thread(store: Store, creator: str, days: int | None, *, created: int = T0) -> str:
    policy = {"kind": "threadCreationDate", "deleteThreadAfterDays": days} if days else None
    thread = ThreadRecord(
        thread_id(), "Topic", created, creator, retention=policy,
        expires_ms=created + days * DAY_MS if days else None,
    )
    drafts = [MessageDraft("participantAdded", participants=[ParticipantRecord(creator)], initiator_id=creator)]
    await store.create_thread(thread, [ParticipantRecord(creator)], drafts, Effects())
    return thread.id


async def test_due_threads_lists_live_expired_threads_by_expiry(store: Store) -> None:
    (a,) = await make_users(store, 1)
    t30 = await _thread(store, a, 30)
    t31 = await _thread(store, a, 31)
    forever = await _thread(store, a, None)
    assert await store.due_threads(T0 + 30 * DAY_MS - 1, 10) == []
    assert await store.due_threads(T0 + 30 * DAY_MS, 10) == [t30]
    assert await store.due_threads(T0 + 90 * DAY_MS, 10) == [t30, t31]
    assert await store.due_threads(T0 + 90 * DAY_MS, 1) == [t30]
    # an expiry moved by an update counts; removing the policy stops it
    effects: Effects[ThreadUpdate] = Effects()
    await store.update_thread(t30, topic=None, metadata=None, draft=None, now_ms=T0 + 1, effects=effects,
                              retention=RetentionChange(None, None))
    moved = {"kind": "threadCreationDate", "deleteThreadAfterDays": 30}
    await store.update_thread(forever, topic=None, metadata=None, draft=None, now_ms=T0 + 1, effects=effects,
                              retention=RetentionChange(moved, T0 + 30 * DAY_MS))
    assert await store.due_threads(T0 + 90 * DAY_MS, 10) == [forever, t31]
    stored = await store.get_thread(forever)
    assert stored is not None and stored.retention == moved
    cleared = await store.get_thread(t30)
    assert cleared is not None and cleared.retention is None
    # a deleted thread is never due
    await store.delete_thread(t31, T0 + 2, Effects())
    assert await store.due_threads(T0 + 90 * DAY_MS, 10) == [forever]


async def test_conditional_delete_only_deletes_an_expired_thread(store: Store) -> None:
    (a,) = await make_users(store, 1)
    tid = await _thread(store, a, 30)
    effects: Effects[ThreadRecord] = Effects(events=lambda t: [("chatThreadDeleted", t.id.encode())])
    early = await store.delete_thread(tid, T0 + DAY_MS, effects, expired_by=T0 + DAY_MS)
    assert (early.value, early.events) == (None, [])
    due = T0 + 30 * DAY_MS
    done = await store.delete_thread(tid, due, effects, expired_by=due)
    assert done.value is not None and done.value.deleted_ms == due
    assert [(e.type, e.recipients) for e in done.events] == [("chatThreadDeleted", (a,))]


async def test_two_nodes_pruning_at_once_delete_and_announce_each_thread_once(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    users = await make_users(one, 2)
    threads = [await _thread(one, users[n % 2], 30 + n % 3) for n in range(12)]
    keep = await _thread(one, users[0], 90)
    now = T0 + 40 * DAY_MS
    hubs = [Collect(), Collect()]
    pruners = [RetentionPruner(store, hub, clock=lambda: now, batch=5)  # type: ignore[arg-type]
               for store, hub in zip((one, two), hubs, strict=True)]
    results = await asyncio.wait_for(asyncio.gather(*(p.run_once() for p in pruners)), 60)
    deleted = results[0] + results[1]
    assert sorted(deleted) == sorted(threads), "every due thread deleted by exactly one node"
    events = hubs[0].events + hubs[1].events
    assert sorted(e.thread_id for e in events) == sorted(threads)
    assert {e.type for e in events} == {"chatThreadDeleted"}
    assert len({e.position for e in events}) == len(threads)
    sample = next(e for e in events if e.thread_id == threads[0])
    assert sample.payload == payloads.thread_deleted(threads[0], RETENTION_DELETER, now)[0][1]
    assert sample.recipients == (users[0],)
    for tid in threads:
        thread = await two.get_thread(tid)
        assert thread is not None and thread.deleted_ms == now
    survivor = await one.get_thread(keep)
    assert survivor is not None and survivor.deleted_ms is None
    # a later round finds nothing more to do
    assert await pruners[1].run_once() == []
