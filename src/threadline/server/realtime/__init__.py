"""Real-time: one subscription/fan-out/resume core, two wire protocols.

* :mod:`.core` and :mod:`.cursor` — who receives which event, subscribe-first
  then replay then live without gaps or duplicates, resume positions, token
  revalidation, per-user caps. They know neither protocol.
* :mod:`.native` (+ :mod:`.native_stream`, :mod:`.native_wire`) — the native
  WebSocket protocol at ``/chat/realtime``.
* :mod:`.browser` — the ACS browser SDK's notification channel (Trouter over
  socket.io 0.9).

Neither protocol imports the other. The names below are the native
protocol's, kept here so ``from threadline.server.realtime import ...`` works
as it did when real-time was one module.
"""

from __future__ import annotations

from .native import (
    CLOSE_BAD_REQUEST,
    CLOSE_HEARTBEAT_TIMEOUT,
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_REVOKED,
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_MANY,
    CLOSE_TOO_SLOW,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    PATH,
    RealtimeManager,
    RealtimeOptions,
    realtime_endpoint,
)

__all__ = [
    "CLOSE_BAD_REQUEST",
    "CLOSE_HEARTBEAT_TIMEOUT",
    "CLOSE_INTERNAL",
    "CLOSE_NORMAL",
    "CLOSE_REVOKED",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_TOO_MANY",
    "CLOSE_TOO_SLOW",
    "CLOSE_TRY_AGAIN",
    "CLOSE_UNAUTHORIZED",
    "PATH",
    "RealtimeManager",
    "RealtimeOptions",
    "realtime_endpoint",
]
