"""The native protocol's wire: close codes, control frames, and direct writes to uvicorn's transport.

Used by :mod:`.native` and :mod:`.native_stream` only (``docs/realtime.md`` is the protocol).
"""

from __future__ import annotations

import asyncio
import random
import struct
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.types import Scope
from starlette.websockets import WebSocket

from threadline.server.wsclose import fit_close_reason

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
    "PONG",
    "abort_transport",
    "close_early",
    "control",
    "direct_protocol",
    "forget_handshake",
    "json_decode",
    "json_encode",
    "query_of",
    "reconnect_frame",
    "token_of",
    "write_text_frame",
]

#: The client closed, or the server stopped the stream on purpose.
CLOSE_NORMAL = 1000
#: An unexpected server error.
CLOSE_INTERNAL = 1011
#: The server is restarting; a ``reconnect`` frame came first.
CLOSE_SERVICE_RESTART = 1012
#: The database did not answer; reconnect later.
CLOSE_TRY_AGAIN = 1013
#: A bad query parameter (``after``, ``heartbeat``, ``api-version``).
CLOSE_BAD_REQUEST = 4000
#: No token, a malformed or foreign token, or a token that has expired.
CLOSE_UNAUTHORIZED = 4001
#: The client answered no ``ping`` for too long.
CLOSE_HEARTBEAT_TIMEOUT = 4002
#: The token was revoked, the identity was deleted, or the token has no chat scope.
CLOSE_REVOKED = 4003
#: The client read too slowly: its send queue overflowed. Reconnect to resume.
CLOSE_TOO_SLOW = 4008
#: The user holds :attr:`RealtimeOptions.connections_per_user` connections already.
CLOSE_TOO_MANY = 4029

json_encode = msgspec.json.Encoder().encode
json_decode = msgspec.json.Decoder().decode
PONG = b'{"type":"pong"}'


def abort_transport(scope: Scope) -> bool:
    """Abort the connection's transport when the server exposes it; True if it did."""
    owner = getattr(scope.get("threadline.raw_send"), "__self__", None)
    transport = getattr(owner, "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()
        return True
    return False


def direct_protocol(scope: Scope) -> Any:
    """The server's protocol object when it can take frames directly, else None.

    Under uvicorn's WebSocket protocol (the one ``threadline serve`` runs), a
    frame can be written to the transport without a task switch per
    connection; the fan-out then costs one ``write`` per connection. Any
    other server goes through ASGI ``send``.
    """
    owner = getattr(scope.get("threadline.raw_send"), "__self__", None)
    needed = ("transport", "writable", "close_sent")
    if owner is None or not all(hasattr(owner, name) for name in needed):
        return None
    if not isinstance(owner.writable, asyncio.Event) or not hasattr(owner.transport, "write"):
        return None
    return owner


def forget_handshake(protocol: Any) -> None:
    """Drop the handshake request and response a server protocol keeps after the handshake.

    uvicorn's WebSocket protocol holds both for the connection's lifetime but
    reads them only while accepting; on an idle connection they are the
    largest single cost (about 4 KiB of parsed headers). Only done once the
    handshake is complete, and only to attributes that exist.
    """
    if protocol is None or getattr(protocol, "handshake_complete", False) is not True:
        return
    for name in ("request", "response"):
        if getattr(protocol, name, None) is not None:
            setattr(protocol, name, None)


def write_text_frame(protocol: Any, head: bytes, tail: bytes) -> None:
    """Write one unfragmented, unmasked text frame holding ``head + tail`` (RFC 6455 §5.2).

    A server may send any message uncompressed, even with permessage-deflate
    negotiated (RFC 7692 §6), so the frame needs no per-connection encoding.
    """
    size = len(head) + len(tail)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    protocol.transport.writelines((header, head, tail))


def control(kind: str, **fields: Any) -> str:
    return json_encode({"type": kind, **fields}).decode()


async def close_early(websocket: WebSocket, code: int, reason: str) -> None:
    """Close before going live, with a reason cut to fit the close frame."""
    await websocket.close(code, fit_close_reason(reason))


def reconnect_frame(position: str | None) -> str:
    return control("reconnect", reason="shutdown", position=position, retryAfterMs=random.randint(250, 2000))


def query_of(websocket: WebSocket) -> dict[str, str]:
    """The query parameters (the last of repeated ones), read from the scope.

    Not ``websocket.query_params``: Starlette keeps that object on the
    connection for its lifetime, which every idle connection would pay for.
    """
    return dict(parse_qsl(websocket.scope["query_string"].decode("latin-1"), keep_blank_values=True))


def token_of(websocket: WebSocket, query: dict[str, str]) -> str | None:
    header = ""
    for name, value in websocket.scope["headers"]:  # not websocket.headers: see query_of
        if name == b"authorization":
            header = value.decode("latin-1")
            break
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return query.get("access_token") or None

