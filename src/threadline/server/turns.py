"""One send at a time, of everything many requests published meanwhile.

Every request that commits publishes its events to Redis (``redis_hub.py``): one
``PUBLISH`` each, a round trip through a pure-Python client, costs the node more CPU
than the rest of the publication. :class:`TurnBatcher` gathers what the requests of
one turn of the loop hand it and sends it as one message at the end of the turn
(``call_soon``). One send is in flight at a time (the hub publishes on one connection):
what is handed over while a send is out waits for it, however many turns that takes, and
goes out in the next send, as one message.

A request does not wait for the send that carries its items: it is answered once they
are handed over. Waiting would not make delivery surer. The events are committed before
they are handed over, and a node that dies after its commit and before its send leaves
the same gap whether or not the request was answered (the other nodes read the events
from the database once a later position shows the gap, ``redis_hub.py``). It only made
each send's round trip to Redis part of the request's, and on a busy node the answer
waited a turn of the loop longer. Only when ``backlog`` items are already waiting for
the next send does a request wait for the send that carries its own: that bounds what a
slow Redis can make the node hold. :meth:`TurnBatcher.drain` waits for everything handed
over (a node's shutdown sends what it answered for before closing the connection).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["TurnBatcher"]

T = TypeVar("T")


class TurnBatcher(Generic[T]):
    """Gathers the items handed over while no send is out and sends them together, one send at a time.

    Args:
        send: sends items, in the order they were handed over, given the event loop's time when the
            first of them was handed over (to keep a deadline from there); must not raise (its own
            failures are its to count and log).
        backlog: how many items may wait for the next send before :meth:`add` waits for it.
    """

    def __init__(self, send: Callable[[list[T], float], Awaitable[None]], *, backlog: int = 10_000) -> None:
        self._send = send
        self._backlog = backlog
        self._items: list[T] = []
        self._since = 0.0
        self._done: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        #: Sends made and items they carried (their ratio is the mean batch).
        self.sends = 0
        self.items = 0

    async def add(self, items: list[T]) -> None:
        """Hand items over for the next send.

        Returns at once, unless more than ``backlog`` items now wait for that send: then
        once it is done.
        """
        if self._done is None:
            loop = asyncio.get_running_loop()
            self._done = loop.create_future()
            self._since = loop.time()
            if self._sender is None:
                loop.call_soon(self._end_turn)
        self._items.extend(items)
        if len(self._items) > self._backlog:
            await asyncio.shield(self._done)

    async def drain(self) -> None:
        """Wait until everything handed over so far has been sent (or its send has failed)."""
        while True:
            if self._done is not None:
                await asyncio.shield(self._done)
            elif self._sender is not None:
                await asyncio.wait({self._sender})  # never cancels the send
            else:
                return

    def _end_turn(self) -> None:
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        """Send what has gathered, then what gathered during that send, until nothing has."""
        try:
            while (done := self._done) is not None:
                items, since = self._items, self._since
                self._items, self._done = [], None
                try:
                    self.sends += 1
                    self.items += len(items)
                    await self._send(items, since)
                finally:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._sender = None
            if self._done is not None:  # the loop ended early (cancelled): don't strand the waiters
                asyncio.get_running_loop().call_soon(self._end_turn)
