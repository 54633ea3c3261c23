"""The access cache in a real server, on both engines: it serves hits, every write that changes a user
or a membership takes effect at the very next request, and strangers cannot fill it.

PostgreSQL runs with the Redis hub (the scale-out configuration, where the cache is on); PostgreSQL
without Redis must not cache at all, since other processes may write the same database unseen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import ENGINES, RunningServer, launch, serving
from ..pg import database_flags
from . import access_scenarios as scenarios
from .access_scenarios import Node

ROUNDS = 5


@pytest.fixture(scope="module", params=ENGINES)
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp(f"cache-{request.param}") / "data"
    with serving(request.param, data, env={"THREADLINE_THROTTLE": "off"}) as running:
        made = Node(running, running.access_key)
        made.wait_serving()
        yield made


def test_revocation_takes_effect_at_once(node: Node) -> None:
    scenarios.revoke(node, node, ROUNDS)


def test_identity_deletion_takes_effect_at_once(node: Node) -> None:
    scenarios.delete_identity(node, node, ROUNDS)


def test_removal_takes_effect_at_once(node: Node) -> None:
    scenarios.remove_member(node, node, ROUNDS)


def test_leaving_takes_effect_at_once(node: Node) -> None:
    scenarios.leave(node, node, ROUNDS)


def test_thread_deletion_takes_effect_at_once(node: Node) -> None:
    scenarios.delete_thread(node, node, ROUNDS)


def test_a_member_added_back_has_its_new_window(node: Node) -> None:
    scenarios.readd(node, node, ROUNDS)


def test_strangers_do_not_fill_the_cache(node: Node) -> None:
    """Bad tokens, unknown threads and threads of others leave no entry behind."""
    _, owner = node.user()
    thread_id = node.create_thread(owner, [])
    _, outsider = node.user()
    assert node.list_status(outsider, thread_id) == 403  # authenticated: its user entry only
    entries = node.metric("threadline_access_cache_entries")
    for n in range(50):
        assert node.list_status(outsider, thread_id) == 403
        assert node.list_status(outsider, f"19:{n}unknown@thread.v2") == 404
        assert node.list_status(outsider[:-4] + "AAAA", thread_id) == 401
    assert node.metric("threadline_access_cache_entries") == entries


def test_the_cache_holds_at_most_its_limit(tmp_path: Path) -> None:
    """Many users in many threads: the cache stays at ``THREADLINE_CACHE_ENTRIES`` per map."""
    running = launch(tmp_path / "data", env={"THREADLINE_THROTTLE": "off", "THREADLINE_CACHE_ENTRIES": "5"})
    try:
        made = Node(running, running.access_key)
        _, owner = made.user()
        for _ in range(12):
            user_id, token = made.user()
            thread_id = made.create_thread(owner, [user_id])
            assert made.list_status(token, thread_id) == 200
            assert made.metric("threadline_access_cache_entries") <= 10
        assert made.metric("threadline_access_cache_entries") == 10
    finally:
        running.stop()


@pytest.mark.parametrize("engine", ["postgres"])
def test_postgres_without_redis_does_not_cache(engine: str, tmp_path: Path) -> None:
    """Without Redis a node cannot hear other nodes' writes: every lookup bypasses the cache."""
    with database_flags(engine, "threadline_nocache") as flags:
        running: RunningServer = launch(tmp_path / "data", *flags, env={"THREADLINE_THROTTLE": "off"})
        try:
            made = Node(running, running.access_key)
            assert made.metric("threadline_access_cache_serving") == 0
            scenarios.revoke(made, made, 2, cached=False)
            scenarios.remove_member(made, made, 2, cached=False)
            assert made.hits() == 0
            assert made.metric("threadline_access_cache_entries") == 0
            bypassed = made.metric("threadline_access_cache_lookups_total", 'kind="user",result="bypass"')
            assert bypassed == 0  # no cache at all: nothing is even looked up
        finally:
            running.stop()
