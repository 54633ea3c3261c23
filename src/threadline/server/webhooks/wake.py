"""Wake the deliverers of this node as soon as it commits an event (instead of at the next poll).

:class:`WakingHub` wraps the event hub: every ``publish`` of logged events
(position > 0) also sets the dispatcher's wake-up signal, and never-logged
events (typing, position 0) go to the dispatcher for a best-effort delivery. Events committed by
other nodes are found by polling (``THREADLINE_WEBHOOK_POLL_MS``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from threadline.server.events import Hub, Subscriber
from threadline.store.records import Event

__all__ = ["WakingHub"]


class WakingHub:
    """A :class:`~threadline.server.events.Hub` that calls ``wake`` after publishing logged events.

    Args:
        inner: the real hub.
        wake: called (without blocking) when logged events were published.
        ephemeral: called (without blocking) with never-logged events (typing).
    """

    def __init__(self, inner: Hub, wake: Callable[[], None],
                 ephemeral: Callable[[Sequence[Event]], None] | None = None) -> None:
        self._inner = inner
        self._wake = wake
        self._ephemeral = ephemeral

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def publish(self, events: Sequence[Event]) -> None:
        await self._inner.publish(events)
        if any(e.position > 0 for e in events):
            self._wake()
        elif self._ephemeral is not None and events:
            self._ephemeral(events)

    def subscribe(self, user_id: str, subscriber: Subscriber) -> Callable[[], None]:
        return self._inner.subscribe(user_id, subscriber)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
