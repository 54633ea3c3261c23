"""``GET /ready``: whether this node can serve writes right now, and why not.

Not ready while the database is unreachable or read-only, or while the Redis
event hub (``--events``) is configured but unreachable. The reasons are in
the ACS-shaped 503 body; each change of state is logged once at WARNING.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.store.base import StoreError, StoreReadOnly

from .errors import JSON, error_response

__all__ = ["problems", "ready"]

log = logging.getLogger("threadline.server")


async def problems(state: Any) -> list[str]:
    """Why the node is not ready (empty when it is).

    Args:
        state: the app's state (its ``store`` and ``hub``).

    Returns:
        One sentence per problem.
    """
    found: list[str] = []
    try:
        await state.store.ping()
    except StoreReadOnly as exc:
        found.append(f"the database is read-only ({exc})")
    except (StoreError, OSError) as exc:
        found.append(f"the database is not reachable ({exc})")
    if getattr(state.hub, "connected", True) is False:
        found.append("the Redis event hub (--events) is not reachable")
    return found


async def ready(request: Request) -> Response:
    """Readiness: 200 ``{"status":"ready"}``, or 503 with the reasons in the ACS error body."""
    state = request.app.state
    found = await problems(state)
    reason = "; ".join(found) or None
    if reason != getattr(state, "not_ready", None):
        if reason:
            log.warning("not ready: %s", reason)
        else:
            log.warning("ready again")
        state.not_ready = reason
    if reason:
        return error_response(ChatServiceError(ErrorKind.UNAVAILABLE, f"Not ready: {reason}."))
    return Response(b'{"status":"ready"}', media_type=JSON)
