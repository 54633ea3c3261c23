"""Access cache invalidations between nodes, over Redis pub/sub (beside the event hub).

Nodes that share a PostgreSQL database share nothing else but Redis. Each node
keeps an :class:`~threadline.server.access_cache.AccessCache`; a write that
changes a user or a membership drops the entries on its own node at once and
publishes the change on ``<events channel>:access`` here; every node applies
what it receives.

What is guaranteed (``docs/design.md``, "Access cache"):

* **The writer waits.** :meth:`RedisInvalidations.publish` returns once Redis
  has answered the ``PUBLISH`` (by then Redis has queued the message to every
  subscribed connection) *and* this node's own subscription has received it
  back. Only then is the writer's caller answered, so a node that is subscribed
  has been sent the change before anyone can know the write happened; what
  remains is that node reading its socket, microseconds on a live loop.
* **A node serves only while it hears the channel.** The cache starts
  suspended and resumes once Redis has confirmed the subscription; it is
  suspended (emptied, serving and storing nothing) the moment the subscription
  fails, when nothing (not even the PING answered every ``heartbeat_seconds``)
  has arrived for ``silence_seconds``, and when this node's own message does
  not come back. Missed messages cannot matter: nothing cached before the outage
  survives it and nothing read during it is stored.
* **A change that could not be published** (Redis unreachable from the writer
  only) is followed, once this node reaches Redis again, by a message that
  empties every node's cache; until then the TTL bounds how long another node
  (one that still hears Redis) may serve the old fact.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .access_cache import AccessCache
from .redis_hub import split_channel
from .services.access import Change

__all__ = ["RedisInvalidations"]

log = logging.getLogger("threadline.server.cache")


class _Message(msgspec.Struct, array_like=True):
    """One change on the channel (a msgpack array); ``clear`` empties every cache."""

    node: str
    seq: int
    users: list[str]
    threads: list[str]
    members: list[tuple[str, str]]
    clear: bool = False


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Message).decode


class _Resubscribe(Exception):
    """The subscription went silent or lost a message of ours: start it again."""


class RedisInvalidations:
    """The :class:`~threadline.server.services.access.Invalidations` channel over Redis.

    Args:
        url: the ``--events`` Redis URL (its ``?channel=`` names the event channel; this one adds ``:access``).
        cache: this node's access cache (suspended here whenever the channel cannot be heard).
        publish_timeout: seconds a publish may take.
        echo_timeout: seconds to wait for our own message to come back.
        heartbeat_seconds: how often the subscription is PINGed.
        silence_seconds: how long a subscription may stay silent before the cache is suspended.
        reconnect_max_seconds: the longest pause between reconnection attempts.
    """

    def __init__(
        self, url: str, cache: AccessCache, *, publish_timeout: float = 1.0, echo_timeout: float = 1.0,
        heartbeat_seconds: float = 0.5, silence_seconds: float = 2.0, reconnect_max_seconds: float = 5.0,
    ) -> None:
        self.url, events_channel = split_channel(url)
        self.channel = events_channel + ":access"
        self.node = secrets.token_hex(8)
        self._cache = cache
        self._publish_timeout = publish_timeout
        self._echo_timeout = echo_timeout
        self._heartbeat = heartbeat_seconds
        self._silence = silence_seconds
        self._reconnect_max = reconnect_max_seconds
        self._client: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._resubscribe = False
        self._owe_clear = False
        self._seq = itertools.count(1)
        self._echoes: dict[int, asyncio.Future[None]] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening in the background (the cache serves once subscribed); waits up to 2 s for it."""
        self._cache.suspend()
        self._client = aioredis.Redis.from_url(self.url, socket_connect_timeout=self._publish_timeout)
        self._listener = asyncio.create_task(self._listen(), name="threadline-access-invalidations")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 2.0)

    async def stop(self) -> None:
        """Stop listening and close the connections (the cache is left suspended)."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._client.aclose()
            self._client = None
        self._cache.suspend()

    @property
    def subscribed(self) -> bool:
        """Whether the channel is heard now (the cache may serve)."""
        return self._subscribed.is_set()

    # -- sending -----------------------------------------------------------------------------------

    async def publish(self, change: Change) -> None:
        """Send a change to every node; return once Redis has it and it came back here (or failed, logged)."""
        message = _Message(self.node, next(self._seq), list(change.users), list(change.threads),
                           [(t, u) for t, u in change.members])
        await self._send(message)

    async def _send(self, message: _Message) -> bool:
        client = self._client
        if client is None:
            return False
        echo: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._echoes[message.seq] = echo
        try:
            try:
                await asyncio.wait_for(client.publish(self.channel, _encode(message)), self._publish_timeout)
            except (RedisError, OSError, TimeoutError) as exc:
                self._owe_clear = True
                log.warning("could not publish an access cache invalidation: %s; every node's cache is "
                            "emptied once this node reaches Redis again (the TTL bounds it meanwhile)", exc)
                return False
            if not self._subscribed.is_set():
                return True  # Redis has sent it to the subscribed nodes; ours is suspended anyway
            try:
                await asyncio.wait_for(echo, self._echo_timeout)
            except TimeoutError:
                log.warning("our access cache invalidation did not come back from Redis; resubscribing")
                self._cache.suspend()
                self._resubscribe = True
            return True
        finally:
            self._echoes.pop(message.seq, None)

    # -- receiving ---------------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Subscribe, apply what arrives, and start again after any failure (the cache suspended meanwhile)."""
        pause = 0.1
        while True:
            client = self._client
            assert client is not None
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                await self._confirmed(pubsub)
                self._resubscribe = False
                self._subscribed.set()
                self._cache.resume()
                log.info("access cache serving: subscribed to %s", self.channel)
                pause = 0.1
                if self._owe_clear:
                    self._owe_clear = False
                    await self._send(_Message(self.node, next(self._seq), [], [], [], clear=True))
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError, _Resubscribe) as exc:
                if self._subscribed.is_set():
                    log.warning("access cache suspended: the invalidation channel failed (%s); resubscribing",
                                exc)
            finally:
                self._subscribed.clear()
                self._cache.suspend()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._reconnect_max)

    async def _confirmed(self, pubsub: aioredis.client.PubSub) -> None:
        """Wait for Redis to confirm the subscription: from then on every message reaches us."""
        deadline = time.monotonic() + max(self._silence, self._publish_timeout)
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=self._heartbeat)
            if message is not None and message.get("type") == "subscribe":
                return
        raise TimeoutError("Redis did not confirm the subscription")

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        heard = time.monotonic()
        next_ping = heard + self._heartbeat
        while not self._resubscribe:
            message = await pubsub.get_message(timeout=self._heartbeat)
            now = time.monotonic()
            if message is not None:
                heard = now
                if message.get("type") == "message":
                    self._on_message(message["data"])
            elif now - heard > self._silence:
                raise _Resubscribe(f"nothing heard for {now - heard:.1f} s")
            if now >= next_ping:
                await pubsub.ping()
                next_ping = now + self._heartbeat
        raise _Resubscribe("a message of ours did not come back")

    def _on_message(self, data: bytes) -> None:
        try:
            message = _decode(data)
        except msgspec.DecodeError as exc:
            log.warning("ignored a malformed message on %s: %s", self.channel, exc)
            return
        if message.node == self.node:
            echo = self._echoes.get(message.seq)
            if echo is not None and not echo.done():
                echo.set_result(None)
            return  # applied here when it was written
        if message.clear:
            self._cache.clear()
            return
        self._cache.invalidate(users=message.users, threads=message.threads,
                               members=[(t, u) for t, u in message.members])
