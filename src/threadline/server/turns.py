"""One send per turn of the event loop for things many requests publish at once.

Every request that commits publishes its events to Redis (``redis_hub.py``): one
``PUBLISH`` each, a round trip through a pure-Python client, costs the node more CPU
than the rest of the publication. :class:`TurnBatcher` gathers what the requests of
one turn of the loop hand it and sends it as one message at the end of the turn
(``call_soon``); each request still waits for that send, so a publication is never
left behind a request that has been answered, and a cancelled request does not
cancel the send the others wait for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["TurnBatcher"]

T = TypeVar("T")


class TurnBatcher(Generic[T]):
    """Gathers the items handed over during one turn of the loop and sends them together.

    Args:
        send: sends one turn's items, in the order they were handed over; must not raise
            (its own failures are its to count and log).
    """

    def __init__(self, send: Callable[[list[T]], Awaitable[None]]) -> None:
        self._send = send
        self._items: list[T] = []
        self._done: asyncio.Future[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        #: Sends made and items they carried (their ratio is the mean batch).
        self.sends = 0
        self.items = 0

    async def add(self, items: list[T]) -> None:
        """Hand items over for this turn's send; return once it is done."""
        if self._done is None:
            loop = asyncio.get_running_loop()
            self._done = loop.create_future()
            loop.call_soon(self._end_turn)
        self._items.extend(items)
        await asyncio.shield(self._done)

    def _end_turn(self) -> None:
        items, done = self._items, self._done
        self._items, self._done = [], None
        assert done is not None
        task = asyncio.ensure_future(self._run(items, done))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _run(self, items: list[T], done: asyncio.Future[None]) -> None:
        try:
            self.sends += 1
            self.items += len(items)
            await self._send(items)
        finally:
            if not done.done():
                done.set_result(None)
