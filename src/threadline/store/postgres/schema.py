"""Migrations of the PostgreSQL store (the SQL lives in ``store/migrations/``)."""

from __future__ import annotations

from .. import migrations
from .core import _NOW_MS, Connection, log

#: Key of the advisory lock that serialises migrations across nodes ("thrdline").
MIGRATION_LOCK = 0x7468_72646C696E65

__all__ = ["MIGRATION_LOCK", "migrate"]


async def migrate(conn: Connection) -> list[int]:
    """Apply the pending migrations; return the versions applied.

    A session-level advisory lock makes nodes that start together take turns:
    the first applies the migrations, the others then find nothing to do.

    Args:
        conn: an open asyncpg connection (not in a transaction).

    Returns:
        The versions applied by this call, oldest first.
    """
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_ms BIGINT NOT NULL)"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for migration in migrations.load("postgres"):
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)  # simple protocol: many statements at once
                await conn.execute(
                    f"INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, {_NOW_MS})",
                    migration.version, migration.name,
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
