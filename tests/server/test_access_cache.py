"""The access cache itself: bounded, expiring, invalidated by key, thread and user, and never storing a
fill that may predate an invalidation."""

from __future__ import annotations

from threadline.server.access_cache import AccessCache
from threadline.store.records import ParticipantRecord


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def member(user_id: str, share: int = 0) -> ParticipantRecord:
    return ParticipantRecord(user_id, "name", share)


def test_many_distinct_users_and_memberships_stay_within_the_limit() -> None:
    cache = AccessCache(100, 60)
    for n in range(5000):
        cache.put_user(cache.epoch, f"u{n}", n)
        cache.put_member(cache.epoch, f"t{n % 700}", f"u{n}", member(f"u{n}"))
    assert len(cache) == 200  # 100 users + 100 memberships
    assert cache.user("u4999") == 4999 and cache.user("u4899") is None  # least recently used went first
    assert cache.member("t99", "u4999") is not None and cache.member("t699", "u4899") is None
    # The indices shrink with the entries they point at: dropping every thread leaves nothing behind.
    cache.invalidate(threads=[f"t{n}" for n in range(700)])
    assert len(cache) == 100 and not cache._by_thread and not cache._by_user


def test_a_lookup_refreshes_recency() -> None:
    cache = AccessCache(2, 60)
    cache.put_user(cache.epoch, "a", 1)
    cache.put_user(cache.epoch, "b", 1)
    assert cache.user("a") == 1
    cache.put_user(cache.epoch, "c", 1)  # evicts b, the least recently used
    assert (cache.user("a"), cache.user("b"), cache.user("c")) == (1, None, 1)


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = AccessCache(10, 5, clock=clock)
    cache.put_user(cache.epoch, "a", 3)
    cache.put_member(cache.epoch, "t", "a", member("a", 7))
    clock.now += 4.9
    assert cache.user("a") == 3
    found = cache.member("t", "a")
    assert found is not None and found.share_history_ms == 7
    clock.now += 0.2
    assert cache.user("a") is None and cache.member("t", "a") is None
    assert len(cache) == 0


def test_a_fill_that_started_before_an_invalidation_is_not_stored() -> None:
    cache = AccessCache(10, 60)
    ticket = cache.epoch  # a request starts reading the database...
    cache.invalidate(members=[("t", "a")])  # ...a write commits and invalidates meanwhile
    cache.put_member(ticket, "t", "a", member("a"))
    cache.put_user(ticket, "a", 0)
    assert cache.member("t", "a") is None and cache.user("a") is None
    cache.put_member(cache.epoch, "t", "a", member("a"))  # a read that started afterwards is kept
    assert cache.member("t", "a") is not None


def test_invalidation_by_user_thread_and_membership() -> None:
    cache = AccessCache(100, 60)
    for user in ("a", "b"):
        cache.put_user(cache.epoch, user, 0)
        for thread in ("t1", "t2"):
            cache.put_member(cache.epoch, thread, user, member(user))
    cache.invalidate(members=[("t1", "b")])
    assert cache.member("t1", "b") is None and cache.member("t2", "b") is not None
    cache.invalidate(threads=["t2"])
    assert cache.member("t2", "a") is None and cache.member("t2", "b") is None
    assert cache.member("t1", "a") is not None
    cache.invalidate(users=["a"])  # a revoked or deleted user: its generation and every membership
    assert cache.user("a") is None and cache.member("t1", "a") is None
    assert cache.user("b") == 0
    assert len(cache) == 1


def test_a_suspended_cache_serves_nothing_stores_nothing_and_forgets_everything() -> None:
    cache = AccessCache(10, 60)
    cache.put_user(cache.epoch, "a", 0)
    ticket = cache.epoch
    cache.suspend()
    assert not cache.serving and len(cache) == 0
    cache.put_user(cache.epoch, "a", 0)
    assert cache.user("a") is None
    cache.resume()
    cache.put_user(ticket, "b", 0)  # read before the suspension: not stored after the resumption
    assert cache.user("b") is None
    cache.put_user(cache.epoch, "b", 0)
    assert cache.serving and cache.user("b") == 0


def test_a_cache_of_size_zero_is_off() -> None:
    cache = AccessCache(0, 60)
    cache.put_user(cache.epoch, "a", 0)
    assert not cache.serving and cache.user("a") is None and len(cache) == 0
