"""The admin reads on both stores: keyset pages never repeat or skip a row, ties included."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.server.services.admin import AdminService
from threadline.store.base import Effects, Store
from threadline.store.postgres import PostgresStore
from threadline.store.records import MessageDraft, ParticipantRecord, ThreadRecord, UserRecord
from threadline.store.sqlite import SqliteStore

from ..pg import fresh_database, require_postgres

RES = "00000000-0000-0000-0000-0000000000aa"


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield SqliteStore(tmp_path / "admin.db")
        return
    require_postgres()
    with fresh_database("threadline_admin") as url:
        yield PostgresStore(url)


def _user(n: int) -> str:
    # Mixed case and digits, so a collation that is not bytewise would order them differently.
    return f"8:acs:{RES}_{'Ab'[n % 2]}{n:03d}"


async def _scenario(store: Store) -> None:
    await store.open()
    try:
        for n in range(7):
            await store.create_user(UserRecord(_user(n), created_ms=1_000))  # all at one instant: ties
        await store.delete_user(_user(3), 2_000)
        for n in range(5):
            thread = ThreadRecord(f"19:T{'aB'[n % 2]}{n}@thread.v2", f"Topic {n}", 5_000, _user(0))
            members = [ParticipantRecord(_user(0)), *([ParticipantRecord(_user(1))] if n % 2 else [])]
            draft = MessageDraft("participantAdded", participants=members, initiator_id=_user(0))
            await store.create_thread(thread, members, [draft], Effects())
        # One thread with later activity comes first, whatever its id.
        await store.send_message("19:Ta0@thread.v2", MessageDraft("text", sender_id=_user(0), content="hi"), 9_000,
                                 Effects())
        admin = AdminService(store, None, {})
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            page = await admin.users(search=None, size=2, cursor=cursor)
            seen += [u.id for u in page.items]
            cursor = page.cursor
            if cursor is None:
                break
        assert sorted(seen, reverse=True) == seen and sorted(seen) == sorted(_user(n) for n in range(7))
        deleted = [u for u in (await admin.users(search="B003", size=10, cursor=None)).items]
        assert [u.id for u in deleted] == [_user(3)] and deleted[0].deleted_ms == 2_000

        threads: list[tuple[str, int]] = []
        cursor = None
        for _ in range(10):
            tpage = await admin.threads(topic=None, member=None, size=2, cursor=cursor)
            threads += [(t.id, members) for t, members in tpage.items]
            cursor = tpage.cursor
            if cursor is None:
                break
        ids = [t for t, _ in threads]
        assert ids[0] == "19:Ta0@thread.v2"
        assert ids[1:] == sorted(ids[1:], reverse=True) and len(ids) == 5  # equal activity: id desc, bytewise
        assert dict(threads) == {f"19:T{'aB'[n % 2]}{n}@thread.v2": 1 + n % 2 for n in range(5)}
        with_b1 = await admin.threads(topic=None, member=_user(1)[-6:].lower(), size=10, cursor=None)
        assert sorted(t.id for t, _ in with_b1.items) == sorted(f"19:TB{n}@thread.v2" for n in (1, 3))
        counts = await store.admin_counts()
        assert counts == {"users": 6, "threads": 5, "messages": 6, "memberships": 7, "events": 0}
    finally:
        await store.close()


def test_admin_pages_hold_every_row_once(make_store: Store) -> None:
    asyncio.run(_scenario(make_store))
