"""The WebSocket transport: ``/socket.io/1/websocket/<sid>``.

A browser WebSocket carries no ``X-Skypetoken``: the ``sid`` authenticates
it (a 128-bit secret issued by an authenticated handshake, usable once). The
server sends ``1::`` and ``trouter.connected`` first, a heartbeat ``2::``
every :attr:`BrowserOptions.heartbeat_seconds`, then notifications as they
come; a session that ends sends its last packet (``0::``...) and closes.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from . import frames
from .manager import BrowserRealtime
from .session import Session

__all__ = ["routes", "serve_websocket"]

#: How long a closing session's last packet and close frame may take before the transport is left.
_FLUSH_SECONDS = 5.0


async def _write(websocket: WebSocket, session: Session, heartbeat: float) -> None:
    """Send what the session queues, and a heartbeat when idle; close after the session ends."""
    loop = asyncio.get_running_loop()
    next_beat = loop.time() + heartbeat
    while True:
        if not session.outbox and not session.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.wake.wait(), max(0.0, next_beat - loop.time()))
        packets = session.take()
        if not packets and not session.closed and loop.time() >= next_beat:
            packets = [frames.HEARTBEAT]
        for packet in packets:
            await websocket.send_text(packet)
        if packets:
            next_beat = loop.time() + heartbeat
        if session.closed and not session.outbox:
            return


async def serve_websocket(websocket: WebSocket) -> None:
    """Run one WebSocket transport from the upgrade to the close."""
    manager: BrowserRealtime = websocket.app.state.browser_rt
    session = manager.session_for(websocket.path_params["sid"])
    if session is None or session.state != 0:
        await websocket.close(1008, "unknown or used session")
        return
    await websocket.accept()
    session.attach(polling=False)
    writer = asyncio.create_task(_write(websocket, session, manager.options.heartbeat_seconds))
    ended = asyncio.create_task(session.ended.wait())
    try:
        while not writer.done() and not ended.done():
            receiving = asyncio.ensure_future(websocket.receive())
            done, _ = await asyncio.wait({receiving, writer, ended}, return_when=asyncio.FIRST_COMPLETED)
            if receiving not in done:
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receiving
                break
            message = receiving.result()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text:
                session.handle(text)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
    finally:
        session.close(None)
        ended.cancel()
        await _finish(websocket, writer)


async def _finish(websocket: WebSocket, writer: asyncio.Task[None]) -> None:
    """Let the writer flush the last packet (``0::``...) for a moment, then close; never hang on a stalled peer."""
    with contextlib.suppress(TimeoutError, asyncio.CancelledError, WebSocketDisconnect, OSError, RuntimeError):
        await asyncio.wait_for(asyncio.shield(writer), _FLUSH_SECONDS)
    if not writer.done():
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError, RuntimeError):
            await writer
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(TimeoutError, WebSocketDisconnect, OSError, RuntimeError):
            await asyncio.wait_for(websocket.close(1000), _FLUSH_SECONDS)


routes = [WebSocketRoute("/socket.io/1/websocket/{sid}", serve_websocket)]
