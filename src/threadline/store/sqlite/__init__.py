"""The embedded store: SQLite in WAL mode behind one writer thread.

Every write goes through the one write connection, owned by a dedicated
thread, so writers never contend and "database is locked" cannot happen; the
thread commits queued writes in groups, and an idle writer lets the event
loop commit a write itself when no lock is in the way (:mod:`threadline.store.writer`).
Point reads and bounded pages (tens of microseconds) run inline on the event
loop with a read connection of its own, which is cheaper than a thread hop;
long reads (backups) run on a small pool of threads. WAL lets every reader
proceed while the writer commits. ``synchronous=NORMAL`` (the
default) keeps every committed transaction through a crash of the process
(SIGKILL); ``FULL`` also survives a power loss.

The package splits the store by concern: :mod:`.core` (connections, the
transaction plumbing shared by every write), :mod:`.store` (lifecycle, backup),
:mod:`.identities`, :mod:`.threads`, :mod:`.participants`, :mod:`.messages`
(with read receipts), :mod:`.events` and :mod:`.schema` (migrations).
"""

from __future__ import annotations

from .schema import _statements as _statements  # the migration tests split SQL with it
from .schema import migrate
from .store import SqliteStore

__all__ = ["SqliteStore", "migrate"]
