"""Envelopes: the Event Grid schema and CloudEvents 1.0 (structured JSON).

Both carry the same :class:`~.mapping.ChatEvent`: Event Grid as
``{id, topic, subject, data, eventType, dataVersion, metadataVersion, eventTime}``,
CloudEvents as ``{id, source, type, subject, time, specversion, datacontenttype, data}``
with ``source`` = the topic, ``type`` = the event type. A delivery body is a
JSON array of envelopes, as Event Grid sends it, even for one event; only
CloudEvents without batching get one event object, as Event Grid does.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from .mapping import ChatEvent, format_event_time

__all__ = [
    "CLOUDEVENTS",
    "EVENTGRID",
    "SCHEMAS",
    "SIGNATURE_HEADER",
    "body",
    "cloud_event",
    "default_topic",
    "eventgrid_event",
    "sign",
    "validation_event",
]

EVENTGRID = "eventgrid"
CLOUDEVENTS = "cloudevents"
SCHEMAS = (EVENTGRID, CLOUDEVENTS)

#: The header carrying ``sha256=<hex HMAC-SHA256 of the body with the subscription secret>``.
SIGNATURE_HEADER = "x-threadline-signature"

VALIDATION_TYPE = "Microsoft.EventGrid.SubscriptionValidationEvent"


def default_topic(resource_id: str) -> str:
    """The ARM-like resource id used as ``topic``/``source`` unless configured.

    Args:
        resource_id: the Threadline resource id (a GUID).

    Returns:
        ``/subscriptions/{resource_id}/resourceGroups/threadline/providers/
        Microsoft.Communication/communicationServices/threadline``.
    """
    return (
        f"/subscriptions/{resource_id}/resourceGroups/threadline/providers/"
        "Microsoft.Communication/communicationServices/threadline"
    )


def eventgrid_event(event: ChatEvent, topic: str) -> dict[str, Any]:
    """The Event Grid schema envelope of one event."""
    return {
        "id": event.id,
        "topic": topic,
        "subject": event.subject,
        "data": event.data,
        "eventType": event.event_type,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": format_event_time(event.time_ms),
    }


def cloud_event(event: ChatEvent, topic: str) -> dict[str, Any]:
    """The CloudEvents 1.0 structured-mode envelope of one event."""
    return {
        "id": event.id,
        "source": topic,
        "type": event.event_type,
        "subject": event.subject,
        "time": format_event_time(event.time_ms),
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "data": event.data,
    }


def body(events: Sequence[ChatEvent], schema: str, topic: str, *, single: bool = False) -> bytes:
    """The JSON body a delivery POSTs: an array, as Event Grid sends it.

    Args:
        events: the batch, in order.
        schema: :data:`EVENTGRID` or :data:`CLOUDEVENTS`.
        topic: the resource id.
        single: for CloudEvents without batching (batch size 1), one event object
            (``application/cloudevents+json``), as Event Grid sends it.

    Returns:
        The UTF-8 JSON body.
    """
    if schema == CLOUDEVENTS and single and len(events) == 1:
        return msgspec.json.encode(cloud_event(events[0], topic))
    wrap = eventgrid_event if schema == EVENTGRID else cloud_event
    return msgspec.json.encode([wrap(e, topic) for e in events])


def validation_event(subscription_id: str, code: str, url: str | None, topic: str, now_ms: int) -> bytes:
    """The ``SubscriptionValidationEvent`` array sent before any Event Grid delivery."""
    data: dict[str, Any] = {"validationCode": code}
    if url is not None:
        data["validationUrl"] = url
    envelope = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{subscription_id}/{code}")),
        "topic": topic,
        "subject": "",
        "data": data,
        "eventType": VALIDATION_TYPE,
        "eventTime": format_event_time(now_ms),
        "metadataVersion": "1",
        "dataVersion": "2",
    }
    return msgspec.json.encode([envelope])


def sign(secret: str, payload: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
