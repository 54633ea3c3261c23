"""PostgreSQL migrations: nodes that start together apply each migration once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from threadline.store import migrations
from threadline.store.postgres import PostgresStore, migrate

from ..pg import fresh_database, require_postgres

pytestmark = pytest.mark.anyio


async def test_nodes_starting_at_once_migrate_once() -> None:
    require_postgres()
    with fresh_database("threadline_migrate") as url:
        stores = [PostgresStore(url) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        try:
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
                expected = [(m.version, m.name) for m in migrations.load("postgres")]
                assert [(r["version"], r["name"]) for r in rows] == expected
                assert expected[0] == (1, "initial")
                assert await migrate(conn) == []  # nothing left to apply
                partitions = await conn.fetch("SELECT id, value, pruned FROM event_partitions ORDER BY id")
                assert [tuple(r) for r in partitions] == [(k, 0, k) for k in range(32)]  # 32, all empty
                assert stores[0].partitions == 32
            finally:
                await conn.close()
            await stores[0].ping()
        finally:
            await asyncio.gather(*(s.close() for s in stores))


async def test_unreachable_database_raises_store_unavailable() -> None:
    from threadline.store.base import StoreUnavailable

    store = PostgresStore("postgresql://postgres@127.0.0.1:1/none", command_timeout=2)
    with pytest.raises(StoreUnavailable, match="not reachable"):
        await store.open()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.ping()
