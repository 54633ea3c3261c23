"""Thread retention policies (2025-03-15): validation, expiry, and the pruner that enforces them.

A policy is ``{"kind": "threadCreationDate", "deleteThreadAfterDays": n}`` with n in
[30, 90] (the documented ACS range) or ``{"kind": "none"}``. A thread with a
``threadCreationDate`` policy expires ``n`` days after it was created; the pruner
deletes it then, exactly as a user's delete would (``deletedOn`` set, every
operation 404, a ``chatThreadDeleted`` event to every member). Each deletion is
conditional inside its own transaction (still live, still expired), so when
several nodes prune at once a thread is deleted, and announced, exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from threadline.protocol.inputs import invalid
from threadline.protocol.times import now_ms
from threadline.server.events import Hub
from threadline.store.base import Effects, Store, StoreError
from threadline.store.records import ThreadRecord

from . import payloads
from .access import Access

__all__ = [
    "DAY_MS",
    "MAX_DAYS",
    "MIN_DAYS",
    "RETENTION_DELETER",
    "RetentionPruner",
    "expiry_ms",
    "validate_retention",
]

log = logging.getLogger("threadline.retention")

MIN_DAYS = 30
MAX_DAYS = 90
DAY_MS = 24 * 3600 * 1000
#: The raw id named as ``deletedBy`` when the retention policy deletes a thread.
RETENTION_DELETER = "threadline:retentionPolicy"
_TARGET = "retentionPolicy"


def validate_retention(policy: Any) -> dict[str, Any] | None:
    """Check a ``retentionPolicy`` from a request and return its canonical form.

    Args:
        policy: the decoded JSON value (None when absent or null).

    Returns:
        The policy as stored and returned, or None for no policy.

    Raises:
        ChatServiceError: 400 ``BadRequest`` naming the offending field.
    """
    if policy is None:
        return None
    if not isinstance(policy, dict):
        raise invalid("retentionPolicy must be an object.", _TARGET)
    kind = policy.get("kind")
    extra = set(policy) - {"kind", "deleteThreadAfterDays"}
    if extra:
        raise invalid(f"retentionPolicy has unknown field {sorted(extra)[0]!r}.", f"{_TARGET}.{sorted(extra)[0]}")
    if kind == "none":
        if "deleteThreadAfterDays" in policy:
            raise invalid("deleteThreadAfterDays is only allowed with kind threadCreationDate.",
                          f"{_TARGET}.deleteThreadAfterDays")
        return {"kind": "none"}
    if kind != "threadCreationDate":
        raise invalid("retentionPolicy.kind must be threadCreationDate or none.", f"{_TARGET}.kind")
    days = policy.get("deleteThreadAfterDays")
    if not isinstance(days, int) or isinstance(days, bool) or not MIN_DAYS <= days <= MAX_DAYS:
        raise invalid(
            f"deleteThreadAfterDays must be an integer from {MIN_DAYS} to {MAX_DAYS}.",
            f"{_TARGET}.deleteThreadAfterDays",
        )
    return {"kind": "threadCreationDate", "deleteThreadAfterDays": days}


def expiry_ms(policy: dict[str, Any] | None, created_ms: int) -> int | None:
    """When a thread created at ``created_ms`` expires under ``policy`` (None: never)."""
    if policy is None or policy.get("kind") != "threadCreationDate":
        return None
    return created_ms + int(policy["deleteThreadAfterDays"]) * DAY_MS


def _deleted(at: int) -> Callable[[ThreadRecord], list[tuple[str, bytes]]]:
    """The events of a deletion by the retention policy: a user's ``chatThreadDeleted``."""
    return lambda thread: payloads.thread_deleted(thread.id, RETENTION_DELETER, at)


class RetentionPruner:
    """Deletes the threads whose retention has passed, as a user's delete would.

    Args:
        store: the database.
        hub: where the deletions' events go (every node's real-time clients).
        clock: epoch milliseconds "now" (injectable so tests need not wait days).
        batch: threads read per batch (a round runs batches until none is due).
        on_deleted: told how many threads each round deleted (metrics).
        access: the access cache to tell of each deletion (None: the store is read every time).
    """

    def __init__(
        self, store: Store, hub: Hub, *, clock: Callable[[], int] = now_ms, batch: int = 100,
        on_deleted: Callable[[int], None] | None = None, access: Access | None = None,
    ) -> None:
        self._access = access or Access(store)
        self._store = store
        self._hub = hub
        self._clock = clock
        self._batch = batch
        self._on_deleted = on_deleted

    async def run_once(self) -> list[str]:
        """Delete every thread due now (in batches); return the ids this node deleted.

        Raises:
            StoreError: the database failed (the next round retries).
        """
        deleted: list[str] = []
        for _ in range(1000):  # bounded: 1000 batches a round at most
            now = self._clock()
            due = await self._store.due_threads(now, self._batch)
            for thread_id in due:
                effects: Effects[ThreadRecord] = Effects(events=_deleted(now))
                try:
                    outcome = await self._store.delete_thread(thread_id, now, effects, expired_by=now)
                finally:  # before its event goes out: no node serves the thread after
                    await self._access.changed(threads=[thread_id])
                if outcome.value is not None:
                    deleted.append(thread_id)
                    await self._hub.publish(outcome.events)
            if len(due) < self._batch:
                break
        if deleted:
            log.info("retention policy deleted %d thread(s)", len(deleted))
            if self._on_deleted is not None:
                self._on_deleted(len(deleted))
        return deleted

    async def run_forever(self, interval_seconds: float) -> None:
        """Run a round every ``interval_seconds`` until cancelled; failures are logged and retried."""
        while True:
            try:
                await self.run_once()
            except StoreError as exc:  # pragma: no cover - logged, retried next round
                log.warning("retention pruning failed: %s", exc)
            await asyncio.sleep(interval_seconds)
