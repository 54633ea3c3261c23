"""The access cache across nodes: two ``threadline serve`` nodes on one PostgreSQL database and Redis.

Node B's cache is warmed, then node A revokes, deletes or removes; B's very next request must
see it, in a loop so a race would show. B reaches Redis through a TCP proxy the tests cut or
silence: B must then stop serving from its cache (and refuse at once what A changed).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from ..conftest import RunningServer, launch
from ..pg import REDIS_URL, require_redis
from ..server import access_scenarios as scenarios
from ..server.access_scenarios import Node
from .conftest import TcpProxy

ROUNDS = 30


class ProxyThread:
    """A :class:`TcpProxy` in front of Redis, on an event loop of its own thread."""

    def __init__(self) -> None:
        redis = urlsplit(REDIS_URL)
        self.proxy = TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self.proxy.start())

    def _run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(10)

    def _call(self, action: Any, *args: Any) -> None:
        async def call() -> None:
            action(*args)

        self._run(call())

    def cut(self) -> None:
        self._call(self.proxy.cut)

    def resume(self) -> None:
        self._call(self.proxy.resume)

    def hold(self, held: bool = True) -> None:
        self._call(self.proxy.hold, held)

    def close(self) -> None:
        self._run(self.proxy.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class Pair:
    """Node A on Redis directly, node B through the proxy; one database, one channel, one key."""

    def __init__(self, a: Node, b: Node, proxy: ProxyThread) -> None:
        self.a, self.b, self.proxy = a, b, proxy


@pytest.fixture(scope="module")
def pair(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    require_redis()
    root = tmp_path_factory.mktemp("cache-pair")
    channel = f"threadline-test:{secrets.token_hex(6)}"
    key, resource = base64.b64encode(secrets.token_bytes(32)).decode(), str(uuid.uuid4())
    proxy = ProxyThread()
    nodes: list[RunningServer] = []

    def start(name: str, events: str) -> RunningServer:
        (root / name).mkdir()
        node = launch(root / name / "data", "--database", postgres_url, "--events", f"{events}?channel={channel}",
                      "--access-key", key, "--resource-id", resource, env={"THREADLINE_THROTTLE": "off"})
        nodes.append(node)
        return node

    try:
        a = Node(start("a", REDIS_URL), key)
        b = Node(start("b", f"redis://127.0.0.1:{proxy.proxy.port}/0"), key)
        a.wait_serving()
        b.wait_serving()
        yield Pair(a, b, proxy)
    finally:
        for node in nodes:
            node.stop(signal.SIGKILL)
        proxy.close()


def test_revocation_on_a_is_401_on_b(pair: Pair) -> None:
    scenarios.revoke(pair.a, pair.b, ROUNDS)


def test_identity_deletion_on_a_is_401_on_b(pair: Pair) -> None:
    scenarios.delete_identity(pair.a, pair.b, ROUNDS)


def test_removal_on_a_is_403_on_b(pair: Pair) -> None:
    scenarios.remove_member(pair.a, pair.b, ROUNDS)


def test_leaving_on_a_is_403_on_b(pair: Pair) -> None:
    scenarios.leave(pair.a, pair.b, ROUNDS)


def test_thread_deletion_on_a_is_404_on_b(pair: Pair) -> None:
    scenarios.delete_thread(pair.a, pair.b, ROUNDS)


def test_a_member_added_back_on_a_has_its_new_window_on_b(pair: Pair) -> None:
    scenarios.readd(pair.a, pair.b, ROUNDS)


def test_writes_on_b_take_effect_on_a(pair: Pair) -> None:
    """The other way round: A hears B's invalidations through the proxy."""
    scenarios.revoke(pair.b, pair.a, 10)
    scenarios.remove_member(pair.b, pair.a, 10)


def _warm_b(pair: Pair) -> tuple[str, str, list[tuple[str, str]]]:
    """A thread of an owner with two members whose reads B has cached: (owner token, thread, members)."""
    _, owner = pair.a.user()
    members = [pair.a.user(), pair.a.user()]
    thread_id = pair.a.create_thread(owner, [user_id for user_id, _ in members])
    before = pair.b.hits()
    for _, token in members:
        for _ in range(3):
            assert pair.b.list_status(token, thread_id) == 200
    assert pair.b.hits() >= before + 8
    return owner, thread_id, members


def test_b_cut_off_from_redis_refuses_at_once(pair: Pair) -> None:
    """B loses Redis: it stops serving from its cache, so A's revocation and removal hold on B at once."""
    for _ in range(5):
        owner, thread_id, [(revoked_id, revoked), (removed_id, removed)] = _warm_b(pair)
        pair.proxy.cut()
        try:
            pair.a.revoke(revoked_id)
            assert pair.b.list_status(revoked, thread_id) == 401
            pair.a.remove(owner, thread_id, removed_id)
            assert pair.b.list_status(removed, thread_id) == 403
            assert pair.b.metric("threadline_access_cache_serving") == 0
        finally:
            pair.proxy.resume()
        pair.b.wait_serving()  # resubscribed: B caches again
        _warm_b(pair)


def test_b_on_a_silent_link_stops_serving(pair: Pair) -> None:
    """B's Redis connection stays open but nothing gets through: B stops serving within seconds."""
    _, thread_id, [(user_id, token), _] = _warm_b(pair)
    pair.proxy.hold()
    try:
        started = time.monotonic()
        pair.b.wait_serving(0.0, timeout=10)
        assert time.monotonic() - started < 4  # 2 s of silence (PINGs unanswered), checked every 0.5 s
        pair.a.revoke(user_id)
        assert pair.b.list_status(token, thread_id) == 401
    finally:
        pair.proxy.hold(False)
    pair.b.wait_serving()
