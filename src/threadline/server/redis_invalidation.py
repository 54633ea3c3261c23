"""Access cache invalidations between nodes, over Redis pub/sub (beside the event hub).

Nodes that share a PostgreSQL database share nothing else but Redis. Each node
keeps an :class:`~threadline.server.access_cache.AccessCache`; a write that
changes a user or a membership drops the entries on its own node at once and
publishes the change on ``<events channel>:access``; every node applies what it
receives and acknowledges it on the writer's own channel
(``<events channel>:access:<node>``).

What is guaranteed (``docs/design.md``, "Access cache"):

* **The writer waits for every node.** ``PUBLISH`` answers how many
  subscriptions Redis handed the change to (one per node, the writer's own
  included). :meth:`RedisInvalidations.publish` returns once that many nodes
  have applied it (the others' acknowledgements, and the writer's own copy),
  and only then is the writer's caller answered. A node that does not
  acknowledge within ``silence_seconds + 2 * heartbeat_seconds`` has by then
  suspended its cache on its own (below), so it serves nothing stale either.
* **A node serves only while it hears the channel.** The cache starts
  suspended and resumes once Redis has confirmed the subscription; it is
  suspended (emptied, serving and storing nothing) the moment the subscription
  fails, and when nothing (not even the PING answered every
  ``heartbeat_seconds``) has arrived for ``silence_seconds``. A node that was
  not subscribed when a change was published therefore holds nothing from
  before it, and a fill that read the database before the change is never
  stored (:attr:`AccessCache.epoch`).
* **A change that could not be published** (Redis unreachable from the writer
  only) is followed, once this node reaches Redis again, by a message that
  empties every node's cache; until then the TTL bounds how long another node
  (one that still hears Redis) may serve the old fact.

One Redis server (or a primary with replicas) is assumed: on Redis Cluster,
``PUBLISH`` counts only the subscribers of the shard it ran on.
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


class _Ack(msgspec.Struct, array_like=True):
    """A node applied the writer's change ``seq``."""

    node: str
    seq: int


class _Wait:
    """The nodes that have applied one of our changes, and how many must."""

    def __init__(self) -> None:
        self.needed: int | None = None
        self.nodes: set[str] = set()
        self.done = asyncio.Event()

    def heard(self, node: str) -> None:
        self.nodes.add(node)
        self.check()

    def check(self) -> None:
        if self.needed is not None and len(self.nodes) >= self.needed:
            self.done.set()


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Message).decode
_decode_ack = msgspec.msgpack.Decoder(_Ack).decode


class _Resubscribe(Exception):
    """The subscription went silent: start it again."""


class RedisInvalidations:
    """The :class:`~threadline.server.services.access.Invalidations` channel over Redis.

    Args:
        url: the ``--events`` Redis URL (its ``?channel=`` names the event channel; this one adds ``:access``).
        cache: this node's access cache (suspended here whenever the channel cannot be heard).
        publish_timeout: seconds a publish may take.
        heartbeat_seconds: how often the subscription is PINGed.
        silence_seconds: how long a subscription may stay silent before the cache is suspended.
        reconnect_max_seconds: the longest pause between reconnection attempts.
    """

    def __init__(
        self, url: str, cache: AccessCache, *, publish_timeout: float = 1.0,
        heartbeat_seconds: float = 0.5, silence_seconds: float = 2.0, reconnect_max_seconds: float = 5.0,
    ) -> None:
        self.url, events_channel = split_channel(url)
        self.channel = events_channel + ":access"
        self.node = secrets.token_hex(8)
        self.acks_channel = f"{self.channel}:{self.node}"
        self._cache = cache
        self._publish_timeout = publish_timeout
        self._heartbeat = heartbeat_seconds
        self._silence = silence_seconds
        self._reconnect_max = reconnect_max_seconds
        self._client: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._owe_clear = False
        self._seq = itertools.count(1)
        self._waits: dict[int, _Wait] = {}
        self._acking: set[asyncio.Task[None]] = set()

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
        """Send a change to every node; return once every node subscribed has applied it (or failed, logged)."""
        message = _Message(self.node, next(self._seq), list(change.users), list(change.threads),
                           [(t, u) for t, u in change.members])
        await self._send(message)

    async def _send(self, message: _Message) -> None:
        client = self._client
        if client is None:
            return
        wait = self._waits[message.seq] = _Wait()
        try:
            try:
                count = await asyncio.wait_for(client.publish(self.channel, _encode(message)), self._publish_timeout)
            except (RedisError, OSError, TimeoutError) as exc:
                self._owe_clear = True
                log.warning("could not publish an access cache invalidation: %s; every node's cache is "
                            "emptied once this node reaches Redis again (the TTL bounds it meanwhile)", exc)
                return
            wait.needed = int(count)
            wait.check()
            # A node that does not answer has suspended its cache by then (it heard nothing for that long).
            limit = self._silence + 2 * self._heartbeat
            try:
                await asyncio.wait_for(wait.done.wait(), limit)
            except TimeoutError:
                log.warning("%d of %d nodes acknowledged an access cache invalidation within %.1f s; the others "
                            "have stopped serving from their caches by now", len(wait.nodes), count, limit)
        finally:
            self._waits.pop(message.seq, None)

    # -- receiving ---------------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Subscribe, apply what arrives, and start again after any failure (the cache suspended meanwhile)."""
        pause = 0.1
        while True:
            client = self._client
            assert client is not None
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel, self.acks_channel)
                await self._confirmed(pubsub, 2)
                self._subscribed.set()
                self._cache.resume()
                log.info("access cache serving: subscribed to %s", self.channel)
                pause = 0.1
                if self._owe_clear:
                    self._owe_clear = False
                    clear = _Message(self.node, next(self._seq), [], [], [], clear=True)
                    self._acking.add(task := asyncio.create_task(self._send(clear)))
                    task.add_done_callback(self._acking.discard)
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

    async def _confirmed(self, pubsub: aioredis.client.PubSub, channels: int) -> None:
        """Wait for Redis to confirm the subscriptions: from then on every message reaches us."""
        deadline = time.monotonic() + max(self._silence, self._publish_timeout)
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=self._heartbeat)
            if message is not None and message.get("type") == "subscribe":
                channels -= 1
                if channels == 0:
                    return
        raise TimeoutError("Redis did not confirm the subscription")

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        heard = time.monotonic()
        next_ping = heard + self._heartbeat
        while True:
            message = await pubsub.get_message(timeout=self._heartbeat)
            now = time.monotonic()
            if message is not None:
                heard = now
                if message.get("type") == "message":
                    self._on_message(message["channel"], message["data"])
            elif now - heard > self._silence:
                raise _Resubscribe(f"nothing heard for {now - heard:.1f} s")
            if now >= next_ping:
                await pubsub.ping()
                next_ping = now + self._heartbeat

    def _on_message(self, channel: bytes, data: bytes) -> None:
        try:
            if channel.decode() == self.acks_channel:
                ack = _decode_ack(data)
                wait = self._waits.get(ack.seq)
                if wait is not None:
                    wait.heard(ack.node)
                return
            message = _decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            log.warning("ignored a malformed message on %s: %s", self.channel, exc)
            return
        if message.node == self.node:
            wait = self._waits.get(message.seq)
            if wait is not None:
                wait.heard(self.node)
            return  # applied here when it was written
        if message.clear:
            self._cache.clear()
        else:
            self._cache.invalidate(users=message.users, threads=message.threads,
                                   members=[(t, u) for t, u in message.members])
        task = asyncio.create_task(self._ack(message.node, message.seq))
        self._acking.add(task)
        task.add_done_callback(self._acking.discard)

    async def _ack(self, node: str, seq: int) -> None:
        """Tell the writer its change is applied here (it waits for every node's answer)."""
        client = self._client
        if client is None:
            return
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(
                client.publish(f"{self.channel}:{node}", _encode(_Ack(self.node, seq))), self._publish_timeout
            )
