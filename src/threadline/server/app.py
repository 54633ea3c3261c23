"""The application factory: the Starlette app and the services behind it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from threadline.identity.tokens import TokenIssuer, derive_signing_key
from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.times import now_ms
from threadline.protocol.wire import encode
from threadline.store.base import Store, StoreError

from . import metrics
from .errors import JSON, error_response
from .events import Hub, LocalHub
from .realtime import PATH as REALTIME_PATH
from .realtime import RawSendCapture, RealtimeManager, realtime_endpoint
from .routes import chat, identity
from .routes import webhooks as webhook_routes
from .services.admission import Admission
from .services.identity import IdentityService
from .services.messages import MessageService
from .services.threads import ThreadService
from .settings import Settings
from .throttle import make_throttle
from .webhooks import Dispatcher, config_from
from .webhooks.safety import AllowList
from .webhooks.service import WebhookService
from .webhooks.wake import WakingHub

__all__ = ["create_app", "open_hub", "open_store", "running"]

log = logging.getLogger("threadline.server")


def open_store(settings: Settings) -> Store:
    """The store the settings name (not yet opened)."""
    if settings.is_postgres:
        from threadline.store.postgres import PostgresStore

        return PostgresStore(settings.database_url)
    from threadline.store.sqlite import SqliteStore

    return SqliteStore(settings.database_url, synchronous=settings.sqlite_synchronous)


def open_hub(settings: Settings, store: Store) -> Hub:
    """The event hub the settings name (not yet started)."""
    if settings.events:
        from .redis_hub import RedisHub

        hub: Hub = RedisHub(settings.events, store)
        return hub
    return LocalHub()


async def health(request: Request) -> Response:
    """Liveness: the process answers."""
    return Response(b'{"status":"ok"}', media_type=JSON)


async def ready(request: Request) -> Response:
    """Readiness: the database answers."""
    try:
        await request.app.state.store.ping()
    except (StoreError, OSError) as exc:
        log.warning("readiness check failed: %s", exc)
        return error_response(ChatServiceError(ErrorKind.UNAVAILABLE, "The database is not reachable."))
    return Response(b'{"status":"ready"}', media_type=JSON)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error_response(ChatServiceError(ErrorKind.NOT_FOUND, "No such resource or operation."))
    if status == 405:
        body = encode({"error": {"code": "MethodNotAllowed", "message": "The method is not allowed here."}})
        return Response(body, status_code=405, media_type=JSON)
    return error_response(ChatServiceError(ErrorKind.INTERNAL))


def create_app(settings: Settings, store: Store, hub: Hub) -> Starlette:
    """Build the ASGI app over an opened store and a started hub.

    Args:
        settings: prepared settings (see :meth:`Settings.prepared`).
        store: the opened store.
        hub: the started event hub.

    Returns:
        The Starlette application.
    """
    assert settings.resource_id is not None
    issuer = TokenIssuer(derive_signing_key(settings.key_bytes), settings.resource_id)
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics.metrics_endpoint, methods=["GET"]),
            *chat.routes,
            *identity.routes,
            *webhook_routes.routes,
            WebSocketRoute(REALTIME_PATH, realtime_endpoint),
        ],
        exception_handlers={HTTPException: _http_error},
        middleware=[Middleware(RawSendCapture)],
    )
    app.state.settings = settings
    app.state.store = store
    app.state.hub = hub
    app.state.issuer = issuer
    app.state.identity = IdentityService(store, issuer, settings.resource_id)
    app.state.threads = ThreadService(store, hub, settings.limits, settings.resource_id)
    app.state.messages = MessageService(store, hub, settings.limits)
    app.state.throttle = make_throttle(settings.limits, issuer, settings.throttle, settings.throttle_keys)
    app.state.admission = Admission(store, app.state.throttle)
    app.state.realtime = RealtimeManager(store, hub, app.state.identity, issuer)
    app.state.webhooks = WebhookService(store, AllowList.parse(settings.webhook_allow))
    return app


async def _prune(store: Store, settings: Settings) -> None:
    """Forget events and repeatability ids past their retention, every minute or so."""
    shortest = min(settings.event_retention_seconds, settings.idempotency_retention_seconds)
    while True:
        await asyncio.sleep(min(60, max(1, shortest // 10)))
        try:
            await store.prune_events(now_ms() - settings.event_retention_seconds * 1000)
            await store.prune_idempotency(now_ms() - settings.idempotency_retention_seconds * 1000)
        except StoreError as exc:  # pragma: no cover - logged, retried next round
            log.warning("pruning failed: %s", exc)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Starlette]:
    """Open the store and hub, yield the app, and close both afterwards."""
    store = open_store(settings)
    await store.open()
    hub = open_hub(settings, store)
    try:
        await hub.start()
        pruner = asyncio.create_task(_prune(store, settings))
        deliverer = Dispatcher(store, config_from(settings))
        await deliverer.start()
        try:
            yield create_app(settings, store, WakingHub(hub, deliverer.wake, deliverer.ephemeral))
        finally:
            await deliverer.stop()
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
            await hub.stop()
    finally:
        await store.close()
