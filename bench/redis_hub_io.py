"""CPU per message of the Redis hub's I/O: redis-py's client and PubSub vs one dedicated connection each.

The message is what a node publishes under load: a ``redis_wire.Batch`` of 9 events. For each way,
in the same run and on the same Redis:

* publish: ``count`` PUBLISHes one after the other, ``time.process_time`` per call; the old hub
  called ``asyncio.wait_for(Redis.publish(...), publish_timeout)``, the bare ``Redis.publish`` is
  shown too; the new one is ``redis_link.Publisher.publish`` (a deadline included).
* receive: a thread with a synchronous client publishes ``count`` messages (pipelines of 100) while
  the event loop on the main thread receives them; ``time.thread_time`` of the main thread only,
  from the first read to the last message (the old hub read with
  ``PubSub.get_message(timeout=5.0)``, the new one with ``redis_link.Subscription.receive``).
* dropping the node's own batch: decoding it vs comparing its first bytes.

    PYTHONPATH=src .venv/bin/python bench/redis_hub_io.py [--redis redis://127.0.0.1:6379/0] [--count 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import threading
import time
import timeit
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio as aioredis

from threadline.server.redis_link import Publisher, Subscription
from threadline.server.redis_wire import Batch, Wire, decode, encode


def message() -> bytes:
    """A batch of 9 events of a send, as a node under load publishes it."""
    wires = [
        Wire(1000 + i, "19:" + secrets.token_hex(16) + "@thread.v2", "chatMessageReceived",
             secrets.token_hex(18).encode(), 1_700_000_000_000 + i, ["8:acs:" + secrets.token_hex(18)] * 2)
        for i in range(9)
    ]
    return encode(Batch(secrets.token_hex(8), wires))


async def cpu_per_call(count: int, call: Callable[[], Awaitable[object]]) -> float:
    """Microseconds of process CPU per awaited call."""
    for _ in range(100):  # warm up: connect, fill caches
        await call()
    began = time.process_time()
    for _ in range(count):
        await call()
    return (time.process_time() - began) / count * 1e6


def flood(url: str, channel: str, data: bytes, count: int, ready: threading.Event) -> None:
    """Publish ``count`` messages from this thread, in pipelines of 100."""
    client = redis.Redis.from_url(url)
    ready.wait()
    left = count
    while left:
        pipe = client.pipeline(transaction=False)
        for _ in range(min(100, left)):
            pipe.publish(channel, data)
        pipe.execute()
        left -= min(100, left)
    client.close()


async def receive_old(url: str, data: bytes, count: int) -> float:
    """Microseconds of the loop thread's CPU per message read with ``PubSub.get_message``."""
    channel = "bench:" + secrets.token_hex(6)
    client = aioredis.Redis.from_url(url, health_check_interval=10)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    ready = threading.Event()
    thread = threading.Thread(target=flood, args=(url, channel, data, count, ready))
    thread.start()
    got = 0
    began = time.thread_time()
    ready.set()
    while got < count:
        got_message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
        if got_message is not None and got_message.get("type") == "message":
            got += 1
    spent = time.thread_time() - began
    thread.join()
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await client.aclose()
    return spent / count * 1e6


class _Enough(Exception):
    pass


async def receive_new(url: str, data: bytes, count: int) -> float:
    """Microseconds of the loop thread's CPU per message read with ``Subscription.receive``."""
    channel = "bench:" + secrets.token_hex(6)
    subscription = Subscription(url, channel, connect_timeout=1.0)
    await subscription.open()
    ready = threading.Event()
    thread = threading.Thread(target=flood, args=(url, channel, data, count, ready))
    thread.start()
    got = 0

    def handle(_: bytes) -> None:
        nonlocal got
        got += 1
        if got == count:
            raise _Enough

    began = time.thread_time()
    ready.set()
    with contextlib.suppress(_Enough):
        await subscription.receive(handle)
    spent = time.thread_time() - began
    thread.join()
    await subscription.close()
    return spent / count * 1e6


async def publish_figures(url: str, data: bytes, count: int) -> tuple[float, float, float]:
    channel = "bench:" + secrets.token_hex(6)
    client = aioredis.Redis.from_url(url, socket_connect_timeout=1.0, health_check_interval=10)
    bare = await cpu_per_call(count, lambda: client.publish(channel, data))
    old = await cpu_per_call(count, lambda: asyncio.wait_for(client.publish(channel, data), 1.0))
    await client.aclose()
    publisher = Publisher(url, channel, connect_timeout=1.0)
    loop = asyncio.get_running_loop()
    new = await cpu_per_call(count, lambda: publisher.publish(data, loop.time() + 1.0))
    await publisher.close()
    return bare, old, new


async def run(url: str, count: int, rounds: int) -> None:
    data = message()
    print(f"message: {len(data)} bytes (9 events); {count} operations per figure; CPU us per message")
    print(f"{'round':>5} {'Redis.publish':>14} {'wait_for(..)':>13} {'Publisher':>10} {'ratio':>6}"
          f" {'get_message':>12} {'Subscription':>13} {'ratio':>6}")
    for n in range(rounds):
        bare, old, new = await publish_figures(url, data, count)
        got_old = await receive_old(url, data, count)
        got_new = await receive_new(url, data, count)
        print(f"{n + 1:>5} {bare:>14.1f} {old:>13.1f} {new:>10.1f} {old / new:>6.2f}"
              f" {got_old:>12.1f} {got_new:>13.1f} {got_old / got_new:>6.2f}")
    prefix = encode(Batch(decode(data).node, []))[:-1]
    decoding = min(timeit.repeat(lambda: decode(data).node, number=10000, repeat=3)) / 10000 * 1e6
    comparing = min(timeit.repeat(lambda: data.startswith(prefix), number=10000, repeat=3)) / 10000 * 1e6
    print(f"own batch dropped: decode {decoding:.2f} us, prefix {comparing:.3f} us")
    print("(ratio: old hub's way / new; publish's old way is wait_for(Redis.publish), as the hub called it)")


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU per message of the Redis hub's I/O, old and new.")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.redis, args.count, args.rounds))


if __name__ == "__main__":
    main()
