"""Operational telemetry: Prometheus metrics at ``/metrics`` and JSON-line logs.

Metrics (one registry per server process, see ``docs/operations.md``):

* ``threadline_requests_total{operation,status}`` — answered API requests;
* ``threadline_request_duration_seconds{operation}`` — their latency (histogram);
* ``threadline_throttled_requests_total{operation}`` — requests refused with 429;
* ``threadline_realtime_connections`` — open real-time connections (gauge;
  the real-time endpoint calls :func:`connections_opened` / :func:`connections_closed`);
* ``threadline_database_errors_total{kind}`` — database failures seen by requests;
* ``threadline_retention_deleted_threads_total`` — threads this node deleted under their retention policy;
* ``threadline_connections_open`` — open HTTP/WebSocket connections (gauge);
* ``threadline_connections_refused_total`` / ``threadline_connections_shed_total`` —
  connections refused at the cap, and idle ones closed to make room;
* ``threadline_http_rejected_total{reason}`` — requests answered by the
  connection layer (timeouts, over-long request lines, oversized heads);
* ``threadline_client_aborts_total{operation}`` — requests whose client went
  away before the answer (not server errors);
* ``threadline_realtime_queued_bytes`` — bytes waiting in real-time send queues;
* ``threadline_event_hub_connected`` — 1 while the event hub reaches the other
  nodes (always, for the in-process hub), 0 while the Redis hub reconnects;
* ``threadline_access_cache_lookups_total{kind,result}`` — the access cache's
  lookups (``user``/``member``; ``hit``, ``miss``, ``bypass`` while it is off or suspended);
* ``threadline_access_cache_invalidations_total{kind}`` — entries' keys dropped by writes
  (``user``, ``thread``, ``member``), here and from other nodes;
* ``threadline_access_cache_entries`` — entries held now (gauge);
* ``threadline_access_cache_serving`` — 1 while the access cache may serve (gauge);
* ``threadline_store_write_batches_total{engine}`` / ``threadline_store_batched_writes_total{engine}`` —
  transactions of batched writes and the writes they carried (:mod:`.metrics_batches`);
* ``threadline_event_hub_publish_batches_total`` / ``threadline_event_hub_published_events_total`` —
  the Redis event hub's messages (one per turn) and the events they carried;
* the standard ``process_*`` and ``python_*`` metrics.

Logs: :func:`configure_logging` sends every ``threadline.*`` record to stderr
as one JSON object per line. At level INFO each API request writes an
``threadline.access`` line carrying the request id that the response echoes
in ``x-ms-request-id`` (and ``x-ms-client-request-id`` when the client sent one).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from .metrics_batches import BatchMetrics, Counts
from .metrics_hot import HotMetrics

__all__ = [
    "REGISTRY",
    "JsonFormatter",
    "access_cache_invalidated",
    "access_cache_lookup",
    "access_cache_serving",
    "access_cache_size",
    "batches_of_hub",
    "batches_of_store",
    "client_aborted",
    "configure_logging",
    "connection_refused",
    "connection_shed",
    "connections_closed",
    "connections_open",
    "connections_opened",
    "database_error",
    "http_rejected",
    "hub_connected",
    "metrics_endpoint",
    "observe",
    "realtime_queued_bytes",
    "render",
    "retention_deleted",
    "server_closed",
    "throttled",
]

#: The registry ``/metrics`` serves (not prometheus_client's global one, so tests and embedders stay isolated).
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_HOT = HotMetrics()
REGISTRY.register(_HOT)
_BATCHES = BatchMetrics()
REGISTRY.register(_BATCHES)
_THROTTLED = Counter(
    "threadline_throttled_requests_total", "API requests refused with 429 TooManyRequests.",
    ["operation"], registry=REGISTRY,
)
_CONNECTIONS = Gauge(
    "threadline_realtime_connections", "Real-time (event stream) connections open now.", registry=REGISTRY,
)
_SERVER_CLOSES = Counter(
    "threadline_realtime_server_closes_total",
    "Real-time connections the server closed, by close code (4001 expired, 4003 revoked, 4008 too slow...).",
    ["code"], registry=REGISTRY,
)
_HUB_CONNECTED = Gauge(
    "threadline_event_hub_connected",
    "1 while the event hub reaches the other nodes (always for the in-process hub), 0 while Redis reconnects.",
    registry=REGISTRY,
)
_DB_ERRORS = Counter(
    "threadline_database_errors_total", "Database failures met while answering requests, by kind.",
    ["kind"], registry=REGISTRY,
)

_OPEN = Gauge(
    "threadline_connections_open", "HTTP and WebSocket connections open now (both listeners).",
    registry=REGISTRY,
)
_REFUSED = Counter(
    "threadline_connections_refused_total",
    "Connections refused with 503 because the connection cap was reached and every connection was busy.",
    registry=REGISTRY,
)
_SHED = Counter(
    "threadline_connections_shed_total",
    "Idle connections (no complete request head yet, or idle keep-alive) closed to make room at the cap.",
    registry=REGISTRY,
)
_REJECTED = Counter(
    "threadline_http_rejected_total",
    "Requests answered by the connection layer, by reason (header_timeout, body_timeout, "
    "uri_too_long, headers_too_large, malformed).",
    ["reason"], registry=REGISTRY,
)
_ABORTS = Counter(
    "threadline_client_aborts_total",
    "Requests whose client disconnected before the answer, by operation (not counted as errors).",
    ["operation"], registry=REGISTRY,
)
_QUEUED = Gauge(
    "threadline_realtime_queued_bytes", "UTF-8 bytes waiting in the send queues of real-time connections.",
    registry=REGISTRY,
)

def observe(operation: str, status: int, seconds: float) -> None:
    """Count one answered request and record its latency (on the event loop: see :mod:`.metrics_hot`).

    Args:
        operation: the route name (``send_message``...).
        status: the HTTP status answered.
        seconds: the time taken.
    """
    _HOT.observe(operation, status, seconds)


def throttled(operation: str) -> None:
    """Count one request refused by the throttle."""
    _THROTTLED.labels(operation).inc()


_RETENTION_DELETED = Counter(
    "threadline_retention_deleted_threads_total", "Threads this node deleted because their retention expired.",
    registry=REGISTRY,
)


def retention_deleted(count: int) -> None:
    """Count threads the retention pruner deleted."""
    _RETENTION_DELETED.inc(count)


def database_error(kind: str) -> None:
    """Count one database failure (``unavailable``, ``error``...)."""
    _DB_ERRORS.labels(kind).inc()


def connections_opened(count: int = 1) -> None:
    """A real-time connection opened (call once per connection)."""
    _CONNECTIONS.inc(count)


def connections_closed(count: int = 1) -> None:
    """A real-time connection closed (call once per connection, however it ended)."""
    _CONNECTIONS.dec(count)


def server_closed(code: int) -> None:
    """Count a real-time connection the server decided to close, by its close code."""
    _SERVER_CLOSES.labels(str(code)).inc()


def connections_open(count: int) -> None:
    """Note how many connections are open now."""
    _OPEN.set(count)


def connection_refused() -> None:
    """Count one connection refused at the cap."""
    _REFUSED.inc()


def connection_shed() -> None:
    """Count one idle connection closed to make room at the cap."""
    _SHED.inc()


def http_rejected(reason: str) -> None:
    """Count one request the connection layer answered itself (``header_timeout``...)."""
    _REJECTED.labels(reason).inc()


def client_aborted(operation: str) -> None:
    """Count one request whose client went away before the answer."""
    _ABORTS.labels(operation).inc()


def realtime_queued_bytes(read: Callable[[], float]) -> None:
    """Report the bytes in real-time send queues through ``read``, called at each scrape."""
    _QUEUED.set_function(read)


def batches_of_store(source: tuple[str, Counts] | None) -> None:
    """Report the store's batched writes, read at each scrape (replacing any earlier store's).

    Args:
        source: the store's engine (the samples' ``engine`` label) and a function returning
            (transactions, writes they carried), e.g. ``store.write_batches``; None: no store.
    """
    _BATCHES.watch_store(source)


def batches_of_hub(counts: Counts | None) -> None:
    """Report the event hub's published batches through ``counts`` (messages, events), read at each scrape."""
    _BATCHES.watch_hub(counts)


def hub_connected(connected: bool) -> None:
    """Note whether the event hub reaches the other nodes now."""
    _HUB_CONNECTED.set(1 if connected else 0)


_CACHE_INVALIDATIONS = Counter(
    "threadline_access_cache_invalidations_total",
    "Access cache keys invalidated by writes of this or another node, by kind (user, thread, member).",
    ["kind"], registry=REGISTRY,
)
_CACHE_ENTRIES = Gauge("threadline_access_cache_entries", "Access cache entries held now.", registry=REGISTRY)
_CACHE_SERVING = Gauge(
    "threadline_access_cache_serving",
    "1 while the access cache may serve; 0 while it is off or suspended (invalidation channel down).",
    registry=REGISTRY,
)
def access_cache_lookup(kind: str, result: str) -> None:
    """Count one access cache lookup (``user``/``member``; ``hit``/``miss``/``bypass``), on the event loop."""
    _HOT.lookup(kind, result)


def access_cache_invalidated(kind: str, count: int = 1) -> None:
    """Count invalidated access cache keys (``user``, ``thread``, ``member``)."""
    _CACHE_INVALIDATIONS.labels(kind).inc(count)


def access_cache_size(entries: int) -> None:
    """Note how many entries the access cache holds."""
    _CACHE_ENTRIES.set(entries)


def access_cache_serving(serving: bool) -> None:
    """Note whether the access cache may serve now."""
    _CACHE_SERVING.set(1 if serving else 0)


def render() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: the Prometheus text exposition of this process."""
    return Response(render(), media_type=CONTENT_TYPE_LATEST)


# -- logs ------------------------------------------------------------------------------------------

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the record's extra fields, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """Format a record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


_LEVELS: Mapping[str, int] = {
    "debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
}


def configure_logging(level: str = "warning", fmt: str = "json", stream: IO[str] | None = None) -> None:
    """Send ``threadline.*`` logs to ``stream`` (stderr) as JSON lines or plain text.

    Args:
        level: ``debug``, ``info`` (adds one access line per request), ``warning`` or ``error``.
        fmt: ``json`` or ``text``.
        stream: where lines go (stderr when None).

    Raises:
        ValueError: an unknown level or format.
    """
    if level.lower() not in _LEVELS:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}")
    if fmt not in ("json", "text"):
        raise ValueError("log format must be json or text")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logger = logging.getLogger("threadline")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(_LEVELS[level.lower()])
    logger.propagate = False
