"""Per-operation request throttling with the rates ACS documents.

ACS answers ``429 TooManyRequests`` with ``Retry-After`` when an operation is
called more often than its documented rate (``acs-events-and-limits.md``
§2.3, ``docs/limits.md``): for example at most 10 sends per thread in any
10 seconds and 30 in any minute. :class:`Throttle` enforces the same rates
with exact sliding windows: each (rule, key) keeps the times of the requests
it admitted inside its window, so no window ever admits more than the rule's
count, and a refused caller learns exactly when the oldest of those leaves it.

Keys are made of what ACS scopes each rule by: the user, the thread, the user
in the thread, or the whole resource. The limiter itself trusts its caller:
:class:`threadline.server.services.admission.Admission` charges a budget only
once the caller is authenticated and, for a thread's budgets, known to be a
member of that thread, so a request that fails authentication or authorization
creates no state here and spends nobody's budget (``docs/limits.md``).

Memory is bounded by ``max_keys`` windows whatever the traffic. Windows are
kept in order of their last admitted request; when a new window would pass the
bound, windows idle for longer than the longest rule are dropped first, then
the least recently used windows (the rule nginx's ``limit_req`` zones follow).
An evicted window forgets its requests: its key starts again with a full budget.

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
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from prometheus_client import Counter, Gauge

from threadline.identity.tokens import InvalidToken, TokenIssuer
from threadline.protocol.errors import ChatServiceError, ErrorKind

from .limits import Limits
from .metrics import REGISTRY

__all__ = ["ACS_RULES", "DEFAULT_MAX_KEYS", "REFUND_STATUSES", "Rule", "Throttle", "Ticket", "make_throttle"]

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
    # images (2024-06-05-preview; ACS documents no rates: those of the message operations)
    "upload_image": (_r("thread", 10, 10), _r("thread", 30, 60)),
    "get_image": (_r("user_thread", 50, 10), _r("thread", 250, 10)),
    "delete_image": (_r("thread", 10, 10), _r("thread", 30, 60)),
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

#: Windows a throttle holds at most unless told otherwise (``THREADLINE_THROTTLE_KEYS``).
DEFAULT_MAX_KEYS = 100_000
#: The smallest bound accepted: more windows than any operation has rules.
MIN_MAX_KEYS = 16

_Key = tuple[str, int, str]

_KEYS = Gauge(
    "threadline_throttle_keys", "Rate-limit windows (operation, rule, user/thread) held in memory.",
    registry=REGISTRY,
)
_EVICTIONS = Counter(
    "threadline_throttle_evictions_total",
    "Rate-limit windows dropped while still in use because the key bound (THREADLINE_THROTTLE_KEYS) was reached.",
    registry=REGISTRY,
)


@dataclass(slots=True)
class Ticket:
    """The slots one admitted request holds, so they can be refunded."""

    keys: list[_Key]
    at: float


class Throttle:
    """Exact sliding-window rate limiting per (operation, rule, user/thread), in bounded memory.

    Args:
        rules: the rules of each operation (route name); operations not named are not throttled.
        issuer: verifies bearer tokens for :meth:`user_of` (None: it knows nobody).
        clock: monotonic seconds (``time.monotonic``); tests may pass their own.
        max_keys: the most windows held (see the module); at least :data:`MIN_MAX_KEYS`.

    Raises:
        ValueError: ``max_keys`` is below :data:`MIN_MAX_KEYS`.
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
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if max_keys < MIN_MAX_KEYS:
            raise ValueError(f"the throttle key bound must be at least {MIN_MAX_KEYS}, not {max_keys}")
        self._rules = {op: tuple(rs) for op, rs in rules.items() if rs}
        self._issuer = issuer
        self._clock = clock
        self._max_keys = max_keys
        # Each window's admitted times, oldest first; windows ordered by their last admission.
        self._logs: OrderedDict[_Key, array[float]] = OrderedDict()
        self._tokens: dict[str, tuple[str, float]] = {}
        self._explained: dict[tuple[str, int], float] = {}
        self._next_sweep = clock() + self.SWEEP_SECONDS
        self._longest = max((r.seconds for rs in self._rules.values() for r in rs), default=0.0)
        self.evictions = 0
        _KEYS.set_function(lambda: len(self._logs))

    @classmethod
    def acs(cls, issuer: TokenIssuer | None = None, scale: float = 1.0, max_keys: int = DEFAULT_MAX_KEYS) -> Throttle:
        """The ACS rates, each count multiplied by ``scale`` (at least 1).

        Args:
            issuer: verifies bearer tokens (see the class).
            scale: multiplies every count.
            max_keys: the most windows held.

        Returns:
            The throttle.
        """
        rules = {
            op: tuple(replace(r, count=max(1, int(r.count * scale))) for r in rs) for op, rs in ACS_RULES.items()
        }
        return cls(rules, issuer, max_keys=max_keys)

    @property
    def max_keys(self) -> int:
        """The most windows this throttle holds."""
        return self._max_keys

    def rules(self, operation: str) -> tuple[Rule, ...]:
        """The rules an operation is held to (empty when it is not throttled)."""
        return self._rules.get(operation, ())

    def user_of(self, authorization: str | None) -> str | None:
        """The user of a bearer token whose signature verifies, else None (cached per token).

        Only a signature and expiry check, for embedders; the server charges budgets
        through :class:`~threadline.server.services.admission.Admission`, after the
        identity service has also checked revocation and membership.
        """
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

    def take(self, operation: str, *, user: str | None = None, thread: str = "") -> Ticket | None:
        """Take one slot of every rule of the operation, or none of them.

        The caller must already be entitled to the budgets named: a refused
        request creates no window, an admitted one creates at most one per rule.

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
        logs = self._logs
        keys: list[_Key] = []
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
            keys.append(key)
            log = logs.get(key)
            if log is None:
                continue
            horizon = now - rule.seconds
            if log and log[0] <= horizon:
                del log[:bisect_right(log, horizon)]
            if len(log) >= rule.count:
                wait = max(wait, log[len(log) - rule.count] - horizon)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            self._explain(operation, rules, [len(logs.get(key, ())) for key in keys], retry, now)
            raise ChatServiceError(ErrorKind.THROTTLED, retry_after=retry)
        for key in keys:
            log = logs.get(key)
            if log is None:
                self._make_room(now)
                log = logs[key] = array("d")
            else:
                logs.move_to_end(key)
            log.append(now)
        return Ticket(keys, now)

    def _explain(self, operation: str, rules: tuple[Rule, ...], counts: list[int], retry: int,
                 now: float) -> None:
        """Log which rule refused a request (at most once a second per rule), so a developer whose SDK
        silently waits on ``Retry-After`` can see why.

        Args:
            operation: the refused operation.
            rules: its rules.
            counts: how many requests each rule's window holds now.
            retry: the ``Retry-After`` seconds answered.
            now: the limiter's clock.
        """
        for index, (rule, count) in enumerate(zip(rules, counts, strict=True)):
            if count < rule.count or now - self._explained.get((operation, index), -1.0) < 1.0:
                continue
            self._explained[(operation, index)] = now  # bounded: one entry per rule
            _log.warning("throttled %s: at most %d per %g s per %s (--throttle off, or a factor, "
                         "changes it); Retry-After %d s", operation, rule.count, rule.seconds,
                         rule.scope.replace("_", " in a "), retry,
                         extra={"operation": operation, "rule": f"{rule.count}/{rule.seconds:g}s/{rule.scope}"})

    def refund(self, ticket: Ticket) -> None:
        """Give back the slots of a request that turned out not to be the caller's to spend.

        A window left empty is dropped, so a refunded request leaves no state behind.
        """
        for key in ticket.keys:
            log = self._logs.get(key)
            if log is not None:
                with contextlib.suppress(ValueError):  # already out of the window
                    log.remove(ticket.at)
                if not log:
                    del self._logs[key]

    def _make_room(self, now: float) -> None:
        """Keep the window count under the bound before one more is added."""
        if len(self._logs) < self._max_keys:
            return
        self._sweep(now)
        while len(self._logs) >= self._max_keys:
            self._logs.popitem(last=False)  # the least recently used window
            self.evictions += 1
            _EVICTIONS.inc()

    def _sweep(self, now: float) -> None:
        """Forget windows whose every request has left the longest window (oldest first)."""
        horizon = now - self._longest
        logs = self._logs
        stale = []
        for key, log in logs.items():
            if log and log[-1] > horizon:
                break  # windows are ordered by last admission: the rest are newer
            stale.append(key)
        for key in stale:
            del logs[key]
        self._next_sweep = now + self.SWEEP_SECONDS

    @property
    def tracked_keys(self) -> int:
        """How many (rule, key) windows are held in memory."""
        return len(self._logs)


def make_throttle(
    limits: Limits, issuer: TokenIssuer, setting: str = "", max_keys: int = DEFAULT_MAX_KEYS
) -> Throttle | None:
    """The throttle a server should run with, or None when throttling is lifted.

    Lifted by the same switch as the size limits (``--no-limits`` /
    ``THREADLINE_NO_LIMITS=1``, which give :meth:`Limits.unlimited`), or alone
    by the setting ``off`` (``--throttle off`` / ``THREADLINE_THROTTLE=off``); a
    number scales the ACS rates (``2`` doubles them).

    Args:
        limits: the server's size limits.
        issuer: verifies bearer tokens for per-user keys.
        setting: ``on`` (or empty), ``off``, or a positive factor.
        max_keys: the most rate windows held (``THREADLINE_THROTTLE_KEYS``).

    Returns:
        The throttle, or None.

    Raises:
        ValueError: the setting is neither ``off``/``on`` nor a positive number, or
            ``max_keys`` is too small.
    """
    if limits == Limits.unlimited():
        return None
    value = setting.strip().lower()
    if value in ("off", "0", "false", "no"):
        return None
    if value in ("", "on", "acs", "1", "true", "yes"):
        return Throttle.acs(issuer, max_keys=max_keys)
    try:
        scale = float(value)
    except ValueError:
        scale = math.nan
    if not scale > 0 or math.isinf(scale):
        raise ValueError(f"the throttle setting must be off, on or a positive factor, not {setting!r}")
    return Throttle.acs(issuer, scale, max_keys)
