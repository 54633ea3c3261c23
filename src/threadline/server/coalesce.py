"""One socket write per small answer: the head and the body of a response sent together.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, and the body on ``http.response.body``: two ``send``
system calls, each pushing a TCP segment (the sockets are ``TCP_NODELAY``) and
waking the client. For a small JSON answer the pair is about a fifth of the
CPU a request costs. :class:`HeldHead` stands in for the transport of one
request/response cycle: it holds the cycle's first write and sends it with the
second in one call; if no second write comes in the same turn of the event
loop (an answer streamed later, a ``100 Continue``), the held bytes go out at
the end of that turn, so nothing waits longer than one turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["HeldHead"]


class HeldHead:
    """A transport for one response cycle that joins its first write to its second.

    Args:
        transport: the connection's transport (everything but ``write`` and ``close`` goes to it).
        loop: the event loop that runs the cycle.
    """

    __slots__ = ("_first", "_held", "_loop", "_release", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._first = True
        self._held: bytes | None = None
        self._release: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        """Hold the first write until the second (or the end of this loop turn); pass the others on."""
        if self._first:
            self._first = False
            self._held = data
            self._release = self._loop.call_soon(self.flush)
            return
        held = self._held
        if held is not None:
            self._held = None
            if self._release is not None:
                self._release.cancel()
            data = held + data
        self._transport.write(data)

    def flush(self) -> None:
        """Send what is held, if anything."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        """Send what is held, then close the connection."""
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        """Whether the connection is closing."""
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
