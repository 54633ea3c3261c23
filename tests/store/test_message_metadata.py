"""A message's metadata patch is merged inside the write, on both engines.

Concurrent edits through two stores on one database (two "nodes") each see the keys of those that
committed before them: none is lost, and the size limit holds for the map actually stored.
"""

from __future__ import annotations

import asyncio

import pytest

from threadline.store.base import Effects
from threadline.store.metadata import MetadataTooLarge
from threadline.store.records import MessageRecord, MetadataPatch

from .conftest import Engine
from .helpers import T0, make_thread, make_users, send

pytestmark = pytest.mark.anyio

EDITED: Effects[MessageRecord] = Effects(events=lambda m: [("chatMessageEdited", m.id.encode())])


async def _message(engine: Engine) -> tuple[str, str]:
    (a,) = await make_users(engine.first, 1)
    tid = (await make_thread(engine.first, a)).value[0].thread_id  # type: ignore[index]
    sent = await send(engine.first, tid, a, "hello", T0 + 1)
    assert sent.value is not None
    return tid, sent.value.id


async def test_concurrent_edits_each_adding_a_key_keep_every_key(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    tid, mid = await _message(engine)
    n = 20
    outcomes = await asyncio.gather(*(
        (one if i % 2 else two).update_message(
            tid, mid, content=None, metadata=MetadataPatch({f"k{i}": f"v{i}"}, max_bytes=1024),
            now_ms=T0 + 10 + i, effects=EDITED,
        )
        for i in range(n)
    ))
    expected = {f"k{i}": f"v{i}" for i in range(n)}
    for store in (one, two):
        message = await store.get_message(tid, mid)
        assert message is not None and message.metadata == expected
    sizes = sorted(len(o.value.metadata or {}) for o in outcomes if o.value is not None)
    assert sizes == list(range(1, n + 1))  # one after another, each on top of the ones before
    assert all(len(o.events) == 1 for o in outcomes)


async def test_a_patch_removes_keys_and_the_limit_holds_for_the_merged_map(engine: Engine) -> None:
    store = engine.first
    tid, mid = await _message(engine)
    await store.update_message(
        tid, mid, content=None, metadata=MetadataPatch({"a": "1", "b": "2"}, max_bytes=1024), now_ms=T0 + 2,
        effects=EDITED,
    )
    removed = await store.update_message(
        tid, mid, content="edited", metadata=MetadataPatch({"a": None}, max_bytes=1024), now_ms=T0 + 3,
        effects=EDITED,
    )
    assert removed.value is not None and removed.value.metadata == {"b": "2"} and removed.value.content == "edited"
    with pytest.raises(MetadataTooLarge) as over:
        await store.update_message(
            tid, mid, content="not kept", metadata=MetadataPatch({"c": "x" * 40}, max_bytes=30), now_ms=T0 + 4,
            effects=EDITED,
        )
    assert over.value.limit == 30
    message = await store.get_message(tid, mid)
    assert message is not None and (message.metadata, message.content) == ({"b": "2"}, "edited")  # nothing written


async def test_a_patch_to_a_deleted_message_changes_nothing(engine: Engine) -> None:
    store = engine.first
    tid, mid = await _message(engine)
    await store.delete_message(tid, mid, T0 + 2, Effects())
    outcome = await store.update_message(
        tid, mid, content=None, metadata=MetadataPatch({"a": "1"}, max_bytes=1024), now_ms=T0 + 3, effects=EDITED,
    )
    assert outcome.value is None and outcome.events == []
