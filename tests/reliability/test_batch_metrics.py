"""``/metrics`` reports how the turn collectors batch: the store's writes and the Redis hub's publications."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ..conftest import ENGINES, serving
from .conftest import drain
from .helpers import Chat, make_user
from .test_operations import sample

STORE = ("threadline_store_write_batches_total", "threadline_store_batched_writes_total")
HUB = ("threadline_event_hub_publish_batches_total", "threadline_event_hub_published_events_total")


def _has_sample(text: str, name: str) -> bool:
    return re.search(rf"^{re.escape(name)}[{{ ]", text, re.M) is not None


@pytest.mark.parametrize("engine", ENGINES)
def test_sends_are_counted_as_batches_and_the_writes_they_carried(engine: str, tmp_path: Path) -> None:
    with serving(engine, tmp_path / "data", "--no-limits", env={"THREADLINE_THROTTLE": "off"}) as server:
        drain(server)
        alice = make_user(server)
        chat = Chat(server.http_endpoint, alice.token)
        url = server.http_endpoint + "/metrics"

        def scrape() -> str:
            answer = chat.session.get(url, timeout=5)
            assert answer.status_code == 200
            return answer.text

        def send(n: int) -> str:
            return Chat(server.http_endpoint, alice.token).send(thread_id, f"together {n}")

        def published(earlier: str, name: str, count: int) -> None:
            """Wait until ``count`` more of the hub's ``name`` are counted (a request is answered before
            its events go out to Redis)."""
            deadline = time.monotonic() + 5
            while engine == "postgres" and time.monotonic() < deadline:
                if sample(scrape(), name) - sample(earlier, name) >= count:
                    return
                time.sleep(0.01)

        start = scrape()
        thread_id = chat.create_thread("batches", [])
        published(start, HUB[0], 1)  # the thread's creation: one message
        before = scrape()
        for n in range(5):  # one at a time: each its own batch
            chat.send(thread_id, f"alone {n}")
            published(before, HUB[0], n + 1)  # before the next send
        middle = scrape()
        with ThreadPoolExecutor(8) as pool:  # at once: batched as they happen to meet
            assert len(set(pool.map(send, range(24)))) == 24
        published(middle, HUB[1], 24)
        after = scrape()

    def delta(name: str, earlier: str, later: str, **labels: str) -> float:
        return sample(later, name, **labels) - sample(earlier, name, **labels)

    other = "sqlite" if engine == "postgres" else "postgres"
    for text in (before, middle, after):
        assert all(f'{name}{{engine="{other}"}}' not in text for name in STORE)
        assert sample(text, STORE[0], engine=engine) <= sample(text, STORE[1], engine=engine)
    assert delta(STORE[0], before, middle, engine=engine) == 5
    assert delta(STORE[1], before, middle, engine=engine) == 5
    assert 1 <= delta(STORE[0], middle, after, engine=engine) <= 24
    assert delta(STORE[1], middle, after, engine=engine) == 24
    if engine == "sqlite":  # the in-process hub publishes nothing anywhere
        assert not any(_has_sample(text, name) for text in (before, after) for name in HUB)
    else:  # the Redis hub: one event per send
        assert delta(HUB[0], before, middle) == 5 and delta(HUB[1], before, middle) == 5
        assert 1 <= delta(HUB[0], middle, after) <= 24 and delta(HUB[1], middle, after) == 24
