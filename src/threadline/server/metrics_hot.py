"""The metrics every request updates, kept as plain numbers and turned into Prometheus metrics at scrape time.

A ``prometheus_client`` counter or histogram takes a lock on every update (it may
be shared by threads): with the request counter, the latency histogram and two
access cache lookups, about one twentieth of a small request's CPU. These three
are only ever updated on the event loop's thread, so they are dictionaries of
numbers here, and :class:`HotMetrics` (a collector registered in the registry
``/metrics`` serves) writes the same families, samples and ``_created``
timestamps the library's own metrics would.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

__all__ = ["LATENCY_BUCKETS", "HotMetrics"]

#: Upper bounds of the latency histogram's buckets, in seconds (``+Inf`` follows).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_REQUESTS = ("threadline_requests", "API requests answered, by operation and HTTP status.")
_LATENCY = ("threadline_request_duration_seconds", "Time to answer an API request, by operation.")
_LOOKUPS = (
    "threadline_access_cache_lookups",
    "Access cache lookups, by kind (user, member) and result (hit, miss, bypass while suspended or off).",
)


class HotMetrics(Collector):
    """Requests answered, their latency and access cache lookups (update on the event loop only)."""

    def __init__(self) -> None:
        #: (operation, status) -> [count, created]
        self._requests: dict[tuple[str, int], list[float]] = {}
        #: operation -> [count per bucket (+Inf last)..., sum, created]
        self._latency: dict[str, list[float]] = {}
        #: (kind, result) -> [count, created]
        self._lookups: dict[tuple[str, str], list[float]] = {}

    def observe(self, operation: str, status: int, seconds: float) -> None:
        """Count one answered request and record its latency.

        Args:
            operation: the route name.
            status: the HTTP status answered.
            seconds: the time taken.
        """
        counted = self._requests.get((operation, status))
        if counted is None:
            counted = self._requests[(operation, status)] = [0, time.time()]
        counted[0] += 1
        row = self._latency.get(operation)
        if row is None:
            row = self._latency[operation] = [0] * (len(LATENCY_BUCKETS) + 1) + [0.0, time.time()]
        row[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # a bucket counts values <= its bound
        row[-2] += seconds

    def lookup(self, kind: str, result: str) -> None:
        """Count one access cache lookup (``user``/``member``; ``hit``/``miss``/``bypass``)."""
        counted = self._lookups.get((kind, result))
        if counted is None:
            counted = self._lookups[(kind, result)] = [0, time.time()]
        counted[0] += 1

    def describe(self) -> Iterator[Metric]:
        """The families this collector writes (for the registry's name checks)."""
        yield CounterMetricFamily(*_REQUESTS, labels=("operation", "status"))
        yield HistogramMetricFamily(*_LATENCY, labels=("operation",))
        yield CounterMetricFamily(*_LOOKUPS, labels=("kind", "result"))

    def collect(self) -> Iterator[Metric]:
        """The current values, as the library's Counter and Histogram would expose them."""
        requests = CounterMetricFamily(*_REQUESTS, labels=("operation", "status"))
        for (operation, status), (count, created) in list(self._requests.items()):
            requests.add_metric((operation, str(status)), count, created=created)
        yield requests
        latency = HistogramMetricFamily(*_LATENCY, labels=("operation",))
        bounds = [*(_bound(b) for b in LATENCY_BUCKETS), "+Inf"]
        for operation, row in list(self._latency.items()):
            cumulative, total = [], 0.0
            for bound, count in zip(bounds, row, strict=False):
                total += count
                cumulative.append((bound, total))
            latency.add_metric((operation,), cumulative, row[-2])
            latency.samples.append(Sample(f"{_LATENCY[0]}_created", {"operation": operation}, row[-1]))
        yield latency
        lookups = CounterMetricFamily(*_LOOKUPS, labels=("kind", "result"))
        for (kind, result), (count, created) in list(self._lookups.items()):
            lookups.add_metric((kind, result), count, created=created)
        yield lookups


def _bound(value: float) -> str:
    """A bucket bound as the library writes it (``0.005``, ``1.0``)."""
    return repr(float(value))
