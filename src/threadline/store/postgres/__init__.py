"""The scale-out store: PostgreSQL through an asyncpg pool, shared by many nodes.

It mirrors :class:`~threadline.store.sqlite.SqliteStore` statement for
statement; where SQLite gets its guarantees from having one writer, this
engine gets them from row locks held until commit:

* sequence ids and epoch-ms message ids come from ``UPDATE threads ...
  RETURNING``, so writers of one thread queue on its row;
* membership changes (add, remove) lock the thread row before reading who is
  in, so two nodes cannot add the same user twice, and the participant cap
  is counted under that lock, so concurrent adds cannot together pass it;
* an idempotent write first claims its ``(scope, key)`` with ``INSERT ... ON
  CONFLICT DO NOTHING``: a concurrent duplicate waits on the unique index until
  the first commits, then finds the key taken and replays the stored result;
* event positions come from the row of the thread's partition in
  ``event_partitions`` (:mod:`threadline.store.positions`), whose row lock is held until
  commit, so a transaction that took a partition's position P commits before
  any that takes the next one: a partition's positions become visible in
  order, on every node. (A ``BIGSERIAL`` would not do: its values are handed
  out at insert time, and a lower one can commit after a higher one.)
  Writes to threads of other partitions never wait for it.

A send takes none of the path below: it is one statement (:mod:`threadline.store.pg_send`).
Every other event writer of a partition queues on its lock, so what matters is
how long it is held. A write therefore does all its work first: it inserts its events under
placeholder positions (negative, unique per write, from the
``event_placeholders`` sequence) and its membership rows with their positions
still unset, and notes their ids. Its last message to the server is then one
simple-protocol query (only integers are inlined), ``WITH c AS (UPDATE
event_partitions ... RETURNING ...), ... UPDATE events SET position = ...,
UPDATE participants SET joined_pos/left_pos = ... SELECT set_config(...);
COMMIT``: planned before it waits, it takes the counter lock, rewrites the
placeholders and commits, with no client round trip in between. The lock is
held for those few row updates and the WAL flush, no longer. (Before, it was
held through two more round trips, the recipients query and ``COMMIT``, each
waiting on the client's event loop.)

Why this is still correct:

* ordering: positions are still taken under the counter lock and the lock is
  still released only by ``COMMIT``, so commit order is position order. The
  placeholders are never visible: they are written and replaced by the same
  transaction, and they are negative (readers ask for ``position > after``
  with ``after >= 0``); dense positions are kept too (an aborted write rolls
  its counter increment back), so the Redis hub's gap detection and the
  WebSocket resume read exactly what they read before;
* recipients: the members whose interval covers a position, read *after*
  commit (the first position is passed through a session setting). That read
  is exact: membership rows change their coverage only in the final step of a
  write, under the counter lock, and set ``joined_pos``/``left_pos`` to at
  least the counter value they found, so nothing that commits later can
  change who covers a position already committed; ``events_since`` reads the
  same rows, so live delivery and replay agree;
* a membership change with no event (``on_position`` in SQLite) still takes
  the counter lock, with ``value + 0``: a join begins at the next position, a
  removal ends at the last one taken;
* deleting a user ends its memberships at their partitions' current positions
  in its own final message: it locks every partition row (in id order), then
  ``UPDATE participants`` as a second statement, whose fresh snapshot, taken
  once the locks are held, sees every membership committed before, then ``COMMIT``.

If the connection fails between ``COMMIT`` and that read, the write is
returned without its events (and a warning is logged); subscribers still get
them from the log: the hub fills the gap, a resume replays it.

Lock order is idempotency key, thread row, event counter, membership rows; a
deadlock that still happens (deleting a user while re-adding them) is retried.
"

The package splits the store by concern: :mod:`.core` (the pool, the
transaction plumbing shared by every write), :mod:`.finish` (the final message
of an event-writing transaction), :mod:`.store` (lifecycle), :mod:`.identities`,
:mod:`.threads`, :mod:`.participants`, :mod:`.messages` (with read receipts),
:mod:`.events` and :mod:`.schema` (migrations).
"""

from __future__ import annotations

from .schema import migrate
from .store import PostgresStore

__all__ = ["PostgresStore", "migrate"]
