"""Who may spend a rate budget: the caller's right to a budget is checked before it is charged.

The :class:`~threadline.server.throttle.Throttle` counts requests per user, per
thread and per user in a thread. This service decides when a request may be
counted at all, so nothing a stranger sends costs memory or spends a member's
budget (``docs/limits.md``, "Who spends a budget"):

* chat operations are charged only to an authenticated user (the identity
  service has checked the token's signature, expiry and revocation);
* an operation on a thread is charged only once the caller is known to be a
  member of that thread, and before its body is read, so a non-member's
  request, well-formed or not, is answered 403/404 and counts nowhere;
* identity operations (per-resource budgets) are charged only once their
  HMAC signature has been verified.

The route layer calls :meth:`Admission.admit` right after authentication; the
service methods check membership again on their own (they do not trust the
route); both ask the access cache (:mod:`.access`), so the second check is
usually no read at all.
"""

from __future__ import annotations

from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.server.throttle import Throttle, Ticket
from threadline.store.base import Store

from .access import Access
from .actor import Actor
from .common import require_member

__all__ = ["Admission"]

#: Operations that members may call on a deleted thread (deleting it again succeeds quietly).
_ON_DELETED_THREADS = frozenset({"delete_thread"})


class Admission:
    """Charges an operation's rate budgets to a caller entitled to them.

    Args:
        store: the database (thread membership).
        throttle: the rate limiter, or None when throttling is off.
        access: the access cache in front of the store (None: read the store every time).
    """

    def __init__(self, store: Store, throttle: Throttle | None, access: Access | None = None) -> None:
        self._store = store
        self._throttle = throttle
        self._access = access or Access(store)

    @property
    def throttle(self) -> Throttle | None:
        """The rate limiter (None when throttling is off)."""
        return self._throttle

    def charges(self, operation: str) -> bool:
        """Whether :meth:`admit` would charge anything for the operation (False with throttling off).

        Args:
            operation: the route name.

        Returns:
            True when the operation has rate budgets.
        """
        return self._throttle is not None and bool(self._throttle.rules(operation))

    async def admit(self, operation: str, actor: Actor | None, thread_id: str | None = None) -> Ticket | None:
        """Check the caller's right to the operation's budgets, then take one slot of each.

        Args:
            operation: the route name.
            actor: the authenticated chat user, or None for an identity operation whose
                signature has been verified (per-resource budgets only).
            thread_id: the thread the operation is about, if any.

        Returns:
            The ticket to refund if the request is then refused as 401/403, or None when
            nothing was charged (throttling off, or the operation not throttled).

        Raises:
            ChatServiceError: 404 unknown or deleted thread and 403 not a member (before
                anything is charged); 429 when a budget is spent.
        """
        throttle = self._throttle
        if throttle is None:
            return None
        rules = throttle.rules(operation)
        if not rules:
            return None
        if actor is None:
            if any(r.scope != "resource" for r in rules):  # pragma: no cover - a wiring mistake
                raise ChatServiceError(ErrorKind.UNAUTHORIZED)
            return throttle.take(operation)
        if thread_id is None:
            return throttle.take(operation, user=actor.user_id)
        await self._require_member(operation, actor, thread_id)
        return throttle.take(operation, user=actor.user_id, thread=thread_id)

    async def _require_member(self, operation: str, actor: Actor, thread_id: str) -> None:
        """Refuse a caller who is not a live member of the thread, as the services do.

        Raises:
            ChatServiceError: 404 unknown (or deleted) thread, 403 not a member or no chat scope.
        """
        if operation not in _ON_DELETED_THREADS:
            await require_member(self._access, actor, thread_id)
            return
        thread, member = await self._store.get_access(thread_id, actor.user_id)
        if thread is None:
            raise ChatServiceError(ErrorKind.NOT_FOUND, "Thread not found.", target="chatThreadId")
        if member is None or not actor.can_chat:
            raise ChatServiceError(ErrorKind.FORBIDDEN)
