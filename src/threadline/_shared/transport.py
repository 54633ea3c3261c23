"""Thread clients send through their ``ChatClient``'s transport, so closing the ``ChatClient`` closes them.

A ``ChatThreadClient`` handed out by ``ChatClient.get_chat_thread_client``
gets a *borrowed* view of the chat client's transport: requests go through
the chat client's one connection pool (one aiohttp session for the async
clients), and closing the thread client leaves that pool alone. Closing the
chat client (or leaving its ``with``/``async with``) closes the pool, so no
thread client is left with a session of its own: no "Unclosed client
session" warnings, however many thread clients were made and dropped.

A thread client asked for different connection settings (another
``connection_verify``, its own ``transport``...) gets a transport of its own;
the chat client keeps it and closes it too.
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.transport import AsyncHttpTransport, HttpTransport

__all__ = ["BorrowedAsyncTransport", "BorrowedTransport", "needs_own_transport"]

#: Settings that shape a transport: a thread client that changes one cannot borrow.
_TRANSPORT_SETTINGS = frozenset({
    "transport", "session", "session_owner", "connection_verify", "connection_cert", "connection_timeout",
    "read_timeout", "connection_data_block_size", "proxies", "use_env_settings",
})


def needs_own_transport(parent: dict[str, Any], overrides: dict[str, Any]) -> bool:
    """Whether ``overrides`` change a transport setting of ``parent`` (so the transport cannot be shared)."""
    return any(key in _TRANSPORT_SETTINGS and parent.get(key) != value for key, value in overrides.items())


class BorrowedTransport(HttpTransport[Any, Any]):
    """Sends through another transport and never closes it.

    Args:
        owner: the transport that owns the connection pool.
    """

    def __init__(self, owner: HttpTransport[Any, Any]) -> None:
        self._owner = owner

    def __enter__(self) -> BorrowedTransport:
        self._owner.open()
        return self

    def __exit__(self, *args: Any) -> None:
        return None

    def open(self) -> None:
        self._owner.open()

    def close(self) -> None:
        return None

    def send(self, request: Any, **kwargs: Any) -> Any:
        return self._owner.send(request, **kwargs)


class BorrowedAsyncTransport(AsyncHttpTransport[Any, Any]):
    """The async twin of :class:`BorrowedTransport`.

    Args:
        owner: the transport that owns the connection pool (an aiohttp session).
    """

    def __init__(self, owner: AsyncHttpTransport[Any, Any]) -> None:
        self._owner = owner

    async def __aenter__(self) -> BorrowedAsyncTransport:
        await self._owner.open()
        return self

    async def __aexit__(self, *args: Any) -> None:
        return None

    async def open(self) -> None:
        await self._owner.open()

    async def close(self) -> None:
        return None

    async def send(self, request: Any, **kwargs: Any) -> Any:
        return await self._owner.send(request, **kwargs)
