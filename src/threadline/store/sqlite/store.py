"""The SQLite store: its lifecycle and backup, over the concerns mixed in from the package."""

from __future__ import annotations

import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..admin_queries import SqliteAdminQueries
from ..webhooks_sqlite import SqliteWebhooks
from ..writer import Writer
from .core import _write_connection
from .events import SqliteEvents
from .identities import SqliteIdentities
from .messages import SqliteMessages
from .participants import SqliteParticipants
from .schema import migrate
from .threads import SqliteThreads

__all__ = ["SqliteStore"]

class _ProbeDone(Exception):
    """Ends the write probe of :meth:`SqliteStore.ping`, rolling it back."""


class SqliteStore(SqliteIdentities, SqliteThreads, SqliteParticipants, SqliteMessages, SqliteEvents,
                  SqliteAdminQueries):
    """The :class:`~threadline.store.base.Store` on one SQLite file.

    Args:
        path: the database file (created when missing).
        synchronous: SQLite's ``synchronous`` pragma: ``NORMAL`` or ``FULL``.
        readers: how many threads serve reads.
    """

    engine = "sqlite"
    #: One writer orders every event: one partition, whose positions are the old global ones.
    partitions = 1

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._new_session()
        writer = Writer(lambda: _write_connection(self.path, self._synchronous), inline=self._synchronous == "NORMAL",
                        session=self._session)
        await writer.start(migrate)
        self._writer = writer
        self._reader = ThreadPoolExecutor(self._readers, thread_name_prefix="threadline-sqlite-reader")

    async def close(self) -> None:
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        if writer is not None:
            await writer.stop()
        if reader is not None:
            reader.shutdown(wait=True)
        with self._lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless a read answers, :class:`StoreReadOnly` unless a write can begin."""
        await self._read(lambda c: c.execute("SELECT 1").fetchone())

        def probe(c: sqlite3.Connection) -> None:
            # BEGIN IMMEDIATE succeeds even on a read-only file: only changing a page tells. The change
            # is rolled back (the raise), so the probe leaves nothing behind.
            c.execute("UPDATE schema_migrations SET applied_ms = applied_ms "
                      "WHERE version = (SELECT max(version) FROM schema_migrations)")
            raise _ProbeDone

        with contextlib.suppress(_ProbeDone):
            await self._write(probe)

    async def resource_identity(self, resource_id: str, key_fingerprint: str) -> tuple[str, str]:
        def run(c: sqlite3.Connection) -> tuple[str, str]:
            query = "SELECT resource_id, key_fingerprint FROM resource_identity WHERE id = 1"
            row = c.execute(query).fetchone()
            if row is None:  # only the first opening writes, so a read-only database still opens
                c.execute(
                    "INSERT INTO resource_identity (id, resource_id, key_fingerprint, created_ms) "
                    "VALUES (1, ?, ?, strftime('%s')*1000)",
                    (resource_id, key_fingerprint),
                )
                row = c.execute(query).fetchone()
            return str(row[0]), str(row[1])

        return await self._write(run)

    def write_batches(self) -> tuple[int, int]:
        """Groups the writer committed and the writes they held (every write; zeros while closed).

        Plain counters of the writer, read without a lock: at most a group behind.
        """
        writer = self._writer
        return (writer.groups, writer.writes) if writer is not None else (0, 0)

    @property
    def webhooks(self) -> SqliteWebhooks:
        """The webhook tables (subscriptions, cursors, leases, dead letters)."""
        return SqliteWebhooks(self)

    async def backup(self, path: str | Path) -> int:
        """Write a consistent copy of the database to ``path`` while the server keeps running.

        Uses SQLite's online backup API from a read connection, which sees one
        committed snapshot (WAL lets writers go on meanwhile). The copy is
        written beside ``path`` and renamed into place, so ``path`` never holds
        a partial copy; it is a self-contained file (rollback journal, no WAL).
        The image files it names are copied to ``<path>.images/``.

        Args:
            path: the file to write (replaced if it exists).

        Returns:
            The size of the copy in bytes.

        Raises:
            StoreUnavailable: the store is closed.
            sqlite3.Error: the copy could not be written or failed ``PRAGMA quick_check``.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")

        def run(conn: sqlite3.Connection) -> int:
            partial.unlink(missing_ok=True)
            copy = sqlite3.connect(str(partial), isolation_level=None)
            try:
                conn.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")
                verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    raise sqlite3.DatabaseError(f"the copy failed its check: {verdict}")
            finally:
                copy.close()
            partial.replace(target)
            self._backup_images(target)
            return target.stat().st_size

        return await self._read(run)
