"""A thread's metadata patch is merged inside the write, under the thread's lock, on both engines.

Concurrent patches through two stores on one database (two "nodes") each see the keys of those
that committed before them: none is lost, and the size limit holds for the map actually stored.
"""

from __future__ import annotations

import asyncio
import itertools

import msgspec
import pytest

from threadline.store.base import Effects, Outcome
from threadline.store.metadata import MetadataTooLarge
from threadline.store.records import MetadataPatch, ThreadUpdate

from .conftest import Engine
from .helpers import T0, make_thread, make_users

pytestmark = pytest.mark.anyio

UPDATED: Effects[ThreadUpdate] = Effects(events=lambda u: [("chatThreadPropertiesUpdated", b"{}")])


async def _thread(engine: Engine) -> str:
    (a,) = await make_users(engine.first, 1)
    return (await make_thread(engine.first, a)).value[0].thread_id  # type: ignore[index]


async def test_concurrent_patches_each_adding_a_key_keep_every_key(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    tid = await _thread(engine)
    n = 24
    outcomes = await asyncio.gather(*(
        (one if i % 2 else two).update_thread(
            tid, topic=None, metadata=MetadataPatch({f"k{i}": f"v{i}"}, max_bytes=1024), draft=None,
            now_ms=T0 + i, effects=UPDATED,
        )
        for i in range(n)
    ))
    expected = {f"k{i}": f"v{i}" for i in range(n)}
    for store in (one, two):
        thread = await store.get_thread(tid)
        assert thread is not None and thread.metadata == expected
    # the patches ran one after another: each stored the keys of every one before it, plus its own
    maps = sorted((o.value.thread.metadata or {} for o in outcomes if o.value is not None), key=len)
    assert [len(m) for m in maps] == list(range(1, n + 1))
    assert all(set(a) < set(b) for a, b in itertools.pairwise(maps))
    assert all(len(o.events) == 1 for o in outcomes)


async def test_the_size_limit_holds_for_the_merged_map_under_concurrency(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    tid = await _thread(engine)
    value = "x" * 30  # one key: 37 bytes of JSON, two: 77, three: 115
    limit = 100
    results = await asyncio.gather(*(
        (one if i % 2 else two).update_thread(
            tid, topic=None, metadata=MetadataPatch({f"k{i}": value}, max_bytes=limit), draft=None,
            now_ms=T0 + i, effects=UPDATED,
        )
        for i in range(6)
    ), return_exceptions=True)
    done = [r for r in results if isinstance(r, Outcome)]
    refused = [r for r in results if isinstance(r, MetadataTooLarge)]
    assert (len(done), len(refused)) == (2, 4)  # each alone fits; only two fit together
    assert {r.limit for r in refused} == {limit}
    thread = await one.get_thread(tid)
    assert thread is not None and thread.metadata is not None
    assert len(msgspec.json.encode(thread.metadata)) == 77
    written = {k for o in done if o.value is not None for k in (o.value.thread.metadata or {})}
    assert set(thread.metadata) == written and len(written) == 2


async def test_a_patch_removes_null_keys_and_clear_empties_the_map(engine: Engine) -> None:
    store = engine.first
    tid = await _thread(engine)

    async def patch(p: MetadataPatch) -> dict[str, str] | None:
        outcome = await store.update_thread(tid, topic=None, metadata=p, draft=None, now_ms=T0, effects=UPDATED)
        assert outcome.value is not None
        stored = await store.get_thread(tid)
        assert stored is not None and stored.metadata == outcome.value.thread.metadata
        return stored.metadata

    assert await patch(MetadataPatch({"a": "1", "b": "2"})) == {"a": "1", "b": "2"}
    assert await patch(MetadataPatch({"a": None, "c": "3", "zz": None})) == {"b": "2", "c": "3"}
    with pytest.raises(MetadataTooLarge):
        await patch(MetadataPatch({"d": "y" * 20}, max_bytes=30))
    assert (await store.get_thread(tid)).metadata == {"b": "2", "c": "3"}  # type: ignore[union-attr]
    assert await patch(MetadataPatch(clear=True)) == {}
    assert await patch(MetadataPatch({"e": "5"}, clear=True)) == {"e": "5"}
    # no metadata change leaves the map as it is
    renamed = await store.update_thread(tid, topic="t2", metadata=None, draft=None, now_ms=T0, effects=UPDATED)
    assert renamed.value is not None and renamed.value.thread.metadata == {"e": "5"}
