"""The webhook admin API under ``/admin/webhooks`` (``docs/webhooks.md``).

Every route but ``validate`` is HMAC-signed with the access key exactly as the
identity API is (the official identity SDK's signing works unchanged), or carries
an Explorer session (cookie, plus the CSRF header on writes) as every other
``/admin`` route may (``admin_session.py``). The
``validate`` route is the Event Grid ``validationUrl``: its unguessable code
is the credential, as on Azure.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response
from starlette.routing import Route

from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.server.admin_session import authorized_body
from threadline.server.answers import json, no_content
from threadline.server.endpoint import Call, endpoint
from threadline.server.metrics import REGISTRY
from threadline.server.webhooks.model import SubscriptionError, public_view
from threadline.server.webhooks.safety import DestinationError
from threadline.server.webhooks.service import WebhookService, dead_letter_view
from threadline.store.webhooks import SubscriptionRecord

__all__ = ["ADMIN_VERSIONS", "routes"]

#: api-versions of the webhook admin API (the second is the rest of ``/admin``'s, which the Explorer sends).
ADMIN_VERSIONS = ("2025-03-15", "2026-11-28")

admin = endpoint(ADMIN_VERSIONS)


class AddRequest(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    url: str
    schema: str = "eventgrid"
    events: list[str] | None = None
    subject_prefix: str | None = None
    secret: str | None = None
    batch_size: int | None = None
    max_delivery_attempts: int | None = None
    event_time_to_live_in_minutes: int | None = None


class ReplayRequest(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    since: str | None = None


#: The per-subscription series of ``telemetry.py``, by the name the API gives them.
_METRICS = {
    "threadline_webhook_delivered_events_total": "delivered",
    "threadline_webhook_failed_attempts_total": "failedAttempts",
    "threadline_webhook_dead_lettered_events_total": "deadLettered",
    "threadline_webhook_retrying_events": "retrying",
    "threadline_webhook_lag_events": "lagEvents",
    "threadline_webhook_lag_seconds": "lagSeconds",
}


def _node_metrics() -> dict[str, dict[str, float]]:
    """This process's per-subscription webhook metrics, by subscription id (only the delivering node counts)."""
    found: dict[str, dict[str, float]] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            name = _METRICS.get(sample.name)
            sub_id = sample.labels.get("subscription")
            if name is not None and sub_id is not None:
                found.setdefault(sub_id, {})[name] = sample.value
    return found


def _view(sub: SubscriptionRecord, metrics: dict[str, dict[str, float]]) -> dict[str, Any]:
    view = public_view(sub)
    view["metrics"] = metrics.get(sub.id, {})
    return view


def _service(call: Call) -> WebhookService:
    service: WebhookService = call.state.webhooks
    return service


def _not_found() -> ChatServiceError:
    return ChatServiceError(ErrorKind.NOT_FOUND, "No such webhook subscription.", target="id")


@admin
async def add_webhook(call: Call) -> Response:
    request = call.decode(await authorized_body(call), AddRequest)
    try:
        sub = await _service(call).add(
            request.url, schema=request.schema, event_types=request.events, subject_prefix=request.subject_prefix,
            secret=request.secret, batch_size=request.batch_size, max_attempts=request.max_delivery_attempts,
            ttl_minutes=request.event_time_to_live_in_minutes,
        )
    except SubscriptionError as exc:
        raise ChatServiceError(ErrorKind.INVALID, str(exc), target=exc.target) from None
    except DestinationError as exc:
        raise ChatServiceError(ErrorKind.INVALID, str(exc), target="url") from None
    return json(call, public_view(sub), 201)


@admin
async def list_webhooks(call: Call) -> Response:
    await authorized_body(call)
    metrics = _node_metrics()
    return json(call, {"value": [_view(s, metrics) for s in await _service(call).all()]})


@admin
async def get_webhook(call: Call) -> Response:
    await authorized_body(call)
    sub = await _service(call).get(call.path("sub_id"))
    if sub is None:
        raise _not_found()
    return json(call, _view(sub, _node_metrics()))


@admin
async def remove_webhook(call: Call) -> Response:
    await authorized_body(call)
    if not await _service(call).remove(call.path("sub_id")):
        raise _not_found()
    return no_content(call)


@admin
async def list_webhook_deadletters(call: Call) -> Response:
    await authorized_body(call)
    sub_id = call.path("sub_id")
    if await _service(call).get(sub_id) is None:
        raise _not_found()
    dead = await _service(call).dead_letters(sub_id, call.query_int("maxPageSize"))
    return json(call, {"value": [dead_letter_view(d) for d in dead]})


@admin
async def replay_webhook(call: Call) -> Response:
    request = call.decode(await authorized_body(call), ReplayRequest, empty=ReplayRequest())
    sub_id = call.path("sub_id")
    if await _service(call).get(sub_id) is None:
        raise _not_found()
    marked, cursor = await _service(call).replay(sub_id, request.since)
    return json(call, {"deadLettersReplayed": marked, "cursor": cursor}, 202)


async def validate_webhook(request: object) -> Response:
    """``GET /admin/webhooks/{id}/validate?code=...``: the Event Grid ``validationUrl``."""
    from starlette.requests import Request

    assert isinstance(request, Request)
    code = request.query_params.get("code") or ""
    sub_id = request.path_params["sub_id"]
    if not code or "\x00" in code or "\x00" in sub_id or not await request.app.state.webhooks.validate(sub_id, code):
        body = b'{"error":{"code":"NotFound","message":"No pending subscription with this code."}}'
        return Response(body, status_code=404, media_type="application/json",
                         headers={"x-ms-error-code": "NotFound"})
    return Response(b'{"status":"validated"}', media_type="application/json")


routes = [
    Route("/admin/webhooks", add_webhook, methods=["POST"]),
    Route("/admin/webhooks", list_webhooks, methods=["GET"]),
    Route("/admin/webhooks/{sub_id}", get_webhook, methods=["GET"]),
    Route("/admin/webhooks/{sub_id}", remove_webhook, methods=["DELETE"]),
    Route("/admin/webhooks/{sub_id}/deadletters", list_webhook_deadletters, methods=["GET"]),
    Route("/admin/webhooks/{sub_id}/:replay", replay_webhook, methods=["POST"]),
    Route("/admin/webhooks/{sub_id}/validate", validate_webhook, methods=["GET"]),
]
