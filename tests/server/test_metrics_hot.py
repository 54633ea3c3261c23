"""The hot-path metrics expose exactly what prometheus_client's own Counter and Histogram would."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from threadline.server.metrics_hot import LATENCY_BUCKETS, HotMetrics

_CREATED = re.compile(r"^(\S+_created\{[^}]*\}) \S+$", re.M)


def _without_created_values(text: bytes) -> str:
    """The exposition with every ``_created`` timestamp blanked (they differ by construction)."""
    return _CREATED.sub(r"\1 T", text.decode())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["send_message", "get_thread", "list_messages"]),
                       st.sampled_from([200, 201, 400, 404, 429]),
                       st.one_of(st.sampled_from([0.0, *LATENCY_BUCKETS]), st.floats(0, 30))), max_size=40),
    st.lists(st.tuples(st.sampled_from(["user", "member"]), st.sampled_from(["hit", "miss", "bypass"])), max_size=20),
)
def test_the_exposition_matches_the_library_metrics(
    requests: list[tuple[str, int, float]], lookups: list[tuple[str, str]]
) -> None:
    hot_registry, library_registry = CollectorRegistry(), CollectorRegistry()
    hot = HotMetrics()
    hot_registry.register(hot)
    total = Counter("threadline_requests_total", "API requests answered, by operation and HTTP status.",
                    ["operation", "status"], registry=library_registry)
    latency = Histogram("threadline_request_duration_seconds", "Time to answer an API request, by operation.",
                        ["operation"], registry=library_registry, buckets=LATENCY_BUCKETS)
    cache = Counter(
        "threadline_access_cache_lookups_total",
        "Access cache lookups, by kind (user, member) and result (hit, miss, bypass while suspended or off).",
        ["kind", "result"], registry=library_registry,
    )
    for operation, status, seconds in requests:
        hot.observe(operation, status, seconds)
        total.labels(operation, str(status)).inc()
        latency.labels(operation).observe(seconds)
    for kind, result in lookups:
        hot.lookup(kind, result)
        cache.labels(kind, result).inc()
    assert _without_created_values(generate_latest(hot_registry)) == \
        _without_created_values(generate_latest(library_registry))


def test_an_observation_on_a_bound_counts_in_that_bucket() -> None:
    registry = CollectorRegistry()
    hot = HotMetrics()
    registry.register(hot)
    hot.observe("send_message", 201, 0.005)
    text = generate_latest(registry).decode()
    assert 'threadline_request_duration_seconds_bucket{le="0.0025",operation="send_message"} 0.0' in text
    assert 'threadline_request_duration_seconds_bucket{le="0.005",operation="send_message"} 1.0' in text
    assert 'threadline_request_duration_seconds_sum{operation="send_message"} 0.005' in text
