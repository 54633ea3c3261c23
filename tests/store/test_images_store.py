"""Images in the store, on both engines: rows with the messages, bytes in the engine's blob storage.

Deleting a thread (the one path a user delete and the retention pruner share) or
a message drops the rows and the bytes; an attachment the store cannot link
rolls the whole write back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from threadline.store.base import Effects, Store
from threadline.store.blobs import AttachmentUnavailable, ImageLimitReached
from threadline.store.records import ImageRecord, MessageDraft, MessageRecord, ThreadRecord

from .conftest import Engine
from .helpers import T0, make_thread, make_users, message_events

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def image(tid: str, uploader: str, n: int) -> ImageRecord:
    return ImageRecord(tid, f"0-tl-d0-{n:032x}", uploader, f"p{n}.png", "image/png", len(PNG) + n, T0)


async def blob_count(engine: Engine, store: Store) -> int:
    """How many blobs the engine holds, looked at in the storage itself."""
    if engine.name == "sqlite":
        root = Path(engine.url).parent / "images"
        return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0
    conn = await asyncpg.connect(engine.url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM image_blobs"))
    finally:
        await conn.close()


async def send_with(store: Store, tid: str, sender: str, ids: list[str], now: int) -> MessageRecord:
    draft = MessageDraft("text", sender_id=sender, content="look", attachments=ids)
    outcome = await store.send_message(tid, draft, now, message_events())
    assert outcome.value is not None
    return outcome.value


async def test_images_are_kept_attached_and_dropped_with_their_thread(engine: Engine, store: Store) -> None:
    alice, bob = await make_users(store, 2)
    tid = (await make_thread(store, alice, [bob])).value[0].thread_id  # type: ignore[index]
    one, two, loose = image(tid, alice, 1), image(tid, alice, 2), image(tid, bob, 3)
    for item in (one, two, loose):
        assert await store.add_image(item, PNG + bytes(item.size - len(PNG)))
    assert await blob_count(engine, store) == 3
    assert await store.read_image(one) == PNG + b"\x00"

    sent = await send_with(store, tid, alice, [two.id, one.id], T0 + 10)
    assert [a.id for a in sent.attachments or []] == [two.id, one.id]  # in the order given
    got = await store.get_message(tid, sent.id)
    assert got is not None and [(a.id, a.name, a.content_type) for a in got.attachments or []] == [
        (two.id, "p2.png", "image/png"), (one.id, "p1.png", "image/png"),
    ]
    listed = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)
    assert [a.id for a in listed[0].attachments or []] == [two.id, one.id]
    assert (await store.get_image(tid, one.id)).message_id == sent.id  # type: ignore[union-attr]

    deleted = await store.delete_thread(tid, T0 + 20, Effects[ThreadRecord]())
    assert deleted.value is not None
    assert await store.get_image(tid, one.id) is None and await store.get_image(tid, loose.id) is None
    assert await store.read_image(one) is None
    assert await blob_count(engine, store) == 0


async def test_deleting_or_editing_a_message_drops_the_images_it_loses(engine: Engine, store: Store) -> None:
    alice, bob = await make_users(store, 2)
    tid = (await make_thread(store, alice, [bob])).value[0].thread_id  # type: ignore[index]
    a, b, c = image(tid, alice, 1), image(tid, alice, 2), image(tid, alice, 3)
    for item in (a, b, c):
        await store.add_image(item, PNG)
    first = await send_with(store, tid, alice, [a.id, b.id], T0 + 1)

    edited = await store.update_message(
        tid, first.id, content=None, metadata=None, now_ms=T0 + 2, effects=message_events("edited"),
        attachments=[b.id, c.id],
    )
    assert edited.value is not None and [i.id for i in edited.value.attachments or []] == [b.id, c.id]
    assert await store.get_image(tid, a.id) is None and await store.read_image(a) is None  # dropped by the edit
    assert await blob_count(engine, store) == 2

    plain = await store.update_message(
        tid, first.id, content="text only", metadata=None, now_ms=T0 + 3, effects=message_events("edited")
    )
    assert plain.value is not None and [i.id for i in plain.value.attachments or []] == [b.id, c.id]

    await store.delete_message(tid, first.id, T0 + 4, message_events("deleted"))
    assert await store.get_image(tid, b.id) is None and await store.get_image(tid, c.id) is None
    assert await blob_count(engine, store) == 0


async def test_an_unlinkable_attachment_writes_nothing(engine: Engine, store: Store) -> None:
    alice, bob = await make_users(store, 2)
    tid = (await make_thread(store, alice, [bob])).value[0].thread_id  # type: ignore[index]
    mine = image(tid, alice, 1)
    await store.add_image(mine, PNG)
    taken = await send_with(store, tid, alice, [mine.id], T0 + 1)
    before = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=50)

    with pytest.raises(AttachmentUnavailable):  # attached to another message already
        await send_with(store, tid, alice, [mine.id], T0 + 2)
    with pytest.raises(AttachmentUnavailable):  # no such image
        await send_with(store, tid, alice, ["0-tl-d0-" + "f" * 32], T0 + 3)
    after = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=50)
    assert [m.id for m in after] == [m.id for m in before]  # nothing half-written
    assert (await store.get_image(tid, mine.id)).message_id == taken.id  # type: ignore[union-attr]


async def test_an_image_for_a_deleted_thread_is_not_kept(engine: Engine, store: Store) -> None:
    alice, bob = await make_users(store, 2)
    tid = (await make_thread(store, alice, [bob])).value[0].thread_id  # type: ignore[index]
    await store.delete_thread(tid, T0 + 1, Effects[ThreadRecord]())
    assert not await store.add_image(image(tid, alice, 1), PNG)
    assert await blob_count(engine, store) == 0


async def test_the_image_limit_is_checked_inside_the_write(engine: Engine, store: Store) -> None:
    alice, bob = await make_users(store, 2)
    tid = (await make_thread(store, alice, [bob])).value[0].thread_id  # type: ignore[index]
    other = await engine.open()  # two "nodes" upload at once; exactly the limit is kept
    results = await asyncio.gather(
        *(s.add_image(image(tid, alice, n), PNG, limit=4) for n, s in enumerate([store, other] * 5)),
        return_exceptions=True,
    )
    assert sum(1 for r in results if r is True) == 4
    assert sum(1 for r in results if isinstance(r, ImageLimitReached)) == 6
    assert await blob_count(engine, store) == 4  # the refused ones left no bytes behind


async def test_delete_image_forgets_row_and_bytes(engine: Engine, store: Store) -> None:
    alice, bob = await make_users(store, 2)
    tid = (await make_thread(store, alice, [bob])).value[0].thread_id  # type: ignore[index]
    item = image(tid, alice, 7)
    await store.add_image(item, PNG)
    other = await engine.open()  # a second node sees the same image (PostgreSQL: same database)
    if engine.name == "postgres":
        assert await other.read_image(item) == PNG
    assert await store.delete_image(tid, item.id)
    assert not await store.delete_image(tid, item.id)
    assert await store.get_image(tid, item.id) is None and await blob_count(engine, store) == 0


async def test_a_sqlite_backup_carries_its_images(tmp_path: Path) -> None:
    from threadline.store.sqlite import SqliteStore

    live = SqliteStore(tmp_path / "live" / "threadline.db")
    await live.open()
    try:
        alice, bob = await make_users(live, 2)
        tid = (await make_thread(live, alice, [bob])).value[0].thread_id  # type: ignore[index]
        kept, dropped = image(tid, alice, 1), image(tid, alice, 2)
        await live.add_image(kept, PNG)
        await live.add_image(dropped, PNG + b"x")
        await live.delete_image(tid, dropped.id)
        await live.backup(tmp_path / "copy.db")
    finally:
        await live.close()
    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    (tmp_path / "copy.db").rename(restored_dir / "threadline.db")
    (tmp_path / "copy.db.images").rename(restored_dir / "images")
    restored = SqliteStore(restored_dir / "threadline.db")
    await restored.open()
    try:
        got = await restored.get_image(tid, kept.id)
        assert got is not None and await restored.read_image(got) == PNG
        assert await restored.get_image(tid, dropped.id) is None
        assert sorted(p.name for p in (restored_dir / "images").rglob("*") if p.is_file()) == [kept.id]
    finally:
        await restored.close()
