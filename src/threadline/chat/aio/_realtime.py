"""Real-time notifications for the async ``ChatClient``: its JS-SDK-style methods.

:class:`AsyncRealtimeMixin` puts ``start_realtime_notifications``, ``on``,
``off``, ``events`` and ``stop_realtime_notifications`` on
``threadline.chat.aio.ChatClient``. The work is done by
:class:`~threadline.chat.aio._realtime_connection.RealtimeNotifications` (the
connection and resume loop) on :mod:`threadline.chat.aio._realtime_dispatch`
(handlers and ``events()`` sinks); the protocol logic, event models and frame
parsing are shared with the sync client (:mod:`threadline.chat._realtime`).
Every name of those modules used before the split stays importable from here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .._realtime import ChatEvent
from ._realtime_connection import RealtimeNotifications, ssl_option
from ._realtime_dispatch import EventSink, Handler

__all__ = ["AsyncRealtimeMixin", "EventSink", "RealtimeNotifications", "ssl_option"]


class AsyncRealtimeMixin:
    """The real-time methods of ``threadline.chat.aio.ChatClient`` (as the JS SDK's ``ChatClient``)."""

    _endpoint: str
    _credential: Any
    _settings: Any
    _realtime_core: RealtimeNotifications | None = None

    def _realtime(self) -> RealtimeNotifications:
        core = self._realtime_core
        if core is None:
            credential = self._credential

            async def token() -> str:
                access = await credential.get_token()
                return str(access.token)

            core = RealtimeNotifications(
                self._endpoint, token, api_version=self._settings.api_version,
                connection_verify=self._settings.options.get("connection_verify"),
            )
            self._realtime_core = core
        return core

    async def start_realtime_notifications(
        self, *, resume_after: str | None = None, heartbeat: float | None = None
    ) -> None:
        """Open the real-time event stream; return once it is live.

        Reconnects with exponential backoff and resumes after the last event
        received, so no event is missed or repeated. See ``docs/realtime.md``.

        Args:
            resume_after: a resume token (opaque) to continue after (e.g. :attr:`realtime_position` saved
                earlier); by default the last one received, or "from now".
            heartbeat: the ``ping`` interval to ask the server for, in seconds.

        Raises:
            azure.core.exceptions.ClientAuthenticationError: the token is refused.
            ValueError: the server refused a parameter.
        """
        await self._realtime().start(resume_after=resume_after, heartbeat=heartbeat)

    async def stop_realtime_notifications(self) -> None:
        """Close the event stream; :meth:`events` iterators end."""
        if self._realtime_core is not None:
            await self._realtime_core.stop()

    def on(self, event: str, handler: Handler) -> None:
        """Call ``handler(event)`` (a function or coroutine function) for each event of that name.

        Args:
            event: ``chatMessageReceived``, ``chatMessageEdited``, ``chatMessageDeleted``,
                ``typingIndicatorReceived``, ``readReceiptReceived``, ``chatThreadCreated``,
                ``chatThreadDeleted``, ``chatThreadPropertiesUpdated``, ``participantsAdded``,
                ``participantsRemoved``, ``realTimeNotificationConnected``,
                ``realTimeNotificationDisconnected`` or ``resumeGap``.
            handler: called with the event model.

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

    def events(self, *, max_queue: int = 10_000) -> AsyncIterator[ChatEvent]:
        """``async for event in client.events()``: every event, starting notifications if needed.

        Args:
            max_queue: how many events may wait for this iterator before the stream slows down.

        Returns:
            An async iterator that ends when notifications are stopped.
        """
        return self._realtime().events(max_queue=max_queue)

    @property
    def realtime_position(self) -> str | None:
        """The opaque resume token after the last event received (save it to resume after a restart)."""
        return self._realtime_core.position if self._realtime_core is not None else None
