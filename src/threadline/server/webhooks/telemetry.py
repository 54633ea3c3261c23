"""Per-subscription metrics (on the ``/metrics`` registry) and the per-attempt log."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge

from threadline.server.metrics import REGISTRY

__all__ = ["attempt", "lag", "log"]

log = logging.getLogger("threadline.webhooks")

DELIVERED = Counter("threadline_webhook_delivered_events", "Events delivered, per subscription",
                    ["subscription"], registry=REGISTRY)
FAILED = Counter("threadline_webhook_failed_attempts", "Delivery attempts that failed, per subscription",
                 ["subscription"], registry=REGISTRY)
DEAD = Counter("threadline_webhook_dead_lettered_events", "Events dead-lettered, per subscription",
               ["subscription"], registry=REGISTRY)
RETRYING = Gauge("threadline_webhook_retrying_events", "Events waiting for a retry, per subscription",
                 ["subscription"], registry=REGISTRY)
LAG_EVENTS = Gauge("threadline_webhook_lag_events", "Event-log positions not yet handled, per subscription",
                   ["subscription"], registry=REGISTRY)
LAG_SECONDS = Gauge("threadline_webhook_lag_seconds", "Age of the oldest event not yet handled, per subscription",
                    ["subscription"], registry=REGISTRY)

LEASED = Gauge("threadline_webhook_leased", "1 while this node delivers the subscription (holds its lease)",
               ["subscription"], registry=REGISTRY)


def attempt(sub_id: str, *, count: int, status: int | None, outcome: str, delivery_count: int,
            ms: float, first_id: str, error: str | None = None) -> None:
    """Log one delivery attempt (a JSON line; never the URL's query, the secret or the body)."""
    log.info("webhook delivery attempt", extra={
        "subscription": sub_id, "events": count, "status": status, "outcome": outcome,
        "deliveryCount": delivery_count, "durationMs": round(ms, 1), "firstEventId": first_id, "error": error,
    })
    if outcome == "delivered":
        DELIVERED.labels(sub_id).inc(count)
    else:
        FAILED.labels(sub_id).inc()
    if outcome == "dead-lettered":
        DEAD.labels(sub_id).inc(count)


def lag(sub_id: str, events: int, seconds: float, retrying: int) -> None:
    """Set the lag gauges of a subscription."""
    LAG_EVENTS.labels(sub_id).set(events)
    LAG_SECONDS.labels(sub_id).set(seconds)
    RETRYING.labels(sub_id).set(retrying)
