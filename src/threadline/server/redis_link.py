"""The Redis hub's two connections: one that publishes, one that listens.

``redis_hub.py`` sends a message per turn of the loop and receives every other node's.
Through :class:`redis.asyncio.Redis` and its :class:`~redis.asyncio.client.PubSub`, each
PUBLISH goes through a pool acquire and release, the retry wrapper, event dispatchers and
a logger lookup, and each received message through ``get_message``'s health check and
timeout context: a tenth or more of a busy node's CPU. Here each side has one dedicated
:class:`redis.asyncio.Connection` instead, made by the pool redis-py builds from the URL
(so its URL parsing, TLS with the URL's ssl options, authentication and RESP parsing are
all redis-py's), and speaks to it with ``send_command`` and ``read_response`` only.

Both connections speak RESP2 (``protocol=2``, whatever the URL says). Under RESP3, the
default of redis-py 8, a pub/sub message is a *push* frame: the parser hands it to a push
handler and goes on reading, so a plain ``read_response`` after SUBSCRIBE never returns
it; using RESP3 would mean installing a handler on the parser (not a public API) and
receiving messages through a callback inside it. Under RESP2 a message is an ordinary
reply, the array ``[b"message", channel, data]``, read by the public ``read_response``;
PUBLISH's reply is an integer under both, and RESP2 also skips the HELLO handshake and the
maintenance notifications (RESP3 only) that the hub does not use.

The listening side's liveness: when nothing has arrived for ``idle_seconds`` it sends PING
on the subscribed connection (its reply is the array ``[b"pong", b""]``); when nothing at
all arrives within ``idle_seconds / 2`` after that, the link is taken for lost and
:meth:`Subscription.receive` raises. A single timer per idle period does this, not a
timeout per message. The publishing side gives each message a deadline; on any failure it
drops its connection, and the next message goes out on a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Any, NoReturn

from redis.asyncio.connection import AbstractConnection, ConnectionPool, parse_url
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["Publisher", "Subscription", "connection_for"]


def connection_for(url: str, connect_timeout: float) -> AbstractConnection:
    """A new, not yet connected, RESP2 connection to the Redis of ``url``.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL (redis-py's syntax and options).
        connect_timeout: seconds a connection attempt may take.

    Returns:
        The connection; it connects on its first command (and again after a disconnect).
    """
    # What ConnectionPool.from_url does, except that these options win over the URL's (RESP2 above all:
    # the pool sets RESP3-only maintenance notifications up at its creation otherwise).
    options: dict[str, Any] = {"socket_connect_timeout": connect_timeout, "socket_timeout": None}
    options.update(parse_url(url))
    options.update(protocol=2, decode_responses=False, health_check_interval=0)
    pool = ConnectionPool(**options)
    connection: AbstractConnection = pool.make_connection()  # type: ignore[no-untyped-call]
    return connection


class Publisher:
    """PUBLISHes on one dedicated connection, one message at a time (the caller serializes).

    Args:
        url: the Redis URL (see :func:`connection_for`).
        channel: the channel to publish on.
        connect_timeout: seconds a connection attempt may take.
    """

    def __init__(self, url: str, channel: str, *, connect_timeout: float) -> None:
        self._conn = connection_for(url, connect_timeout)
        self._channel = channel
        self._stale = False

    def reconnect_later(self) -> None:
        """The link may be dead though no publish failed yet: the next publish opens a new connection first.

        (Without it, the first publish after Redis restarted would go out on the dead connection and fail.)
        """
        self._stale = True

    async def publish(self, message: bytes, deadline: float) -> int:
        """Send one message; connect first if not connected.

        Args:
            message: the message.
            deadline: the event loop's time by which the reply must have come.

        Returns:
            How many subscribers Redis delivered it to.

        Raises:
            RedisError: a Redis or connection error.
            OSError: a socket error, or ``TimeoutError`` when the deadline passed.
        """
        conn = self._conn
        try:
            async with asyncio.timeout_at(deadline):
                if self._stale:
                    self._stale = False
                    await conn.disconnect(nowait=True)
                await conn.send_command("PUBLISH", self._channel, message, check_health=False)
                reply = await conn.read_response()
        except BaseException:
            # Whatever was half sent or half read is lost with the connection; the next call reconnects.
            with contextlib.suppress(RedisError, OSError):
                await conn.disconnect(nowait=True)
            raise
        return int(reply)

    async def close(self) -> None:
        """Close the connection (the next :meth:`publish` would open it again)."""
        with contextlib.suppress(RedisError, OSError):
            await self._conn.disconnect()


class Subscription:
    """A dedicated connection subscribed to one channel.

    Args:
        url: the Redis URL (see :func:`connection_for`).
        channel: the channel to listen to.
        connect_timeout: seconds connecting and subscribing may take.
        idle_seconds: after this long without anything received, PING; no reply within half of it
            more and the link is lost.
    """

    def __init__(self, url: str, channel: str, *, connect_timeout: float, idle_seconds: float = 10.0) -> None:
        self._conn = connection_for(url, connect_timeout)
        self._channel = channel
        self._connect_timeout = connect_timeout
        self._idle = idle_seconds
        self._arrived = False
        self._pinged = False
        self._timer: asyncio.TimerHandle | None = None
        self._ping: asyncio.Task[None] | None = None
        self._deadline: asyncio.Timeout | None = None

    async def open(self) -> None:
        """Connect and subscribe.

        Raises:
            RedisError: a Redis or connection error, or no confirmation in time.
            OSError: a socket error.
        """
        conn = self._conn
        try:
            async with asyncio.timeout(self._connect_timeout + 1.0):
                await conn.send_command("SUBSCRIBE", self._channel, check_health=False)  # connects first
                reply = await conn.read_response(timeout=math.inf)
        except TimeoutError:
            await self.close()
            raise RedisTimeoutError("no reply to SUBSCRIBE in time") from None
        except BaseException:
            await self.close()
            raise
        if not (isinstance(reply, list) and reply[:1] == [b"subscribe"]):
            await self.close()
            raise RedisError(f"unexpected reply to SUBSCRIBE: {reply!r:.200}")

    async def receive(self, handle: Callable[[bytes], Any]) -> NoReturn:
        """Hand every message's data to ``handle``, until the link fails.

        Args:
            handle: called with each message's data, in arrival order; what it raises ends the reading.

        Raises:
            RedisError: a Redis or connection error, or the link went silent (no reply to PING).
            OSError: a socket error.
        """
        conn = self._conn
        loop = asyncio.get_running_loop()
        self._arrived, self._pinged = True, False
        self._timer = loop.call_later(self._idle, self._tick)
        try:
            async with asyncio.timeout(None) as self._deadline:
                while True:
                    reply = await conn.read_response(timeout=math.inf)
                    self._arrived = True
                    if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
                        handle(reply[2])
        except TimeoutError:
            raise RedisTimeoutError(f"no reply to PING within {self._idle / 2:g} s") from None
        finally:
            self._deadline = None
            self._stop_timer()

    def _tick(self) -> None:
        """The idle timer: PING once a period passed in silence; give up if the PING met silence too."""
        loop = asyncio.get_running_loop()
        if self._arrived:
            self._arrived, self._pinged = False, False
            self._timer = loop.call_later(self._idle, self._tick)
        elif not self._pinged:
            self._pinged = True
            self._ping = asyncio.create_task(self._send_ping())
            self._timer = loop.call_later(self._idle / 2, self._tick)
        elif self._deadline is not None:
            self._timer = None
            self._deadline.reschedule(loop.time())  # the read in receive() ends with TimeoutError

    async def _send_ping(self) -> None:
        with contextlib.suppress(RedisError, OSError):  # the reading side notices a broken link
            await self._conn.send_command("PING", check_health=False)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._ping is not None:
            self._ping.cancel()
            self._ping = None

    async def close(self) -> None:
        """Stop the idle timer and close the connection (:meth:`open` may be called again)."""
        self._stop_timer()
        with contextlib.suppress(RedisError, OSError):
            await self._conn.disconnect(nowait=True)
