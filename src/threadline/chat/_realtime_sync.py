"""Real-time notifications for the sync ``ChatClient``: the aio loop on a background thread.

:class:`SyncRealtimeNotifications` runs a
:class:`~threadline.chat.aio._realtime_connection.RealtimeNotifications` on an event loop
of its own, in a daemon thread started by :meth:`~SyncRealtimeNotifications.start`.
Handlers are plain functions, called from that thread one event at a time, in
order; a slow handler slows the stream (the server then closes it and the
client resumes without loss). :meth:`~SyncRealtimeNotifications.events` is a
blocking iterator fed from the same thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from ._realtime_events import ChatEvent
from .aio._realtime_connection import RealtimeNotifications
from .aio._realtime_dispatch import Handler

__all__ = ["SyncRealtimeMixin", "SyncRealtimeNotifications"]

T = TypeVar("T")
_POLL = 0.05


class _ThreadQueueSink:
    """A thread-safe queue behind one sync :meth:`SyncRealtimeNotifications.events` iterator."""

    def __init__(self, maxsize: int) -> None:
        self.queue: queue.Queue[ChatEvent | None] = queue.Queue(maxsize)
        self.stopped = threading.Event()

    async def put(self, event: ChatEvent) -> None:
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except queue.Full:
                await asyncio.sleep(_POLL)  # back-pressure, still cancellable by stop()

    def stop(self) -> None:
        self.stopped.set()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)


class SyncRealtimeNotifications:
    """The blocking face of :class:`RealtimeNotifications`.

    Args:
        endpoint: the chat endpoint.
        token: returns the current access token (called on the background thread).
        api_version: sent as ``api-version``.
        connection_verify: as azure-core's setting (CA bundle path, True or False).
    """

    def __init__(
        self, endpoint: str, token: Callable[[], str], *, api_version: str | None = None,
        connection_verify: Any = None,
    ) -> None:
        async def async_token() -> str:
            return await asyncio.to_thread(token)

        self._core = RealtimeNotifications(
            endpoint, async_token, api_version=api_version, connection_verify=connection_verify
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def core(self) -> RealtimeNotifications:
        """The async notifications running on the background loop."""
        return self._core

    def on(self, event: str, handler: Handler) -> None:
        """Call ``handler(event)`` from the background thread for each event of that name.

        Raises:
            ValueError: unknown event name.
        """
        self._core.on(event, handler)

    def off(self, event: str, handler: Handler) -> None:
        """Unregister a handler.

        Raises:
            ValueError: unknown event name.
        """
        self._core.off(event, handler)

    @property
    def running(self) -> bool:
        """Whether notifications are started."""
        return self._thread is not None and self._core.running

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self, *, resume_after: str | None = None, heartbeat: float | None = None) -> None:
        """Start the background thread and connect; return once the stream is live.

        Args:
            resume_after: a resume token (opaque) to continue after.
            heartbeat: the ``ping`` interval to ask for, in seconds.

        Raises:
            azure.core.exceptions.ClientAuthenticationError: the token is refused.
            ValueError: the server refused a parameter.
        """
        with self._lock:
            if self._thread is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()
                    loop.close()

                self._thread = threading.Thread(target=run, name="threadline-realtime", daemon=True)
                self._loop = loop
                self._thread.start()
                ready.wait()
        try:
            self._call(self._core.start(resume_after=resume_after, heartbeat=heartbeat))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Close the stream, end :meth:`events` iterators and stop the background thread."""
        with self._lock:
            thread, loop = self._thread, self._loop
            self._thread = self._loop = None
        if thread is None or loop is None:
            return
        if thread is threading.current_thread():
            raise RuntimeError("stop_realtime_notifications() cannot be called from an event handler")
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._core.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    def events(self, *, max_queue: int = 10_000) -> Iterator[ChatEvent]:
        """Iterate (blocking) over every event, starting notifications if needed.

        Args:
            max_queue: how many events may wait for this iterator.

        Yields:
            Every event, in order; the iteration ends when notifications stop.
        """
        sink = _ThreadQueueSink(max_queue)
        self._core.add_sink(sink)
        try:
            if not self.running:
                self.start()
            while True:
                try:
                    item = sink.queue.get(timeout=_POLL * 4)
                except queue.Empty:
                    if sink.stopped.is_set():
                        return
                    continue
                if item is None:
                    return
                yield item
        finally:
            self._core.remove_sink(sink)

    @property
    def position(self) -> str | None:
        """The position of the last event received."""
        return self._core.position


class SyncRealtimeMixin:
    """The real-time methods of ``threadline.chat.ChatClient`` (as the JS SDK's ``ChatClient``)."""

    _endpoint: str
    _credential: Any
    _settings: Any
    _realtime_sync: SyncRealtimeNotifications | None = None

    def _realtime(self) -> SyncRealtimeNotifications:
        notifications = self._realtime_sync
        if notifications is None:
            credential = self._credential
            notifications = SyncRealtimeNotifications(
                self._endpoint, lambda: str(credential.get_token().token),
                api_version=self._settings.api_version,
                connection_verify=self._settings.options.get("connection_verify"),
            )
            self._realtime_sync = notifications
        return notifications

    def start_realtime_notifications(
        self, *, resume_after: str | None = None, heartbeat: float | None = None
    ) -> None:
        """Open the real-time event stream on a background thread; return once it is live.

        Handlers run on that thread. Reconnects with exponential backoff and
        resumes after the last event received. See ``docs/realtime.md``.

        Args:
            resume_after: a resume token (opaque) to continue after (e.g. a saved :attr:`realtime_position`).
            heartbeat: the ``ping`` interval to ask the server for, in seconds.

        Raises:
            azure.core.exceptions.ClientAuthenticationError: the token is refused.
            ValueError: the server refused a parameter.
        """
        self._realtime().start(resume_after=resume_after, heartbeat=heartbeat)

    def stop_realtime_notifications(self) -> None:
        """Close the event stream and stop its thread; :meth:`events` iterators end.

        Raises:
            RuntimeError: called from an event handler (on the notifications' own thread).
        """
        if self._realtime_sync is not None:
            self._realtime_sync.stop()

    def on(self, event: str, handler: Handler) -> None:
        """Call ``handler(event)`` from the background thread for each event of that name.

        Args:
            event: an event name (see :data:`threadline.chat._realtime.CHAT_EVENT_NAMES`).
            handler: a function taking the event model.

        Raises:
            ValueError: unknown event name.
        """
        self._realtime().on(event, handler)

    def off(self, event: str, handler: Handler) -> None:
        """Unregister a handler added with :meth:`on`.

        Raises:
            ValueError: unknown event name.
        """
        self._realtime().off(event, handler)

    def events(self, *, max_queue: int = 10_000) -> Iterator[ChatEvent]:
        """``for event in client.events()``: every event (blocking), starting notifications if needed.

        Args:
            max_queue: how many events may wait for this iterator.

        Returns:
            An iterator that ends when notifications are stopped.
        """
        return self._realtime().events(max_queue=max_queue)

    @property
    def realtime_position(self) -> str | None:
        """The opaque resume token after the last event received (save it to resume after a restart)."""
        return self._realtime_sync.position if self._realtime_sync is not None else None
