"""The browser notification channel: what ``@azure/communication-chat`` (browser build) speaks.

The ACS JavaScript SDK asks ``GET /chat/config/realTimeNotifications`` where
its channel is, then speaks Trouter over socket.io 0.9 (allocation, handshake,
WebSocket or xhr-polling, registrar). This package serves that protocol from
Threadline itself, fed by the same hub and event log as ``/chat/realtime``.
``docs/realtime.md`` ("Browser protocol") describes it.

Modules: :mod:`.frames` (socket.io packets), :mod:`.encoding` (event bodies),
:mod:`.session` (one session's stream), :mod:`.manager` (sessions of a node),
:mod:`.http` and :mod:`.websocket` (the routes).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import http, websocket
from .manager import BrowserOptions, BrowserRealtime

__all__ = ["BrowserOptions", "BrowserRealtime", "routes"]

#: Every route of the channel.
routes: list[BaseRoute] = [*http.routes, *websocket.routes]
