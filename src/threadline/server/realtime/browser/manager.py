"""The browser notification channel's state on one node: sessions, resume positions, token checks.

Sessions live in this process. A client that reconnects to the same node
resumes from the last event it answered; one that reaches another node (or a
restarted one) resumes from the position carried in its cached
``connectparams`` (``pos``, refreshed at every allocation), so nothing is lost
and at most the events since its last connection are delivered again. Events
reach sessions through the same hub as ``/chat/realtime``, so sessions on any
node see writes made on any node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import msgspec
from prometheus_client import Counter, Gauge

from threadline.identity.tokens import InvalidToken, TokenClaims, TokenIssuer
from threadline.protocol.errors import ChatServiceError
from threadline.server.events import Hub
from threadline.server.metrics import REGISTRY
from threadline.server.services.identity import IdentityService
from threadline.store.base import Store, StoreError
from threadline.store.records import Event

from .. import cursor
from ..core import PENDING, Checker, UserConnectionCap, token_verdicts
from . import frames
from .encoding import notification_body
from .session import Session

__all__ = ["SESSIONS", "SESSION_ENDS", "BrowserOptions", "BrowserRealtime", "Refused"]

log = logging.getLogger("threadline.server.browser_rt")

#: Browser notification sessions this process holds (handshaken, connected or polling).
SESSIONS = Gauge("threadline_browser_sessions", "Browser (Trouter) notification sessions open now.",
                 registry=REGISTRY)
#: Sessions ended, by why.
SESSION_ENDS = Counter(
    "threadline_browser_session_ends_total",
    "Browser notification sessions ended, by reason (client, replaced, unauthorized, overflow, silent, "
    "never_connected, shutdown, store_error).",
    ["reason"], registry=REGISTRY,
)
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class BrowserOptions:
    """Tuning of the browser notification channel.

    Attributes:
        heartbeat_seconds: how often the server sends ``2::``.
        advertised_timeout: heartbeat and close timeouts given in the handshake (client waits 2 s more).
        poll_seconds: how long an xhr-polling GET waits for packets before answering ``8::``.
        pending_seconds: how long a handshaken session may wait for its transport.
        revalidate_seconds: how often tokens are checked for revocation, deletion and expiry.
        queue_frames: packets (or unanswered notifications) a session may have before it is closed.
        queue_chars: characters a session may have queued before it is closed.
        replay_page: events read from the store per replay query.
        buffer_events: live events kept while replaying before reading them from the store instead.
        sessions_per_user: open sessions one user may have on this node.
        resume_entries: resume positions remembered for sessions that ended.
        ttl_seconds: the connection ``ttl`` given to clients.
        refresh_seconds: the least time between two ``trouter.connected`` refreshing the client's
            cached resume position (WebSocket sessions only).
    """

    heartbeat_seconds: float = 25.0
    advertised_timeout: int = 60
    poll_seconds: float = 20.0
    pending_seconds: float = 30.0
    revalidate_seconds: float = 2.0
    queue_frames: int = 2048
    queue_chars: int = 2 * 1024 * 1024
    replay_page: int = 500
    buffer_events: int = 4096
    sessions_per_user: int = 32
    resume_entries: int = 10000
    ttl_seconds: int = 3600
    refresh_seconds: float = 1.0

    @classmethod
    def from_env(cls) -> BrowserOptions:
        """Defaults, with ``THREADLINE_BROWSER_HEARTBEAT`` (seconds) and ``THREADLINE_BROWSER_QUEUE``
        (packets a session may have queued or unanswered) applied when set.

        Raises:
            ValueError: a value is not a positive number.
        """
        options = cls()
        heartbeat = os.environ.get("THREADLINE_BROWSER_HEARTBEAT")
        queue = os.environ.get("THREADLINE_BROWSER_QUEUE")
        if heartbeat:
            options = replace(options, heartbeat_seconds=float(heartbeat))
        if queue:
            options = replace(options, queue_frames=int(queue))
        if options.heartbeat_seconds <= 0 or options.queue_frames <= 0:
            raise ValueError("THREADLINE_BROWSER_HEARTBEAT and THREADLINE_BROWSER_QUEUE must be positive")
        return options


class Refused(Exception):
    """An HTTP request of the channel is refused.

    Args:
        status: the HTTP status.
        reason: a short reason (``unauthorized``...).
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _token_id(value: str | None) -> str | None:
    """A client-supplied session id when it is one of ours (32 hex digits)."""
    if value and len(value) == 32 and all(c in "0123456789abcdef" for c in value):
        return value
    return None


class BrowserRealtime:
    """Every browser notification session of this process.

    Args:
        store: the opened store.
        hub: the started hub.
        identity: verifies tokens against revocation and deletion.
        issuer: reads token claims.
        options: tuning.
    """

    def __init__(
        self, store: Store, hub: Hub, identity: IdentityService, issuer: TokenIssuer,
        options: BrowserOptions | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.identity = identity
        self.issuer = issuer
        self.options = options or BrowserOptions.from_env()
        self.sessions: dict[str, Session] = {}
        self._resume: OrderedDict[str, tuple[str, cursor.Point]] = OrderedDict()
        self.user_cap = UserConnectionCap(self.options.sessions_per_user)
        self._checker = Checker(self.revalidate, lambda: bool(self.sessions), self.options.revalidate_seconds,
                                "browser session")
        self._data: tuple[Event | None, dict[str, Any] | None] = (None, None)
        self._body: tuple[Event | None, str, msgspec.Raw | None] = (None, "", None)

    # -- tokens -----------------------------------------------------------------------------------------

    async def authenticate(self, token: str | None) -> TokenClaims:
        """Verify an ``X-Skypetoken`` (an ACS user token with the chat scope).

        Raises:
            Refused: 401 for a missing, invalid, expired or revoked token; 503 when the store fails.
        """
        if not token:
            raise Refused(401, "unauthorized")
        try:
            claims = self.issuer.verify(token)
            actor = await self.identity.authenticate(token)
        except (InvalidToken, ChatServiceError):
            raise Refused(401, "unauthorized") from None
        except StoreError:
            raise Refused(503, "unavailable") from None
        if not actor.can_chat:
            raise Refused(403, "forbidden")
        return claims

    # -- allocation and handshake -----------------------------------------------------------------------

    async def _position(self, user_id: str, sr: str | None, pos: str | None) -> cursor.Point | None:
        """Where a client session resumes: the furthest of this node's record and the client's ``pos``.

        Both are resume tokens up to which the client has answered every notification in each
        partition (``pos`` is refreshed at each allocation and by repeated ``trouter.connected``), so
        the furthest, partition by partition, loses nothing; None means "from now". An old integer
        ``pos`` (or a token of another partitioning) with nothing known here stays as it was sent:
        the session answers it with ``trouter.message_loss`` (resume impossible).
        """
        known: list[cursor.Point] = []
        if sr is not None:
            live = [s.resume_position for s in self.sessions.values() if s.sr == sr and s.user_id == user_id]
            record = self._resume.get(sr)
            if live and live[-1] is not None:
                known.append(live[-1])
            elif record is not None and record[0] == user_id:
                known.append(record[1])
        if pos:
            with contextlib.suppress(ValueError):  # not a position: ignored, as the client's other hints
                known.append(cursor.parse(pos))
        return cursor.furthest(known, self.store.partitions)

    async def allocate(self, token: str | None, query: dict[str, str], base: str) -> dict[str, Any]:
        """Answer ``POST /v4/a``: the session's URLs and the ``connectparams`` to connect with.

        Args:
            token: the ``X-Skypetoken`` header.
            query: the request's query (cached ``connectparams`` on a reconnect).
            base: the public base URL the client reached.

        Returns:
            The allocation JSON.

        Raises:
            Refused: see :meth:`authenticate`.
        """
        claims = await self.authenticate(token)
        sr = _token_id(query.get("sr")) or secrets.token_hex(16)
        position = await self._position(claims.user_id, sr, query.get("pos"))
        if position is None:
            try:
                position = cursor.Cursor((await self.store.event_bounds())[1])
            except StoreError:
                raise Refused(503, "unavailable") from None
        return self._allocation(sr, position, base)

    def _allocation(self, sr: str, position: cursor.Point | None, base: str) -> dict[str, Any]:
        params: dict[str, Any] = {"sr": sr, "se": str(int(time.time() * 1000) + 7 * 86400 * 1000), "sp": "connect"}
        if position is not None:
            params["pos"] = cursor.encode(position)  # a token: 'p', hex digits and dots (URL-safe)
        return {
            "id": sr, "ccid": sr[:8], "socketio": f"{base}/", "url": f"{base}/trouter/c/{sr}/",
            "surl": f"{base}/trouter/s/{sr}", "ttl": str(self.options.ttl_seconds), "connectparams": params,
        }

    def connected_args(self, session: Session, position: cursor.Point | None) -> dict[str, Any]:
        """The argument of ``trouter.connected``: it replaces the client's cached allocation, so its
        ``connectparams.pos`` (a resume token) is where a reconnect to any node resumes."""
        return self._allocation(session.sr, position, session.base)

    async def handshake(self, token: str | None, query: dict[str, str], base: str) -> str:
        """Answer the socket.io handshake: create a session bound to the token's user.

        Returns:
            ``<sid>:<heartbeat>:<close>:websocket,xhr-polling``.

        Raises:
            Refused: see :meth:`authenticate`; 429 when the user has too many sessions here.
        """
        claims = await self.authenticate(token)
        sr = _token_id(query.get("sr")) or secrets.token_hex(16)
        start = await self._position(claims.user_id, sr, query.get("pos"))
        for other in [s for s in self.sessions.values() if s.sr == sr and s.user_id == claims.user_id]:
            other.close(frames.disconnect("dup"), reason="replaced")  # the client replaced that connection
        if not self.user_cap.acquire(claims.user_id):
            raise Refused(429, "too many sessions")
        session = Session(self, secrets.token_hex(16), claims, sr, start, base)
        self.sessions[session.sid] = session
        SESSIONS.inc()
        self._checker.ensure()
        timeout = self.options.advertised_timeout
        return f"{session.sid}:{timeout}:{timeout}:websocket,xhr-polling"

    def session_for(self, sid: str, user_id: str | None = None) -> Session | None:
        """The open session with this id (owned by ``user_id`` when given)."""
        session = self.sessions.get(sid)
        if session is None or (user_id is not None and session.user_id != user_id):
            return None
        return session

    def ended(self, session: Session, reason: str) -> None:
        """Forget a closed session; remember where its client should resume."""
        if self.sessions.pop(session.sid, None) is not None:
            SESSIONS.dec()
            self.user_cap.release(session.user_id)
            SESSION_ENDS.labels(reason).inc()
        position = session.resume_position
        if position is not None:
            self._resume[session.sr] = (session.user_id, position)
            self._resume.move_to_end(session.sr)
            while len(self._resume) > self.options.resume_entries:
                self._resume.popitem(last=False)

    # -- events -----------------------------------------------------------------------------------------

    def notification(self, event: Event, user_id: str) -> msgspec.Raw | None:
        """The notification body of an event for one user, as the JSON string a frame carries.

        The body depends on the event and the recipient only (the request id, URL and ``MS-CV``
        around it are the session's), and the hub hands an event to each user's sessions in
        turn: so the payload is decoded once per event and the body encoded once per (event,
        user), then reused by that user's other sessions (up to ``sessions_per_user``).

        Args:
            event: the event, as the hub or the replay hands it.
            user_id: the recipient.

        Returns:
            The body, encoded as a JSON string (for the frame's ``body``), or None for an event
            the SDK has no notification for (or an undecodable payload).
        """
        cached_event, cached_user, cached = self._body
        if event is cached_event and user_id == cached_user:
            return cached
        data = self._event_data(event)
        body = notification_body(event.type, data, user_id) if data is not None else None
        result = msgspec.Raw(_encode(body)) if body is not None else None
        self._body = (event, user_id, result)
        return result

    def _event_data(self, event: Event) -> dict[str, Any] | None:
        """An event's payload, decoded once per event (for all its recipients)."""
        cached_event, cached = self._data
        if event is cached_event:
            return cached
        try:
            data = _decode(event.payload)
        except msgspec.DecodeError:
            data = None
        result = data if isinstance(data, dict) else None
        self._data = (event, result)
        return result

    # -- checks -----------------------------------------------------------------------------------------

    async def revalidate(self) -> None:
        """Close sessions whose token was revoked or expired or whose identity was deleted; reap idle ones."""
        sessions = list(self.sessions.values())
        if not sessions:
            return
        clock = time.monotonic()
        for session in sessions:
            if session.state == PENDING and clock - session.created > self.options.pending_seconds:
                session.close(None, reason="never_connected")
            elif session.state != PENDING and clock - session.last_seen > self.options.advertised_timeout + 5:
                session.close(frames.disconnect(), reason="silent")  # no heartbeat echo, ping or poll for too long
        sessions = [s for s in sessions if not s.closed]
        verdicts = await token_verdicts(self.store, [(s.user_id, s.claims) for s in sessions])
        for session, verdict in zip(sessions, verdicts, strict=True):
            if verdict is not None:  # identity deleted, token revoked or expired
                session.close(frames.disconnect({"reason": "unauthorized"}), reason="unauthorized")

    async def shutdown(self) -> None:
        """Close every session (clients reconnect and resume) and stop the checker."""
        for session in list(self.sessions.values()):
            session.close(frames.disconnect(), reason="shutdown")
        await self._checker.stop()
