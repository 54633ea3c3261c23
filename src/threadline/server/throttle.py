"""Per-operation request throttling with the rates ACS documents.

ACS answers ``429 TooManyRequests`` with ``Retry-After`` when an operation is
called more often than its documented rate (``acs-events-and-limits.md``
§2.3, ``docs/limits.md``): for example at most 10 sends per thread in any
10 seconds and 30 in any minute. :class:`Throttle` enforces the same rates
with exact sliding windows: each (rule, key) keeps the times of the requests
it admitted inside its window, so no window ever admits more than the rule's
count, and a refused caller learns exactly when the oldest of those leaves it.

Keys are made of what ACS scopes each rule by: the user (taken from a bearer
token whose signature verifies, so nobody can spend another user's budget),
the thread (the ``thread_id`` path parameter) or the whole resource.
A request that is then refused as 401 or 403 gives its slots back
(:meth:`Throttle.refund`), so strangers cannot exhaust a thread's budget.

State lives in memory, **per server process** (per node): with several nodes
behind a load balancer each enforces the rates on its own share of traffic.
The ``--no-limits`` switch (``THREADLINE_NO_LIMITS=1``) that lifts the size
limits lifts throttling too; ``THREADLINE_THROTTLE=off`` lifts throttling
alone and ``THREADLINE_THROTTLE=<factor>`` scales every rate (``2`` doubles them).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from starlette.requests import Request

from threadline.identity.tokens import InvalidToken, TokenIssuer
from threadline.protocol.errors import ChatServiceError, ErrorKind

from .limits import Limits

__all__ = ["ACS_RULES", "REFUND_STATUSES", "Rule", "Throttle", "Ticket", "make_throttle"]

_log = logging.getLogger("threadline.throttle")

Scope = Literal["user", "thread", "user_thread", "resource"]


@dataclass(frozen=True, slots=True)
class Rule:
    """At most ``count`` requests per ``seconds`` for each value of ``scope``.

    Attributes:
        scope: what the budget belongs to: a user, a thread, a user in a thread, or the resource.
        count: requests admitted per window.
        seconds: the window length.
    """

    scope: Scope
    count: int
    seconds: float


def _r(scope: Scope, count: int, seconds: float) -> Rule:
    return Rule(scope, count, seconds)


#: ACS's documented rates, by route name (the function names in ``routes/``).
ACS_RULES: dict[str, tuple[Rule, ...]] = {
    # threads
    "create_thread": (_r("user", 10, 10), _r("resource", 3000, 60)),
    "delete_thread": (_r("user", 10, 10),),
    "update_thread": (_r("thread", 5, 10),),
    "get_thread": (_r("user", 50, 10),),
    "list_threads": (_r("user", 50, 10),),
    # messages
    "send_message": (_r("thread", 10, 10), _r("thread", 30, 60)),
    "update_message": (_r("thread", 10, 10), _r("thread", 30, 60)),
    "delete_message": (_r("thread", 10, 10), _r("thread", 30, 60)),
    "get_message": (_r("user_thread", 50, 10), _r("thread", 250, 10)),
    "list_messages": (
        _r("user_thread", 50, 10), _r("user_thread", 200, 60), _r("thread", 250, 10), _r("thread", 400, 60),
    ),
    # participants
    "add_participants": (_r("thread", 10, 10), _r("thread", 30, 60)),
    "remove_participant": (_r("thread", 10, 10), _r("thread", 30, 60)),
    "list_participants": (_r("user_thread", 10, 10), _r("thread", 250, 10)),
    # read receipts and typing
    "send_read_receipt": (_r("user_thread", 10, 10), _r("user_thread", 30, 60)),
    "list_read_receipts": (_r("user_thread", 5, 10), _r("thread", 100, 10)),
    "send_typing": (
        _r("user_thread", 5, 10), _r("user_thread", 15, 60), _r("thread", 10, 10), _r("thread", 30, 60),
    ),
    # identity (per resource, per 30 s)
    "create_identity": (_r("resource", 1000, 30),),
    "issue_token": (_r("resource", 1000, 30),),
    "delete_identity": (_r("resource", 500, 30),),
    "revoke_tokens": (_r("resource", 500, 30),),
    "exchange_teams_token": (_r("resource", 500, 30),),
}

#: Statuses that give a request's slots back: it was not the caller's to spend.
REFUND_STATUSES = frozenset({401, 403})

_Key = tuple[str, int, str]


@dataclass(slots=True)
class Ticket:
    """The slots one admitted request holds, so they can be refunded."""

    keys: list[_Key]
    at: float


class Throttle:
    """Exact sliding-window rate limiting per (operation, rule, user/thread).

    Args:
        rules: the rules of each operation (route name); operations not named are not throttled.
        issuer: verifies bearer tokens to learn their user (None: per-user rules key on nobody).
        clock: monotonic seconds (``time.monotonic``); tests may pass their own.
    """

    #: Verified tokens remembered (token -> user id, expiry), to verify each token once.
    TOKEN_CACHE_SIZE = 10_000
    #: Seconds between sweeps of idle keys.
    SWEEP_SECONDS = 30.0

    def __init__(
        self,
        rules: Mapping[str, tuple[Rule, ...]],
        issuer: TokenIssuer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = {op: tuple(rs) for op, rs in rules.items() if rs}
        self._issuer = issuer
        self._clock = clock
        self._logs: dict[_Key, deque[float]] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._explained: dict[tuple[str, int], float] = {}
        self._next_sweep = clock() + self.SWEEP_SECONDS
        self._longest = max((r.seconds for rs in self._rules.values() for r in rs), default=0.0)

    @classmethod
    def acs(cls, issuer: TokenIssuer | None = None, scale: float = 1.0) -> Throttle:
        """The ACS rates, each count multiplied by ``scale`` (at least 1).

        Args:
            issuer: verifies bearer tokens (see the class).
            scale: multiplies every count.
        """
        rules = {
            op: tuple(replace(r, count=max(1, int(r.count * scale))) for r in rs) for op, rs in ACS_RULES.items()
        }
        return cls(rules, issuer)

    def rules(self, operation: str) -> tuple[Rule, ...]:
        """The rules an operation is held to (empty when it is not throttled)."""
        return self._rules.get(operation, ())

    def user_of(self, authorization: str | None) -> str | None:
        """The user of a bearer token whose signature verifies, else None (cached per token)."""
        if not authorization or self._issuer is None:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        now = time.time()
        known = self._tokens.get(token)
        if known is not None and known[1] > now:
            return known[0]
        try:
            claims = self._issuer.verify(token, now)
        except InvalidToken:
            return None
        if len(self._tokens) >= self.TOKEN_CACHE_SIZE:
            self._tokens.clear()
        self._tokens[token] = (claims.user_id, float(claims.expires_at))
        return claims.user_id

    def admit(self, operation: str, request: Request) -> Ticket | None:
        """Admit a request or refuse it with 429 (see :meth:`take`).

        Args:
            operation: the route name.
            request: the request (its bearer token and ``thread_id`` path parameter are read).

        Returns:
            The ticket to refund, or None when the operation is not throttled
            (or its caller cannot be identified for a per-user rule).

        Raises:
            ChatServiceError: 429 ``TooManyRequests`` with ``retry_after`` in whole seconds.
        """
        rules = self._rules.get(operation)
        if not rules:
            return None
        thread = request.path_params.get("thread_id", "")
        user = None
        if any(r.scope in ("user", "user_thread") for r in rules):
            user = self.user_of(request.headers.get("authorization"))
            if user is None:
                return None  # the route answers 401; nothing to count
        return self.take(operation, user=user, thread=thread)

    def take(self, operation: str, *, user: str | None = None, thread: str = "") -> Ticket | None:
        """Take one slot of every rule of the operation, or none of them.

        Args:
            operation: the route name.
            user: the caller's user id (needed by per-user rules).
            thread: the thread id (needed by per-thread rules).

        Returns:
            The ticket, or None when the operation is not throttled.

        Raises:
            ChatServiceError: 429 when a rule's window is full; ``retry_after``
                is when its oldest request leaves the window, rounded up.
        """
        rules = self._rules.get(operation)
        if not rules:
            return None
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        keys: list[_Key] = []
        logs: list[deque[float]] = []
        wait = 0.0
        for index, rule in enumerate(rules):
            if rule.scope == "user":
                subject = user or ""
            elif rule.scope == "thread":
                subject = thread
            elif rule.scope == "user_thread":
                subject = f"{user or ''}\n{thread}"
            else:
                subject = ""
            key = (operation, index, subject)
            log = self._logs.get(key)
            if log is None:
                log = self._logs[key] = deque()
            horizon = now - rule.seconds
            while log and log[0] <= horizon:
                log.popleft()
            if len(log) >= rule.count:
                wait = max(wait, log[len(log) - rule.count] - horizon)
            keys.append(key)
            logs.append(log)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            self._explain(operation, rules, logs, retry, now)
            raise ChatServiceError(ErrorKind.THROTTLED, retry_after=retry)
        for log in logs:
            log.append(now)
        return Ticket(keys, now)

    def _explain(self, operation: str, rules: tuple[Rule, ...], logs: list[deque[float]], retry: int,
                 now: float) -> None:
        """Log which rule refused a request (at most once a second per rule), so a developer whose SDK
        silently waits on ``Retry-After`` can see why."""
        for index, (rule, window) in enumerate(zip(rules, logs, strict=True)):
            if len(window) < rule.count or now - self._explained.get((operation, index), -1.0) < 1.0:
                continue
            self._explained[(operation, index)] = now  # bounded: one entry per rule
            _log.warning("throttled %s: at most %d per %g s per %s (--throttle off, or a factor, "
                         "changes it); Retry-After %d s", operation, rule.count, rule.seconds,
                         rule.scope.replace("_", " in a "), retry,
                         extra={"operation": operation, "rule": f"{rule.count}/{rule.seconds:g}s/{rule.scope}"})

    def refund(self, ticket: Ticket) -> None:
        """Give back the slots of a request that turned out not to be the caller's to spend."""
        for key in ticket.keys:
            log = self._logs.get(key)
            if log is not None:
                with contextlib.suppress(ValueError):  # already out of the window
                    log.remove(ticket.at)

    def _sweep(self, now: float) -> None:
        """Forget keys whose every request has left the longest window."""
        horizon = now - self._longest
        for key in [k for k, log in self._logs.items() if not log or log[-1] <= horizon]:
            del self._logs[key]
        self._next_sweep = now + self.SWEEP_SECONDS

    @property
    def tracked_keys(self) -> int:
        """How many (rule, key) windows are held in memory."""
        return len(self._logs)


def make_throttle(limits: Limits, issuer: TokenIssuer, setting: str = "") -> Throttle | None:
    """The throttle a server should run with, or None when throttling is lifted.

    Lifted by the same switch as the size limits (``--no-limits`` /
    ``THREADLINE_NO_LIMITS=1``, which give :meth:`Limits.unlimited`), or alone
    by the setting ``off`` (``--throttle off`` / ``THREADLINE_THROTTLE=off``); a
    number scales the ACS rates (``2`` doubles them).

    Args:
        limits: the server's size limits.
        issuer: verifies bearer tokens for per-user keys.
        setting: ``on`` (or empty), ``off``, or a positive factor.

    Returns:
        The throttle, or None.

    Raises:
        ValueError: the setting is neither ``off``/``on`` nor a positive number.
    """
    if limits == Limits.unlimited():
        return None
    value = setting.strip().lower()
    if value in ("off", "0", "false", "no"):
        return None
    if value in ("", "on", "acs", "1", "true", "yes"):
        return Throttle.acs(issuer)
    try:
        scale = float(value)
    except ValueError:
        scale = math.nan
    if not scale > 0 or math.isinf(scale):
        raise ValueError(f"the throttle setting must be off, on or a positive factor, not {setting!r}")
    return Throttle.acs(issuer, scale)
