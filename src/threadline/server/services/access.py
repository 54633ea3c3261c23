"""The reads every request repeats, through the per-process access cache, and the writes that change them.

:class:`Access` answers the two questions asked on nearly every request, from
:class:`~threadline.server.access_cache.AccessCache` when it can and from the
store otherwise:

* authentication: which token generation is valid for a live user;
* thread operations: is the thread live, and the caller's live membership.

Writes that can change those answers (revocation, identity deletion, a member
added or removed, a thread deleted) call :meth:`Access.changed` after they
commit and before their caller is answered: the change is applied to this
process's cache at once, then sent to every other process through the
:class:`Invalidations` channel (Redis, :mod:`threadline.server.redis_invalidation`),
which returns once the change has reached Redis and come back to this node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from threadline.server.access_cache import AccessCache
from threadline.store.base import Store
from threadline.store.records import ParticipantRecord

__all__ = ["Access", "Change", "Invalidations"]


@dataclass(frozen=True, slots=True)
class Change:
    """What a committed write may have changed.

    Attributes:
        users: users revoked or deleted (their token generation and every membership).
        threads: threads deleted (every membership in them).
        members: (thread id, user id) memberships ended or begun.
    """

    users: tuple[str, ...] = ()
    threads: tuple[str, ...] = ()
    members: tuple[tuple[str, str], ...] = ()


class Invalidations(Protocol):
    """Carries changes to the access caches of the other processes sharing the database."""

    async def publish(self, change: Change) -> None:
        """Send a change to every other process; return once it is sent (or could not be, logged)."""


class Access:
    """The token's user and the caller's membership, cached when it is safe.

    Args:
        store: the database.
        cache: this process's cache; None reads the store every time (PostgreSQL without Redis).
        channel: where changes go for the other processes; None when this process is the only one
            (SQLite).
    """

    def __init__(self, store: Store, cache: AccessCache | None = None, channel: Invalidations | None = None) -> None:
        self._store = store
        self._cache = cache
        self._channel = channel

    @property
    def cache(self) -> AccessCache | None:
        """This process's cache (None when caching is off)."""
        return self._cache

    async def token_generation(self, user_id: str, claimed: int) -> int | None:
        """The token generation valid for a live user; None when the user is unknown or deleted.

        Generations only rise, so a cached one at or above ``claimed`` is the answer (equal:
        the token is valid; above: it was revoked); a lower one is read again.

        Args:
            user_id: the token's user.
            claimed: the generation the token carries.

        Returns:
            The user's current token generation, or None.

        Raises:
            StoreError: the database failed.
        """
        cache = self._cache
        ticket = 0
        if cache is not None:
            cached = cache.user(user_id)
            if cached is not None and cached >= claimed:
                return cached
            ticket = cache.epoch
        user = await self._store.get_user(user_id)
        if user is None or user.deleted_ms is not None:
            return None
        if cache is not None:
            cache.put_user(ticket, user_id, user.token_generation)
        return user.token_generation

    async def membership(self, thread_id: str, user_id: str) -> tuple[bool, ParticipantRecord | None]:
        """Whether the thread is live, and the user's live membership in it.

        Args:
            thread_id: the thread.
            user_id: the (authenticated) user.

        Returns:
            ``(live, member)``: ``live`` False for an unknown or deleted thread; ``member``
            None when the user is not a member now.

        Raises:
            StoreError: the database failed.
        """
        cache = self._cache
        ticket = 0
        if cache is not None:
            member = cache.member(thread_id, user_id)
            if member is not None:
                return True, member
            ticket = cache.epoch
        thread, member = await self._store.get_access(thread_id, user_id)
        live = thread is not None and thread.deleted_ms is None
        if cache is not None and live and member is not None:
            cache.put_member(ticket, thread_id, user_id, member)
        return live, member

    async def changed(
        self, *, users: Iterable[str] = (), threads: Iterable[str] = (),
        members: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Drop what a committed write may have changed, here at once and on every other process.

        Call it after the write (also when the write failed: it is harmless) and before
        answering the writer's caller. The channel's send goes on when the request is
        cancelled.

        Args:
            users: users revoked or deleted.
            threads: threads deleted.
            members: (thread id, user id) memberships ended or begun.
        """
        change = Change(tuple(users), tuple(threads), tuple(members))
        if not (change.users or change.threads or change.members):
            return
        if self._cache is not None:
            self._cache.invalidate(users=change.users, threads=change.threads, members=change.members)
        if self._channel is not None:
            await asyncio.shield(self._channel.publish(change))
