"""The event hub: delivers committed events to the subscribers of each user.

Services call :meth:`Hub.publish` after the store has committed. The local hub
fans out inside this process; the Redis hub (scale-out) implements the same
interface, so routes and services never change with the deployment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol

from threadline.server import metrics
from threadline.store.records import Event

__all__ = ["Hub", "LocalHub", "Subscriber"]

#: Called with each event meant for the subscriber's user; must not block.
Subscriber = Callable[[Event], None]


class Hub(Protocol):
    """Where committed events go."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, events: Sequence[Event]) -> None:
        """Deliver events to the subscribers of their recipients."""

    def subscribe(self, user_id: str, subscriber: Subscriber) -> Callable[[], None]:
        """Register a subscriber for a user; returns the function that unregisters it."""


class LocalHub:
    """Fan-out inside one process."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)

    async def start(self) -> None:
        metrics.hub_connected(True)  # nothing to reach: this process is the whole deployment

    async def stop(self) -> None:
        self._subscribers.clear()

    async def publish(self, events: Sequence[Event]) -> None:
        self.deliver(events)

    def deliver(self, events: Sequence[Event]) -> None:
        """Hand events to local subscribers (also used by hubs that receive from elsewhere)."""
        subscribers = self._subscribers
        if not subscribers:
            return
        for event in events:
            for user_id in event.recipients:
                for subscriber in tuple(subscribers.get(user_id, ())):
                    subscriber(event)

    def subscribe(self, user_id: str, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers[user_id].add(subscriber)

        def unsubscribe() -> None:
            group = self._subscribers.get(user_id)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self._subscribers[user_id]

        return unsubscribe

    @property
    def subscriber_count(self) -> int:
        """How many subscribers are registered."""
        return sum(len(group) for group in self._subscribers.values())
