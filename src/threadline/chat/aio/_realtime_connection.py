"""Real-time notifications for the async ``ChatClient``: the WebSocket loop on aiohttp.

:class:`RealtimeNotifications` keeps one WebSocket to ``/chat/realtime`` open,
resumes after the last position it received whenever the connection breaks
(with exponential backoff), and hands every event to the handlers registered
with :meth:`~RealtimeNotifications.on` and to every :meth:`events` iterator
(:mod:`threadline.chat.aio._realtime_dispatch`). The protocol logic lives in
:mod:`threadline.chat._realtime`; this module only does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from azure.core.exceptions import ClientAuthenticationError

from .._realtime import (
    CLOSE_BAD_REQUEST,
    CLOSE_NORMAL,
    Backoff,
    ChatEvent,
    CloseDecision,
    RealTimeNotificationDisconnectedEvent,
    RealtimeSession,
)
from ._realtime_dispatch import EventDispatcher, _QueueSink, log

__all__ = ["RealtimeNotifications", "ssl_option"]


def ssl_option(connection_verify: Any) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl`` argument for an azure-core ``connection_verify`` setting.

    Args:
        connection_verify: a CA bundle path, True/None (system trust) or False (no verification).

    Returns:
        An SSL context trusting the bundle, False (no verification) or True (the default).
    """
    if isinstance(connection_verify, str) and connection_verify:
        return ssl.create_default_context(cafile=connection_verify)
    return connection_verify is not False


class RealtimeNotifications(EventDispatcher):
    """One user's real-time event stream, reconnecting and resuming on its own.

    Args:
        endpoint: the chat endpoint (``https://...``, or ``http://`` to a loopback host).
        token: returns the current access token (the credential refreshes it).
        api_version: sent as ``api-version``.
        connection_verify: as azure-core's setting (CA bundle path, True or False).
        backoff: reconnect delays (0.5 s doubling up to 30 s by default).
    """

    def __init__(
        self,
        endpoint: str,
        token: Callable[[], Awaitable[str]],
        *,
        api_version: str | None = None,
        connection_verify: Any = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._token = token
        self._api_version = api_version
        self._ssl = ssl_option(connection_verify)
        self._backoff = backoff
        super().__init__()
        self._session: RealtimeSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._first: asyncio.Future[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        """Whether notifications are started (connected or reconnecting)."""
        return self._task is not None and not self._task.done()

    @property
    def position(self) -> str | None:
        """The position of the last event received; a restart resumes after it."""
        return self._session.position if self._session is not None else None

    # -- start and stop ----------------------------------------------------------------------------

    async def start(self, *, resume_after: str | None = None, heartbeat: float | None = None) -> None:
        """Connect, and return once the stream is live (or the first attempt failed and retries go on).

        Args:
            resume_after: a resume token (opaque) to continue after (by default the last one
                received by this object, or "from now" the first time).
            heartbeat: the ``ping`` interval to ask the server for, in seconds.

        Raises:
            azure.core.exceptions.ClientAuthenticationError: the token was refused and
                the credential has no other.
            ValueError: the server refused the request (bad parameter).
        """
        if self.running:
            return
        self._stopping = False
        after = resume_after if resume_after is not None else self.position
        self._session = RealtimeSession(after, self._backoff or Backoff(), heartbeat)
        loop = asyncio.get_running_loop()
        self._first = loop.create_future()
        self._wakeup = asyncio.Event()
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._run(self._session))
        await asyncio.shield(self._first)

    async def stop(self) -> None:
        """Close the connection, stop reconnecting and end every :meth:`events` iterator."""
        task = self._task
        if task is None:
            return
        was_running = not task.done()  # a loop that gave up has reported its disconnection already
        self._stopping = True
        self._settle_first()
        if self._wakeup is not None:
            self._wakeup.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=CLOSE_NORMAL, message=b"stopped"), 2.0)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if was_running:
            with contextlib.suppress(Exception):
                await self._dispatch(RealTimeNotificationDisconnectedEvent(code=CLOSE_NORMAL, reason="stopped"))
        for sink in list(self._sinks):
            sink.stop()

    # -- events() ----------------------------------------------------------------------------------

    async def events(self, *, max_queue: int = 10_000) -> AsyncIterator[ChatEvent]:
        """Iterate over every event, starting notifications if needed; ends when they stop.

        A consumer that falls ``max_queue`` events behind slows the stream
        down; if the server then finds the client too slow, the connection is
        closed and resumed without losing events.

        Args:
            max_queue: how many events may wait for this consumer.

        Yields:
            Every event, connection events included, in order.
        """
        sink = _QueueSink(max_queue)
        self.add_sink(sink)
        try:
            if not self.running:
                await self.start()
            while True:
                if sink.stopped and sink.queue.empty():
                    return
                item = await sink.queue.get()
                if item is None:
                    return
                yield item
        finally:
            self.remove_sink(sink)

    # -- the loop ----------------------------------------------------------------------------------

    def _settle_first(self, error: BaseException | None = None) -> None:
        first = self._first
        if first is not None and not first.done():
            if error is None:
                first.set_result(None)
            else:
                first.set_exception(error)

    async def _run(self, session: RealtimeSession) -> None:
        try:
            await self._loop(session)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # pragma: no cover - a bug: report it to start() and stop quietly
            log.exception("real-time notifications failed")
            self._settle_first(exc)

    async def _loop(self, session: RealtimeSession) -> None:
        while not self._stopping:
            token = await self._token()
            code, reason = await self._connect_once(session, token)
            if self._stopping:
                return
            decision = session.on_close(code)
            if decision.reconnect and decision.needs_new_token and await self._token() == token:
                decision = CloseDecision(False, 0.0)
            await self._dispatch(RealTimeNotificationDisconnectedEvent(
                code=code or 1006, reason=reason, will_reconnect=decision.reconnect, retry_in=decision.delay,
            ))
            if not decision.reconnect:
                if code == CLOSE_BAD_REQUEST:
                    self._settle_first(ValueError(f"The server refused the real-time request: {reason}"))
                else:
                    self._settle_first(ClientAuthenticationError(
                        message=f"The real-time connection was refused ({code}): {reason}"
                    ))
                for sink in list(self._sinks):
                    sink.stop()
                return
            self._settle_first()
            assert self._wakeup is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), decision.delay)

    async def _connect_once(self, session: RealtimeSession, token: str) -> tuple[int | None, str]:
        """Run one connection to its end; return its close code (None if it broke) and reason."""
        assert self._http is not None
        url = session.url(self._endpoint, self._api_version)
        try:
            ws = await self._http.ws_connect(
                url, headers={"Authorization": f"Bearer {token}"}, ssl=self._ssl, autoping=True,
                heartbeat=None, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return None, f"could not connect: {exc}"
        self._ws = ws
        try:
            while True:
                try:
                    message = await ws.receive(timeout=session.read_timeout)
                except TimeoutError:
                    return None, "the server sent nothing for too long"
                if message.type == aiohttp.WSMsgType.TEXT:
                    result = session.on_frame(message.data)
                    if result.reply is not None:
                        await ws.send_str(result.reply)
                    for event in result.events:
                        await self._dispatch(event)
                    if result.synced:
                        self._settle_first()
                elif message.type == aiohttp.WSMsgType.CLOSE:
                    return int(message.data), str(message.extra or "")
                elif message.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    return ws.close_code, ""
                elif message.type == aiohttp.WSMsgType.ERROR:
                    return None, str(ws.exception() or "connection error")
        except ValueError as exc:
            log.warning("bad frame from the server: %s", exc)
            return None, str(exc)
        finally:
            self._ws = None
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2.0)
