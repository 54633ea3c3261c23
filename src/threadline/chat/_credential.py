"""``CommunicationTokenCredential``: an ACS user token, refreshed before it expires."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from azure.core.credentials import AccessToken

from threadline._shared import token as tokens

__all__ = ["CommunicationTokenCredential"]


class CommunicationTokenCredential:
    """Credential holding an ACS user access token (a JWT).

    The token's ``exp`` is read at once. With a ``token_refresher``, a new
    token is fetched when fewer than 2 minutes remain (on demand, in
    :meth:`get_token`), or 10 minutes before expiry in a background timer
    with ``proactive_refresh``. Refreshes happen under a lock, one at a time:
    while one thread refreshes, others keep using the current token if it is
    still valid and wait otherwise.

    Args:
        token: the ACS user access token.
        **kwargs: ``token_refresher`` (``Callable[[], AccessToken]``, the
            ``expires_on`` must be integer epoch seconds) and
            ``proactive_refresh`` (bool, default False). When proactive refresh
            is on, use the credential as a context manager or call :meth:`close`.

    Raises:
        TypeError: ``token`` is not a string.
        ValueError: the token is not a JWT with a numeric ``exp``
            ("Token is not formatted correctly"), or ``proactive_refresh``
            without a ``token_refresher``.
    """

    def __init__(self, token: str, **kwargs: Any) -> None:
        self._token = tokens.parse_token(token)
        self._token_refresher: Callable[[], AccessToken] | None = kwargs.pop("token_refresher", None)
        self._proactive_refresh = bool(kwargs.pop("proactive_refresh", False))
        if self._proactive_refresh and self._token_refresher is None:
            raise ValueError(tokens.PROACTIVE_WITHOUT_REFRESHER)
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._closed = threading.Event()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the current token, refreshing it first if it is about to expire.

        Args:
            *scopes: ignored (ACS tokens carry their scopes).

        Returns:
            The token and its expiry in epoch seconds.

        Raises:
            RuntimeError: a proactive credential was used after :meth:`close`.
            ValueError: the refresher returned an expired token.
            AttributeError: the refresher returned something other than an AccessToken.
        """
        if self._proactive_refresh and self._closed.is_set():
            raise RuntimeError(tokens.CLOSED_ERROR)
        if self._token_refresher is None or not tokens.expiring_soon(self._token, self._proactive_refresh):
            return self._token
        self._refresh()
        return self._token

    def _refresh(self) -> None:
        """Refresh once; concurrent callers use the valid current token or wait for the refresh."""
        blocking = not tokens.is_valid(self._token)
        if not self._lock.acquire(blocking=blocking):
            return  # another thread is refreshing and the current token still works
        try:
            if not tokens.expiring_soon(self._token, self._proactive_refresh):
                return  # refreshed by another thread while we waited
            assert self._token_refresher is not None
            self._token = tokens.check_refreshed(self._token_refresher())
        finally:
            self._lock.release()
        if self._proactive_refresh:
            self._schedule_refresh()

    def _scheduled_refresh(self) -> None:
        with contextlib.suppress(Exception):  # a failed background refresh is retried on demand
            self._refresh()

    def _schedule_refresh(self) -> None:
        if self._closed.is_set():
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = tokens.next_refresh_delay(self._token)
        if delay <= threading.TIMEOUT_MAX:
            self._timer = threading.Timer(delay, self._scheduled_refresh)
            self._timer.daemon = True
            self._timer.start()

    def close(self) -> None:
        """Stop proactive refreshing; a proactive credential cannot be used afterwards."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._closed.set()

    def __enter__(self) -> CommunicationTokenCredential:
        if self._proactive_refresh:
            if self._closed.is_set():
                raise RuntimeError(tokens.CLOSED_ERROR)
            self._schedule_refresh()
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()
