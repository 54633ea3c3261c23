"""Repeatability ids are remembered for a configurable time, then forgotten (the table does not grow forever)."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from ..conftest import RunningServer
from ..support import new_user


def test_repeatability_ids_expire_after_their_retention(start_server: Callable[..., RunningServer]) -> None:
    # 3 s, not 1: the stored time is whole seconds and the pruner ticks each second, so an id
    # kept 1 s could already be gone when the test replays it a moment later
    server = start_server(env={"THREADLINE_IDEMPOTENCY_RETENTION": "3", "THREADLINE_THROTTLE": "off"})
    user = new_user(server)
    headers = {"Authorization": f"Bearer {user.token}", "repeatability-request-id": "same-id"}
    base = f"{server.http_endpoint}/chat/threads"
    thread = requests.post(f"{base}?api-version=2024-03-07", json={"topic": "r"}, headers=headers,
                           timeout=10).json()["chatThread"]["id"]
    url = f"{base}/{thread}/messages?api-version=2024-03-07"
    first = requests.post(url, json={"content": "a"}, headers=headers, timeout=10).json()["id"]
    assert requests.post(url, json={"content": "a"}, headers=headers, timeout=10).json()["id"] == first
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = requests.post(url, json={"content": "a"}, headers=headers, timeout=10).json()["id"]
        if again != first:
            break
    assert again != first, "the repeatability id was never forgotten"
    thread_again = requests.post(f"{base}?api-version=2024-03-07", json={"topic": "r"}, headers=headers,
                                 timeout=10).json()["chatThread"]["id"]
    assert thread_again != thread
