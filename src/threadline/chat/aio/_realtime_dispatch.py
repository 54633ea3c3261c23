"""Real-time notifications for the async ``ChatClient``: handlers, sinks and dispatch.

:class:`EventDispatcher` keeps the handlers registered with ``on`` and the
sinks behind ``events()`` iterators, and hands each event to them in order.
:class:`~threadline.chat.aio._realtime_connection.RealtimeNotifications` (and
through it the sync twin) builds on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable
from typing import Any, Protocol

from .._realtime_events import ChatEvent, check_event_name

__all__ = ["EventDispatcher", "EventSink", "Handler"]

log = logging.getLogger("threadline.chat.realtime")

#: A handler: called with the event; may be a coroutine function.
Handler = Callable[[Any], Any]


class EventSink(Protocol):
    """Where :meth:`RealtimeNotifications.events`-style consumers receive events."""

    async def put(self, event: ChatEvent) -> None:
        """Take one event; may wait (back-pressure)."""

    def stop(self) -> None:
        """The notifications stopped: end the consumer's iteration."""


class _QueueSink:
    """An asyncio queue behind one :meth:`RealtimeNotifications.events` iterator."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[ChatEvent | None] = asyncio.Queue(maxsize)
        self.stopped = False

    async def put(self, event: ChatEvent) -> None:
        await self.queue.put(event)

    def stop(self) -> None:
        self.stopped = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class EventDispatcher:
    """The handlers and sinks of one event stream, and the delivery of each event to them."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._sinks: list[EventSink] = []

    def on(self, event: str, handler: Handler) -> None:
        """Call ``handler(event)`` for each event of that name.

        Args:
            event: an event name (``chatMessageReceived``, ``realTimeNotificationConnected``...).
            handler: a function or coroutine function taking the event.

        Raises:
            ValueError: unknown event name.
        """
        handlers = self._handlers.setdefault(check_event_name(event), [])
        if handler not in handlers:
            handlers.append(handler)

    def off(self, event: str, handler: Handler) -> None:
        """Stop calling a handler registered with :meth:`on` (no error if it was not).

        Raises:
            ValueError: unknown event name.
        """
        handlers = self._handlers.get(check_event_name(event), [])
        if handler in handlers:
            handlers.remove(handler)

    def add_sink(self, sink: EventSink) -> None:
        """Deliver every event to ``sink`` too (what :meth:`events` uses)."""
        self._sinks.append(sink)

    def remove_sink(self, sink: EventSink) -> None:
        """Stop delivering to ``sink``."""
        with contextlib.suppress(ValueError):
            self._sinks.remove(sink)

    async def _dispatch(self, event: ChatEvent) -> None:
        for handler in list(self._handlers.get(event.name, ())):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("a %s handler failed", event.name)
        for sink in list(self._sinks):
            await sink.put(event)
