"""Identities (users) in the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Sequence

from .. import dialect
from ..dialect import LIVE_MEMBER
from ..records import UserRecord
from ..rows import user_from
from .core import Connection, PostgresCore
from .finish import _Finish

__all__ = ["PostgresIdentities"]


class PostgresIdentities(PostgresCore):
    """Identities (users) of :class:`~threadline.store.postgres.PostgresStore`."""

    async def create_user(self, user: UserRecord) -> None:
        """Insert an identity."""
        await self._write(
            lambda c: c.execute(
                dialect.CREATE_USER.postgres,
                user.id, user.created_ms, user.token_generation,
            )
        )

    async def get_user(self, user_id: str) -> UserRecord | None:
        """Return the identity, deleted or not."""
        row = await self._read(lambda c: c.fetchrow(dialect.GET_USER.postgres, user_id))
        return None if row is None else user_from(row)

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserRecord]:
        """Return the identities found among ``user_ids``, by id."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        rows = await self._read(lambda c: c.fetch("SELECT * FROM users WHERE id = ANY($1::text[])", ids))
        return {row["id"]: user_from(row) for row in rows}

    async def revoke_tokens(self, user_id: str) -> int | None:
        value = await self._write(
            lambda c: c.fetchval(
                dialect.REVOKE_TOKENS.postgres,
                user_id,
            )
        )
        return None if value is None else int(value)

    async def delete_user(self, user_id: str, now_ms: int) -> bool:
        """Mark the user deleted and end its memberships at the current position."""

        async def run(c: Connection, finish: _Finish) -> bool:
            done = await c.fetchval(
                "UPDATE users SET deleted_ms = $1, token_generation = token_generation + 1 "
                "WHERE id = $2 AND deleted_ms IS NULL RETURNING true",
                now_ms, user_id,
            )
            if done:
                # The memberships are ended in the final message, once the counter is locked: the
                # statement's snapshot then holds every membership committed before, and no event
                # can take a position between the current one and our commit. The user id reaches
                # it through a transaction-local setting, so only integers are ever inlined.
                await c.execute("SELECT set_config('threadline.deleted_user', $1, true)", user_id)
                count = int(self.partitions)
                finish.then = (
                    "SELECT 1 FROM event_partitions ORDER BY id FOR UPDATE; "
                    f"UPDATE participants SET left_pos = (SELECT value * {count} + id FROM event_partitions "
                    f"WHERE id = threadline_part(participants.thread_id, {count})) "
                    f"WHERE user_id = current_setting('threadline.deleted_user') AND {LIVE_MEMBER}"
                )
            return bool(done)

        return await self._write_events(run)
