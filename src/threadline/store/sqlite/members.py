"""The live members of recently written threads, kept by the SQLite store's one write connection.

Every send checks that its sender is a live member of the thread, and every event of a write
that changes no membership goes to the thread's live members (those whose share-history window
holds the message it reveals). Read with SQL, that was a subquery in the send's ``UPDATE`` and
another in the ``SELECT`` after it: ~14k of the ~215k instructions a send with an event cost
under callgrind (``bench/scale_store.py``'s write, one member). :class:`LiveMembers` reads a
thread's live members once and answers both from memory for as long as they cannot have changed.

It is only ever right because of when it forgets, so it forgets eagerly:

* a write not marked as leaving memberships alone (every write but the message and receipt
  writes, see :meth:`~threadline.store.sqlite.core.SqliteCore._write`) forgets every thread
  before it runs and again after, and marks the transaction: whatever is read after it in the
  same transaction may hold a change that a rollback undoes, so the next transaction starts
  with nothing;
* another connection's commit (the CLI, a second process on the file) changes SQLite's
  ``PRAGMA data_version``, read at the start of every transaction: nothing read before it is
  kept.

The writer runs one write at a time on the connection (on its thread or on the event loop), so
the object is never used from two threads at once. It holds at most ``max_members`` entries (a
thread's members and one for the thread itself) and forgets everything when it would hold more.
"""

from __future__ import annotations

import sqlite3

from ..dialect import LIVE_MEMBER

__all__ = ["LiveMembers", "Members"]


class Members:
    """A thread's live members: (user id, share-history time) in the order they joined, and their ids.

    Args:
        pairs: (user id, share-history time) of each live member, in the order of their stays.
    """

    __slots__ = ("_everyone", "_latest_share", "ids", "pairs")

    def __init__(self, pairs: tuple[tuple[str, int], ...]) -> None:
        self.pairs = pairs
        self.ids = frozenset(user for user, _ in pairs)
        self._everyone = tuple(user for user, _ in pairs)
        self._latest_share = max((shared for _, shared in pairs), default=0)

    def window(self, message_ms: int | None) -> tuple[str, ...]:
        """Who receives a new event of a write that changes no membership.

        Every live member whose share-history window holds the message the event reveals,
        created at ``message_ms`` (None: an event revealing no message, every live member).

        Returns:
            Their user ids, in the order of their stays.
        """
        if message_ms is None or message_ms >= self._latest_share:  # the common case: everyone
            return self._everyone
        return tuple(user for user, shared in self.pairs if shared <= message_ms)


#: The live members of a thread in the order of their stays (as the recipient subqueries listed them).
_LIVE = f"SELECT user_id, share_history_ms FROM participants WHERE thread_id = ? AND {LIVE_MEMBER} ORDER BY id"


class LiveMembers:
    """A thread's live members, read once per thread and forgotten at every possible change.

    Args:
        max_members: the most entries held: every thread's members, plus one per thread.
    """

    def __init__(self, max_members: int = 50_000) -> None:
        self._threads: dict[str, Members] = {}
        self._held = 0
        self._max = max_members
        #: A write that may change memberships ran in the current transaction.
        self._changed = False
        #: ``PRAGMA data_version`` at the start of the current transaction.
        self._version = -1
        #: Threads read from the database and answered from memory (their ratio is the hit rate).
        self.reads = 0
        self.hits = 0

    def begin(self, conn: sqlite3.Connection) -> None:
        """A transaction begins: forget everything if another connection committed, or the last one changed members."""
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if self._changed or version != self._version:
            self.forget()
        self._version, self._changed = version, False

    def changing(self) -> None:
        """A write that may change memberships runs (or has run) in this transaction."""
        self.forget()
        self._changed = True

    def forget(self) -> None:
        """Hold nothing."""
        self._threads.clear()
        self._held = 0

    def of(self, conn: sqlite3.Connection, thread_id: str) -> Members:
        """The live members of a thread, in the order they joined, as this transaction sees them."""
        found = self._threads.get(thread_id)
        if found is not None:
            self.hits += 1
            return found
        rows = conn.execute(_LIVE, (thread_id,)).fetchall()
        found = Members(tuple((str(r[0]), int(r[1])) for r in rows))
        self.reads += 1
        held = len(found.pairs) + 1  # a thread with no live member (or none at all) counts too
        if self._held + held > self._max:
            self.forget()
        self._threads[thread_id] = found
        self._held += held
        return found
