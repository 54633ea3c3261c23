"""Identities (users) in the SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .. import dialect
from ..dialect import LIVE_MEMBER
from ..records import UserRecord
from ..rows import user_from
from .core import SqliteCore
from .held import last_position

__all__ = ["SqliteIdentities"]


class SqliteIdentities(SqliteCore):
    """Identities (users) of :class:`~threadline.store.sqlite.SqliteStore`."""

    async def create_user(self, user: UserRecord) -> None:
        await self._write(
            lambda c: c.execute(
                dialect.CREATE_USER.sqlite,
                (user.id, user.created_ms, user.token_generation),
            )
        )

    async def get_user(self, user_id: str) -> UserRecord | None:
        row = await self._peek(
            lambda c: c.execute(dialect.GET_USER.sqlite, (user_id,)).fetchone()
        )
        return None if row is None else user_from(row)

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserRecord]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}

        def run(c: sqlite3.Connection) -> list[sqlite3.Row]:
            marks = ",".join("?" * len(ids))
            return c.execute(f"SELECT * FROM users WHERE id IN ({marks})", ids).fetchall()

        return {row["id"]: user_from(row) for row in await self._peek(run)}

    async def revoke_tokens(self, user_id: str) -> int | None:
        def run(c: sqlite3.Connection) -> int | None:
            row = c.execute(
                dialect.REVOKE_TOKENS.sqlite,
                (user_id,),
            ).fetchone()
            return None if row is None else int(row[0])

        return await self._write(run)

    async def delete_user(self, user_id: str, now_ms: int) -> bool:
        def run(c: sqlite3.Connection) -> bool:
            done = c.execute(
                "UPDATE users SET deleted_ms = ?, token_generation = token_generation + 1 "
                "WHERE id = ? AND deleted_ms IS NULL",
                (now_ms, user_id),
            ).rowcount
            if done:
                c.execute(
                    f"UPDATE participants SET left_pos = ? WHERE user_id = ? AND {LIVE_MEMBER}",
                    (last_position(c), user_id),
                )
            return bool(done)

        return await self._write(run)
