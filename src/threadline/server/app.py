"""The application factory: the Starlette app and the services behind it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp

from threadline.identity.tokens import TokenIssuer, derive_signing_key
from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.times import now_ms
from threadline.protocol.wire import encode
from threadline.store.base import Store, StoreError

from . import metrics
from .access_cache import AccessCache
from .cors import cors_middleware, parse_origins
from .edge import Edge
from .errors import JSON, error_response
from .events import Hub, LocalHub
from .explorer import routes as explorer_routes
from .readiness import ready
from .realtime import PATH as REALTIME_PATH
from .realtime import RealtimeManager, RealtimeOptions, realtime_endpoint
from .realtime import browser as browser_rt
from .routes import admin, chat, identity, images
from .routes import webhooks as webhook_routes
from .services.access import Access
from .services.admin import AdminService, limits_dict
from .services.admission import Admission
from .services.identity import IdentityService
from .services.images import ImageService
from .services.messages import MessageService
from .services.retention import RetentionPruner
from .services.threads import ThreadService
from .settings import Settings
from .throttle import make_throttle
from .webhooks import Dispatcher, config_from
from .webhooks.safety import AllowList
from .webhooks.service import WebhookService
from .webhooks.wake import WakingHub

if TYPE_CHECKING:
    from .redis_invalidation import RedisInvalidations

__all__ = ["create_app", "open_access", "open_hub", "open_store", "running"]

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


def open_access(settings: Settings, store: Store) -> tuple[Access, RedisInvalidations | None]:
    """The access cache the deployment allows, and its invalidation channel (not yet started).

    SQLite: one process writes the file, so the cache is on and invalidated in-process.
    PostgreSQL with ``--events`` Redis: on, with invalidations over Redis (suspended while
    the channel is down). PostgreSQL without Redis: off, since other processes may write
    the same database unseen (``docs/design.md``, "Access cache").
    """
    if not settings.is_postgres:
        return Access(store, AccessCache(settings.cache_entries, settings.cache_ttl_seconds)), None
    if not settings.events:
        return Access(store), None
    from .redis_invalidation import RedisInvalidations

    cache = AccessCache(settings.cache_entries, settings.cache_ttl_seconds, serving=False)
    channel = RedisInvalidations(settings.events, cache)
    return Access(store, cache, channel), channel


async def health(request: Request) -> Response:
    """Liveness: the process answers."""
    return Response(b'{"status":"ok"}', media_type=JSON)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error_response(ChatServiceError(ErrorKind.NOT_FOUND, "No such resource or operation."))
    if status == 405:
        body = encode({"error": {"code": "MethodNotAllowed", "message": "The method is not allowed here."}})
        headers = {"x-ms-error-code": "MethodNotAllowed"}
        allow = (exc.headers or {}).get("Allow") if isinstance(exc, HTTPException) else None
        if allow:
            headers["Allow"] = allow
        return Response(body, status_code=405, media_type=JSON, headers=headers)
    return error_response(ChatServiceError(ErrorKind.INTERNAL))


class _App(Starlette):
    """Starlette with :class:`~threadline.server.edge.Edge` as its whole middleware stack."""

    def __init__(self, routes: list[BaseRoute], cors_origins: list[str]) -> None:
        super().__init__(routes=routes)
        self._cors_origins = cors_origins

    def build_middleware_stack(self) -> ASGIApp:
        """The router behind one :class:`Edge` (instead of Starlette's five layers)."""
        cls, args, kwargs = cors_middleware(self._cors_origins)
        return Edge(self.router, lambda inner: cls(inner, *args, **kwargs), _http_error)


def create_app(settings: Settings, store: Store, hub: Hub, access: Access | None = None) -> Starlette:
    """Build the ASGI app over an opened store and a started hub.

    Args:
        settings: prepared settings (see :meth:`Settings.prepared`).
        store: the opened store.
        hub: the started event hub.
        access: the access cache and its started channel (None: :func:`open_access`'s choice for
            SQLite, no cache for PostgreSQL).

    Returns:
        The Starlette application.
    """
    assert settings.resource_id is not None
    issuer = TokenIssuer(derive_signing_key(settings.key_bytes), settings.resource_id)
    app = _App(
        routes=[
            *chat.routes,  # first: the router tries routes in order, and a send is the hottest request
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics.metrics_endpoint, methods=["GET"]),
            *identity.routes,
            *images.routes,
            *admin.routes,
            *explorer_routes,
            *webhook_routes.routes,
            WebSocketRoute(REALTIME_PATH, realtime_endpoint),
            *browser_rt.routes,
        ],
        cors_origins=parse_origins(settings.cors_origins),
    )
    app.state.settings = settings
    app.state.store = store
    app.state.hub = hub
    app.state.issuer = issuer
    if access is None:
        access = open_access(settings, store)[0] if not settings.is_postgres else Access(store)
    app.state.access = access
    app.state.identity = IdentityService(store, issuer, settings.resource_id, access)
    app.state.threads = ThreadService(store, hub, settings.limits, settings.resource_id, access)
    app.state.messages = MessageService(store, hub, settings.limits, access)
    app.state.images = ImageService(store, settings.limits, access)
    app.state.throttle = make_throttle(settings.limits, issuer, settings.throttle, settings.throttle_keys)
    app.state.admission = Admission(store, app.state.throttle, access)
    app.state.realtime = RealtimeManager(store, hub, app.state.identity, issuer, RealtimeOptions(
        queue_bytes=settings.realtime_queue_bytes, connections_per_user=settings.realtime_per_user,
    ))
    app.state.admin = AdminService(store, hub, {
        "limits": limits_dict(settings.limits), "throttle": settings.throttle, "workers": settings.workers,
    })
    app.state.browser_rt = browser_rt.BrowserRealtime(store, hub, app.state.identity, issuer)
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
    from .preflight import open_checked

    store = await open_checked(settings, refuse_others=False)
    hub = open_hub(settings, store)
    access, channel = open_access(settings, store)
    metrics.batches_of_store(("postgres" if settings.is_postgres else "sqlite", store.write_batches))
    try:
        await hub.start()
        if channel is not None:
            await channel.start()
        pruner = asyncio.create_task(_prune(store, settings))
        deliverer = Dispatcher(store, config_from(settings))
        await deliverer.start()
        waking = WakingHub(hub, deliverer.wake, deliverer.ephemeral)  # wakes this node's deliverers at once
        skew_ms = settings.retention_clock_skew_seconds * 1000
        retention = RetentionPruner(store, waking, clock=lambda: now_ms() + skew_ms,
                                    on_deleted=metrics.retention_deleted, access=access)
        expirer = asyncio.create_task(retention.run_forever(settings.retention_interval_seconds))
        try:
            app = create_app(settings, store, waking, access)
            app.state.retention = retention
            yield app
        finally:
            await deliverer.stop()
            for task in (pruner, expirer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await hub.stop()
    finally:
        if channel is not None:
            await channel.stop()
        metrics.batches_of_store(None)
        await store.close()
