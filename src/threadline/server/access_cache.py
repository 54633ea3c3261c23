"""A per-process cache of the facts every request re-reads: the token's user and thread membership.

Authentication reads the token's user (deleted? which token generation is valid?)
and most thread operations read the caller's membership (its share-history
time). Both rarely change, so this process keeps them, bounded:

* ``users``: user id -> the token generation of a live user;
* ``members``: (thread id, user id) -> the live membership of a live thread.

Only positive facts are kept (a live user whose token's signature was verified,
a live member of a live thread), so nothing a stranger sends can fill the cache;
both maps are LRU with ``max_entries`` each and every entry expires after
``ttl_seconds`` (a backstop, not the means of correctness).

Correctness comes from invalidation (:meth:`AccessCache.invalidate`): every
write that can change a fact drops its entries after it commits, on this
process at once and on the others through the invalidation channel
(:mod:`threadline.server.redis_invalidation`). A fill whose read may have
started before an invalidation is not stored: every invalidation, suspension
and resumption moves :attr:`AccessCache.epoch`, and a fill is stored only when
the epoch it took before reading is still current. While the channel is down
the cache is suspended: it is empty, serves nothing and stores nothing
(``docs/design.md``, "Access cache").
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from threadline.server import metrics
from threadline.store.records import ParticipantRecord

__all__ = ["AccessCache"]

_Member = tuple[str, str]


class AccessCache:
    """Bounded LRU maps of live users' token generations and live memberships, with a TTL.

    Args:
        max_entries: the most entries each map holds (0 turns the cache off).
        ttl_seconds: how long an entry may be served after it was read from the database.
        serving: whether to serve from the start (False: until :meth:`resume`).
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self, max_entries: int, ttl_seconds: float, *, serving: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max(0, max_entries)
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._serving = False
        self._users: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._members: OrderedDict[_Member, tuple[float, ParticipantRecord]] = OrderedDict()
        self._by_thread: dict[str, set[str]] = {}
        self._by_user: dict[str, set[str]] = {}
        self._epoch = 0
        if serving:
            self.resume()
        else:
            metrics.access_cache_serving(False)

    # -- state -------------------------------------------------------------------------------------

    @property
    def serving(self) -> bool:
        """Whether lookups may be answered from the cache right now."""
        return self._serving

    @property
    def epoch(self) -> int:
        """The ticket a fill takes before reading the database (see :meth:`put_user`)."""
        return self._epoch

    def __len__(self) -> int:
        return len(self._users) + len(self._members)

    def suspend(self) -> None:
        """Stop serving and storing, and forget everything (the invalidation channel is down)."""
        self._serving = False
        metrics.access_cache_serving(False)
        self.clear()

    def resume(self) -> None:
        """Serve again (the invalidation channel is subscribed); fills that started earlier are not stored."""
        self._epoch += 1
        self._serving = self.max_entries > 0 and self.ttl_seconds > 0
        metrics.access_cache_serving(self._serving)

    def clear(self) -> None:
        """Forget every entry."""
        self._epoch += 1
        self._users.clear()
        self._members.clear()
        self._by_thread.clear()
        self._by_user.clear()
        metrics.access_cache_size(0)

    # -- lookups -----------------------------------------------------------------------------------

    def user(self, user_id: str) -> int | None:
        """The cached token generation of a live user, or None (a miss, or not serving)."""
        if not self._serving:
            metrics.access_cache_lookup("user", "bypass")
            return None
        entry = self._users.get(user_id)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                del self._users[user_id]
            metrics.access_cache_lookup("user", "miss")
            return None
        self._users.move_to_end(user_id)
        metrics.access_cache_lookup("user", "hit")
        return entry[1]

    def member(self, thread_id: str, user_id: str) -> ParticipantRecord | None:
        """The cached live membership of a user in a live thread, or None (a miss, or not serving)."""
        if not self._serving:
            metrics.access_cache_lookup("member", "bypass")
            return None
        key = (thread_id, user_id)
        entry = self._members.get(key)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                self._drop_member(key)
            metrics.access_cache_lookup("member", "miss")
            return None
        self._members.move_to_end(key)
        metrics.access_cache_lookup("member", "hit")
        return entry[1]

    # -- fills -------------------------------------------------------------------------------------

    def put_user(self, ticket: int, user_id: str, generation: int) -> None:
        """Keep a live user's token generation, read after :attr:`epoch` was ``ticket``.

        Nothing is kept when an invalidation (or a suspension) happened since: the read
        may have seen the database before the write that invalidated it.
        """
        if ticket != self._epoch or not self._serving:
            return
        self._users[user_id] = (self._clock() + self.ttl_seconds, generation)
        self._users.move_to_end(user_id)
        while len(self._users) > self.max_entries:
            self._users.popitem(last=False)
        self._report()

    def put_member(self, ticket: int, thread_id: str, user_id: str, member: ParticipantRecord) -> None:
        """Keep a live membership of a live thread, read after :attr:`epoch` was ``ticket``."""
        if ticket != self._epoch or not self._serving:
            return
        key = (thread_id, user_id)
        self._members[key] = (self._clock() + self.ttl_seconds, member)
        self._members.move_to_end(key)
        self._by_thread.setdefault(thread_id, set()).add(user_id)
        self._by_user.setdefault(user_id, set()).add(thread_id)
        while len(self._members) > self.max_entries:
            self._drop_member(next(iter(self._members)))
        self._report()

    # -- invalidation ------------------------------------------------------------------------------

    def invalidate(
        self, *, users: Iterable[str] = (), threads: Iterable[str] = (), members: Iterable[_Member] = ()
    ) -> None:
        """Drop the entries a committed write may have changed.

        Args:
            users: users revoked or deleted: their token generation and every membership.
            threads: threads deleted: every membership in them.
            members: (thread, user) memberships ended or begun.
        """
        self._epoch += 1
        for user_id in users:
            self._users.pop(user_id, None)
            for thread_id in list(self._by_user.get(user_id, ())):
                self._drop_member((thread_id, user_id))
            metrics.access_cache_invalidated("user")
        for thread_id in threads:
            for user_id in list(self._by_thread.get(thread_id, ())):
                self._drop_member((thread_id, user_id))
            metrics.access_cache_invalidated("thread")
        for key in members:
            self._drop_member(key)
            metrics.access_cache_invalidated("member")
        self._report()

    def _drop_member(self, key: _Member) -> None:
        if self._members.pop(key, None) is None:
            return
        thread_id, user_id = key
        for index, outer, inner in ((self._by_thread, thread_id, user_id), (self._by_user, user_id, thread_id)):
            group = index.get(outer)
            if group is not None:
                group.discard(inner)
                if not group:
                    del index[outer]

    def _report(self) -> None:
        metrics.access_cache_size(len(self._users) + len(self._members))
