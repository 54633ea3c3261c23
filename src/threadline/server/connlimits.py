"""Connection caps: open connections per process, real-time connections per user.

:class:`ConnectionLimiter` holds every open connection of a server process
(HTTP and HTTPS listeners share one). At the cap, a new connection first takes
the place of the *oldest* connection that is not doing anything useful: one
that has not finished sending its request head yet (a slowloris socket) or an
idle keep-alive. Only when every open connection is busy (a request in flight,
a WebSocket) is the new one refused. So a flood of silent or trickling
sockets can never hold more than the cap, and a real client that sends its
request at once still gets in: it is always the newest, the flood the oldest.

:class:`UserConnectionCap` counts the real-time connections of each user.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from . import metrics

__all__ = ["ConnectionLimiter", "UserConnectionCap"]


class ConnectionLimiter:
    """The open-connection cap of one server process.

    Connections are keyed by their transport. A connection is *idle* (may be
    shed) from its accept until its request head is complete, and again
    between keep-alive requests; *busy* otherwise.

    Args:
        max_connections: how many connections may be open at once (at least 1).
    """

    def __init__(self, max_connections: int) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self._open: set[asyncio.Transport] = set()
        #: Idle connections, oldest first.
        self._idle: OrderedDict[asyncio.Transport, None] = OrderedDict()

    @property
    def open_count(self) -> int:
        """How many connections are open now."""
        return len(self._open)

    def admit(self, transport: asyncio.Transport) -> bool:
        """Take a new connection (idle until its request head is complete).

        At the cap, the oldest idle connection is aborted to make room.

        Args:
            transport: the new connection's transport.

        Returns:
            False when the cap is reached and every open connection is busy:
            the caller refuses the connection.
        """
        if len(self._open) >= self.max_connections:
            if not self._idle:
                metrics.connection_refused()
                return False
            oldest, _ = self._idle.popitem(last=False)
            self._open.discard(oldest)
            metrics.connection_shed()
            oldest.abort()
        self._open.add(transport)
        self._idle[transport] = None
        metrics.connections_open(len(self._open))
        return True

    def idle(self, transport: asyncio.Transport) -> None:
        """The connection waits for a request: it may be shed (it becomes the newest idle one)."""
        if transport in self._open:
            self._idle[transport] = None
            self._idle.move_to_end(transport)

    def busy(self, transport: asyncio.Transport) -> None:
        """The connection serves a request or a WebSocket: it is not shed."""
        self._idle.pop(transport, None)

    def release(self, transport: asyncio.Transport) -> None:
        """The connection closed (idempotent)."""
        if transport in self._open:
            self._open.discard(transport)
            self._idle.pop(transport, None)
            metrics.connections_open(len(self._open))


class UserConnectionCap:
    """How many real-time connections each user holds, against a cap.

    Args:
        per_user: the most connections one user may hold at once (at least 1).
    """

    def __init__(self, per_user: int) -> None:
        if per_user < 1:
            raise ValueError("the per-user connection cap must be at least 1")
        self.per_user = per_user
        self._counts: dict[str, int] = {}

    def acquire(self, user_id: str) -> bool:
        """Count one more connection of a user.

        Returns:
            False (and counts nothing) when the user holds the cap already.
        """
        count = self._counts.get(user_id, 0)
        if count >= self.per_user:
            return False
        self._counts[user_id] = count + 1
        return True

    def release(self, user_id: str) -> None:
        """Count one connection of a user fewer (call once per successful :meth:`acquire`)."""
        count = self._counts.get(user_id, 0) - 1
        if count > 0:
            self._counts[user_id] = count
        else:
            self._counts.pop(user_id, None)

    def count(self, user_id: str) -> int:
        """How many connections a user holds now."""
        return self._counts.get(user_id, 0)
