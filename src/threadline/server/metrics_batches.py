"""How well the turn collectors batch, read from their own plain counters at scrape time.

Three parts of a node gather what many requests hand them into one unit of work:

* the SQLite writer commits queued writes in groups (``store/writer.py``);
* on PostgreSQL, :class:`~threadline.store.pg_send.SendTurn` writes a turn's sends in one statement;
* the Redis event hub publishes a turn's events as one message (``turns.py``).

Each already counts its batches and what they carried, as plain integers updated where the
work is done (the writer thread, the event loop). :class:`BatchMetrics` holds functions that
read those counters and turns them into Prometheus counters when ``/metrics`` is scraped: the
hot paths take no lock and call nothing for the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["BatchMetrics", "Counts"]

#: Reads a collector's counters: (batches, items they carried).
Counts = Callable[[], tuple[int, int]]

_STORE_BATCHES = (
    "threadline_store_write_batches",
    "Transactions that wrote batched writes, by engine (SQLite: the writer's groups, every write; "
    "PostgreSQL: send statements).",
)
_STORE_WRITES = (
    "threadline_store_batched_writes", "Writes those transactions carried, by engine (their ratio is the mean batch).",
)
_HUB_BATCHES = ("threadline_event_hub_publish_batches", "Messages the Redis event hub published, one per turn.")
_HUB_EVENTS = ("threadline_event_hub_published_events", "Events those messages carried.")


class BatchMetrics(Collector):
    """The batch counters of the store and the event hub this process serves with."""

    def __init__(self) -> None:
        self._store: tuple[str, Counts] | None = None
        self._hub: Counts | None = None

    def watch_store(self, source: tuple[str, Counts] | None) -> None:
        """Read the store's batches from ``source`` (replacing any earlier store's).

        Args:
            source: the store's engine (``sqlite``, ``postgres``: the samples' label) and the
                function reading its (transactions, writes they carried); None: no store.
        """
        self._store = source

    def watch_hub(self, counts: Counts | None) -> None:
        """Read the event hub's published batches from ``counts`` (None: a hub that publishes nothing)."""
        self._hub = counts

    def describe(self) -> Iterator[Metric]:
        """The families this collector writes (for the registry's name checks)."""
        yield CounterMetricFamily(*_STORE_BATCHES, labels=("engine",))
        yield CounterMetricFamily(*_STORE_WRITES, labels=("engine",))
        yield CounterMetricFamily(*_HUB_BATCHES)
        yield CounterMetricFamily(*_HUB_EVENTS)

    def collect(self) -> Iterator[Metric]:
        """The counters now; a family has no sample while nothing is watched."""
        batches = CounterMetricFamily(*_STORE_BATCHES, labels=("engine",))
        writes = CounterMetricFamily(*_STORE_WRITES, labels=("engine",))
        store = self._store
        if store is not None:
            engine, counts = store
            done, carried = counts()
            batches.add_metric((engine,), done)
            writes.add_metric((engine,), carried)
        yield batches
        yield writes
        published = CounterMetricFamily(*_HUB_BATCHES)
        events = CounterMetricFamily(*_HUB_EVENTS)
        hub = self._hub
        if hub is not None:
            done, carried = hub()
            published.add_metric((), done)
            events.add_metric((), carried)
        yield published
        yield events
