"""The async ``CommunicationTokenCredential``; its ``token_refresher`` is a coroutine function."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.credentials import AccessToken

from threadline._shared import token as tokens

__all__ = ["CommunicationTokenCredential"]


class CommunicationTokenCredential:
    """Async credential holding an ACS user access token (a JWT).

    Same behaviour as :class:`threadline.chat.CommunicationTokenCredential`,
    with an ``async`` refresher, an :class:`asyncio.Lock` and an asyncio task
    for proactive refresh.

    Args:
        token: the ACS user access token.
        **kwargs: ``token_refresher`` (``Callable[[], Awaitable[AccessToken]]``)
            and ``proactive_refresh`` (bool, default False).

    Raises:
        TypeError: ``token`` is not a string.
        ValueError: the token is not a JWT with a numeric ``exp``, or
            ``proactive_refresh`` without a ``token_refresher``.
    """

    def __init__(self, token: str, **kwargs: Any) -> None:
        self._token = tokens.parse_token(token)
        self._token_refresher: Callable[[], Awaitable[AccessToken]] | None = kwargs.pop(
            "token_refresher", None
        )
        self._proactive_refresh = bool(kwargs.pop("proactive_refresh", False))
        if self._proactive_refresh and self._token_refresher is None:
            raise ValueError(tokens.PROACTIVE_WITHOUT_REFRESHER)
        self._lock: asyncio.Lock | None = None
        self._timer: asyncio.Task[None] | None = None
        self._closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the current token, refreshing it first if it is about to expire.

        Args:
            *scopes: ignored (ACS tokens carry their scopes).

        Returns:
            The token and its expiry in epoch seconds.

        Raises:
            RuntimeError: a proactive credential was used after :meth:`close`.
            ValueError: the refresher returned an expired token.
            TypeError: the refresher is not a coroutine function.
            AttributeError: the refresher returned something other than an AccessToken.
        """
        if self._proactive_refresh and self._closed:
            raise RuntimeError(tokens.CLOSED_ERROR)
        if self._token_refresher is None or not tokens.expiring_soon(self._token, self._proactive_refresh):
            return self._token
        await self._refresh()
        return self._token

    async def _refresh(self) -> None:
        """Refresh once; concurrent callers use the valid current token or wait for the refresh."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        if self._lock.locked() and tokens.is_valid(self._token):
            return  # another task is refreshing and the current token still works
        async with self._lock:
            if not tokens.expiring_soon(self._token, self._proactive_refresh):
                return  # refreshed by another task while we waited
            assert self._token_refresher is not None
            self._token = tokens.check_refreshed(await self._token_refresher())
        if self._proactive_refresh:
            self._schedule_refresh()

    async def _scheduled_refresh(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timer = None
        with contextlib.suppress(Exception):  # a failed background refresh is retried on demand
            await self._refresh()

    def _schedule_refresh(self) -> None:
        if self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.ensure_future(self._scheduled_refresh(tokens.next_refresh_delay(self._token)))

    async def close(self) -> None:
        """Stop proactive refreshing; a proactive credential cannot be used afterwards."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._closed = True

    async def __aenter__(self) -> CommunicationTokenCredential:
        if self._proactive_refresh:
            if self._closed:
                raise RuntimeError(tokens.CLOSED_ERROR)
            self._schedule_refresh()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()
