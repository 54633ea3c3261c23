"""The subscription model shared by the CLI, the admin API and the worker."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from threadline.protocol.times import now_ms
from threadline.store.webhooks import SubscriptionRecord

from .envelopes import EVENTGRID, SCHEMAS
from .mapping import CHAT_EVENT_TYPES, PREFIX, ChatEvent

__all__ = ["Defaults", "SubscriptionError", "matches", "new_subscription", "public_view"]

MAX_BATCH = 5000


class SubscriptionError(ValueError):
    """A subscription request is invalid; the message says which field and why."""

    def __init__(self, message: str, target: str) -> None:
        super().__init__(message)
        self.target = target


@dataclass(frozen=True, slots=True)
class Defaults:
    """Event Grid's retry-policy defaults."""

    max_attempts: int = 30
    ttl_minutes: int = 1440
    batch_size: int = 1


def _event_types(types: list[str] | None) -> list[str] | None:
    if not types:
        return None
    out = []
    for raw in types:
        name = raw.strip()
        if not name:
            continue
        full = name if name.startswith(PREFIX) else PREFIX + name
        if full not in CHAT_EVENT_TYPES:
            raise SubscriptionError(f"unknown event type {name!r}", "events")
        out.append(full)
    return out or None


def new_subscription(
    url: str,
    *,
    schema: str = EVENTGRID,
    event_types: list[str] | None = None,
    subject_prefix: str | None = None,
    secret: str | None = None,
    batch_size: int | None = None,
    max_attempts: int | None = None,
    ttl_minutes: int | None = None,
    defaults: Defaults = Defaults(),
) -> SubscriptionRecord:
    """Validate a request and build the (pending) subscription.

    Args:
        url: the destination (its safety is checked separately, see :mod:`.safety`).
        schema: ``eventgrid`` or ``cloudevents``.
        event_types: types to deliver, with or without the ``Microsoft.Communication.`` prefix.
        subject_prefix: deliver only subjects starting with it.
        secret: HMAC-SHA256 signing secret.
        batch_size: events per POST (1-5000).
        max_attempts: attempts per event (1-30).
        ttl_minutes: minutes an event may wait (1-1440).
        defaults: the values of omitted settings.

    Returns:
        The record (cursor filled in by the store).

    Raises:
        SubscriptionError: a field is out of range.
    """
    if schema not in SCHEMAS:
        raise SubscriptionError("schema must be eventgrid or cloudevents", "schema")
    batch = defaults.batch_size if batch_size is None else batch_size
    attempts = defaults.max_attempts if max_attempts is None else max_attempts
    ttl = defaults.ttl_minutes if ttl_minutes is None else ttl_minutes
    if not 1 <= batch <= MAX_BATCH:
        raise SubscriptionError(f"batch size must be 1 to {MAX_BATCH}", "batchSize")
    if not 1 <= attempts <= 30:
        raise SubscriptionError("max attempts must be 1 to 30", "maxDeliveryAttempts")
    if not 1 <= ttl <= 1440:
        raise SubscriptionError("the time to live must be 1 to 1440 minutes", "eventTimeToLiveInMinutes")
    if secret is not None and not 8 <= len(secret) <= 256:
        raise SubscriptionError("the secret must have 8 to 256 characters", "secret")
    if subject_prefix is not None and len(subject_prefix) > 1024:
        raise SubscriptionError("the subject prefix is too long", "subjectPrefix")
    return SubscriptionRecord(
        id="wh_" + secrets.token_hex(8), url=url, schema=schema, event_types=_event_types(event_types),
        subject_prefix=subject_prefix or None, secret=secret, status="pending",
        validation_code=secrets.token_urlsafe(24), batch_size=batch, max_attempts=attempts,
        ttl_minutes=ttl, created_ms=now_ms(), cursor="",
    )


def matches(sub: SubscriptionRecord, event: ChatEvent) -> bool:
    """Whether the subscription's filters let an event through."""
    if sub.event_types is not None and event.event_type not in sub.event_types:
        return False
    return sub.subject_prefix is None or event.subject.startswith(sub.subject_prefix)


def public_view(sub: SubscriptionRecord) -> dict[str, Any]:
    """The subscription as the CLI and admin API show it: never the secret nor the validation code."""
    return {
        "id": sub.id, "url": sub.url, "schema": sub.schema, "events": sub.event_types,
        "subjectPrefix": sub.subject_prefix, "hasSecret": sub.secret is not None, "status": sub.status,
        "batchSize": sub.batch_size, "maxDeliveryAttempts": sub.max_attempts,
        "eventTimeToLiveInMinutes": sub.ttl_minutes, "cursor": sub.cursor, "attempts": sub.attempts,
        "deliverer": sub.lease_owner,
    }
