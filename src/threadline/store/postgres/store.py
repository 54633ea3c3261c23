"""The PostgreSQL store: its lifecycle, over the concerns mixed in from the package."""

from __future__ import annotations

import asyncpg

from ..admin_queries import PostgresAdminQueries
from ..base import StoreReadOnly, StoreUnavailable
from ..webhooks_postgres import PostgresWebhooks
from .core import _NOW_MS, _UNAVAILABLE, Connection
from .events import PostgresEvents
from .identities import PostgresIdentities
from .messages import PostgresMessages
from .participants import PostgresParticipants
from .schema import migrate
from .threads import PostgresThreads

__all__ = ["PostgresStore"]

#: Settings of every pooled session. No JIT: every statement of the store is short, and PostgreSQL
#: judges by estimated cost alone: a replay's per-partition read (an unknown bound: a third of the
#: partition estimated) passed ``jit_above_cost`` on a 200k-event log and spent 12 ms compiling
#: for a 0.2 ms read (bench/event_index.py).
_SESSION = {"jit": "off"}


async def _keep_session(conn: Connection) -> None:
    """Reset nothing when a connection goes back to the pool (asyncpg still rolls back an open transaction).

    The default reset costs a round trip per use (``RESET ALL``, ``UNLISTEN *``, ...) for state
    this store never leaves behind: its only session setting is rewritten by every write that reads it.
    """


class PostgresStore(PostgresIdentities, PostgresThreads, PostgresParticipants, PostgresMessages, PostgresEvents,
                    PostgresAdminQueries):
    """The :class:`~threadline.store.base.Store` on a PostgreSQL database.

    Args:
        url: a ``postgresql://`` (or ``postgres://``) connection URL.
        min_size: connections the pool keeps open.
        max_size: most connections the pool opens.
        command_timeout: seconds after which a statement is abandoned.
    """

    engine = "postgres"

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, then apply pending migrations under an advisory lock.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        try:
            conn = await asyncpg.connect(self.url, timeout=self._command_timeout)
            try:
                await migrate(conn)
                self.partitions = int(await conn.fetchval("SELECT count(*) FROM event_partitions"))
            finally:
                await conn.close()
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self._min_size, max_size=self._max_size,
                command_timeout=self._command_timeout, reset=_keep_session, server_settings=_SESSION,
            )
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"PostgreSQL is not reachable: {exc}") from exc

    async def close(self) -> None:
        """Wait for the sends handed over and the connections in use, then close them all."""
        await self.send_turn.drain()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers, :class:`StoreReadOnly` unless it takes writes.

        A standby (in recovery) or ``default_transaction_read_only`` refuses writes.
        """
        row = await self._read(lambda c: c.fetchrow(
            "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS ro"
        ))
        if row["standby"] or row["ro"] == "on":
            raise StoreReadOnly("PostgreSQL is read-only" + (" (a standby)" if row["standby"] else ""))

    async def resource_identity(self, resource_id: str, key_fingerprint: str) -> tuple[str, str]:
        async def run(c: Connection) -> tuple[str, str]:
            query = "SELECT resource_id, key_fingerprint FROM resource_identity"
            row = await c.fetchrow(query)
            if row is None:  # only the first opening writes; concurrent first openings agree on one row
                await c.execute(
                    f"INSERT INTO resource_identity (resource_id, key_fingerprint, created_ms) "
                    f"VALUES ($1, $2, {_NOW_MS}) ON CONFLICT (id) DO NOTHING",
                    resource_id, key_fingerprint,
                )
                row = await c.fetchrow(query)
            return str(row["resource_id"]), str(row["key_fingerprint"])

        return await self._write(run)

    def write_batches(self) -> tuple[int, int]:
        """Send statements written (:class:`~threadline.store.pg_send.SendTurn`) and the sends they carried.

        Only sends are batched on PostgreSQL; every other write is a transaction of its own, not counted.
        """
        return self.send_turn.statements, self.send_turn.sends

    @property
    def webhooks(self) -> PostgresWebhooks:
        """The webhook tables (subscriptions, cursors, leases, dead letters)."""
        return PostgresWebhooks(self)
