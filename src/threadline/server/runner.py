"""Running the server: sockets, HTTP and HTTPS, the banner, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from typing import Any, TextIO

import uvicorn

from .app import running
from .settings import Settings
from .tls import TlsFiles, ensure_certificate

__all__ = ["banner", "run_workers", "serve"]

log = logging.getLogger("threadline.server")

#: How long in-flight requests may take to finish after SIGTERM.
GRACE_SECONDS = 15


class _Server(uvicorn.Server):
    """A uvicorn server whose signals the runner handles for all servers at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def abort_idle(self) -> None:
        """Drop idle keep-alive connections whose TLS close never completes (the peer is silent)."""
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            if transport is not None and (cycle is None or cycle.response_complete):
                transport.abort()


#: Listening sockets a ``--workers`` parent bound before forking, by (host, port).
_INHERITED: dict[tuple[str, int], socket.socket] = {}


#: uvicorn settings of every listener. No protocol-level WebSocket pings: the real-time endpoint
#: sends its own heartbeat (and closes silent clients), so uvicorn's would be a second timer per
#: connection for nothing.
_CONFIG: dict[str, Any] = {
    "lifespan": "off", "log_level": "warning", "access_log": False,
    "timeout_graceful_shutdown": GRACE_SECONDS, "ws_ping_interval": None, "ws_ping_timeout": None,
}


def _bind(host: str, port: int) -> socket.socket:
    inherited = _INHERITED.pop((host, port), None)
    if inherited is not None:
        return inherited
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _url(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def banner(settings: Settings, http_url: str | None, https_url: str | None, tls: TlsFiles | None) -> str:
    """What the server prints on start: endpoints, connection string, how to trust the certificate."""
    lines = ["Threadline is running."]
    if http_url:
        lines.append(f"  HTTP endpoint:  {http_url}")
    if https_url:
        lines.append(f"  HTTPS endpoint: {https_url}")
    lines.append(f"  Database:       {settings.database_url if not settings.is_postgres else 'PostgreSQL'}")
    main = https_url or http_url or ""
    lines.append(f"  Connection string: {settings.connection_string(main)}")
    if tls is not None and https_url:
        lines += [
            "  Trust the certificate in the official SDKs with one of:",
            f"    connection_verify=\"{tls.ca}\"   (any client, as a keyword argument)",
            f"    SSL_CERT_FILE={tls.ca}         (azure.communication.chat.aio, aiohttp)",
            f"    REQUESTS_CA_BUNDLE={tls.ca}    (azure.communication.chat, requests)",
        ]
    if http_url:
        lines.append("  threadline.chat and threadline.identity also accept the plain HTTP endpoint.")
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


async def serve(settings: Settings, out: TextIO = sys.stdout) -> None:
    """Serve until SIGINT or SIGTERM, then finish in-flight requests and close the store.

    Args:
        settings: the settings (prepared here).
        out: where the banner goes.
    """
    settings = settings.prepared()
    tls = ensure_certificate(settings.data_dir.resolve() / "tls") if settings.https_port >= 0 else None
    servers: list[tuple[_Server, socket.socket]] = []
    async with running(settings) as app:
        # What exists now (modules, the app, the store) lives as long as the process: move it out of
        # the cyclic collector's reach, so a full collection does not rescan it and stall the loop
        # (bench/realtime.py, 1,000 connections: ~90 ms pauses before, ~30 ms after).
        gc.collect()
        gc.freeze()
        http_url = https_url = None
        if settings.http_port >= 0:
            sock = _bind(settings.host, settings.http_port)
            http_url = _url("http", settings.host, sock.getsockname()[1])
            config = uvicorn.Config(app, **_CONFIG)
            servers.append((_Server(config), sock))
        if tls is not None:
            sock = _bind(settings.host, settings.https_port)
            https_url = _url("https", settings.host, sock.getsockname()[1])
            config = uvicorn.Config(app, **_CONFIG, ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key))
            servers.append((_Server(config), sock))
        loop = asyncio.get_running_loop()

        stopping: list[asyncio.Task[None]] = []

        async def stop_servers() -> None:
            # Real-time clients get a ``reconnect`` frame and close 1012 before uvicorn drops them.
            with contextlib.suppress(Exception):
                await app.state.realtime.shutdown()
            with contextlib.suppress(Exception):
                await app.state.browser_rt.shutdown()  # browser clients reconnect and resume
            for server, _ in servers:
                server.should_exit = True
            # uvicorn closes idle keep-alives politely, but a TLS close waits for a peer that may never
            # answer; give that a moment, then abort the stragglers so shutdown does not hang.
            await asyncio.sleep(1.0)
            for server, _ in servers:
                server.abort_idle()

        def stop() -> None:
            if stopping:  # a second signal: stop at once
                for server, _ in servers:
                    server.should_exit = True
                return
            stopping.append(loop.create_task(stop_servers()))

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        print(banner(settings, http_url, https_url, tls), file=out, flush=True)
        try:
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    print("Threadline stopped.", file=out, flush=True)


def run(settings: Settings) -> None:
    """Run :func:`serve` on uvloop when it is installed (``--workers N``: see :func:`run_workers`)."""
    if settings.workers > 1:
        raise SystemExit(run_workers(settings))
    _run_loop(serve(settings))


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def run_workers(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Serve with ``settings.workers`` processes on this machine, sharing the listening sockets.

    The parent binds the HTTP and HTTPS sockets, forks the workers (each a
    full node with its own store pool and hub, as :func:`serve` runs it on the
    inherited sockets, so the kernel spreads connections over them), forwards
    SIGINT/SIGTERM to them, and restarts a worker that dies on its own.
    Workers share state only through the database (and ``--events`` Redis for
    real-time delivery across them), so this needs PostgreSQL.

    Args:
        settings: the settings (prepared here).
        out: where the banner goes.

    Returns:
        The exit code: 0 after a requested stop, 2 when workers cannot be used.
    """
    if not settings.is_postgres:
        print("error: --workers needs PostgreSQL (--database postgresql://...): an SQLite file has "
              "one writing process. Run one process, or several nodes on PostgreSQL.", file=sys.stderr)
        return 2
    if not hasattr(os, "fork"):  # pragma: no cover - Windows
        print("error: --workers needs fork(); run one process per port behind a load balancer.", file=sys.stderr)
        return 2
    settings = settings.prepared()
    tls = ensure_certificate(settings.data_dir.resolve() / "tls") if settings.https_port >= 0 else None
    inherited: dict[tuple[str, int], socket.socket] = {}
    http_url = https_url = None
    if settings.http_port >= 0:
        sock = _bind(settings.host, settings.http_port)
        settings = replace(settings, http_port=sock.getsockname()[1])
        inherited[(settings.host, settings.http_port)] = sock
        http_url = _url("http", settings.host, settings.http_port)
    if tls is not None:
        sock = _bind(settings.host, settings.https_port)
        settings = replace(settings, https_port=sock.getsockname()[1])
        inherited[(settings.host, settings.https_port)] = sock
        https_url = _url("https", settings.host, settings.https_port)
    worker_settings = replace(settings, workers=1)
    children: dict[int, int] = {}
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _INHERITED.update(inherited)
                with open(os.devnull, "w", encoding="utf-8") as quiet:
                    _run_loop(serve(worker_settings, quiet))
                code = 0
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                os._exit(code)
        children[pid] = index

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for index in range(settings.workers):
        spawn(index)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    print(banner(settings, http_url, https_url, tls), file=out, flush=True)
    print(f"  Workers:        {settings.workers} processes ({', '.join(map(str, children))})", file=out, flush=True)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, -1)
        if index >= 0 and not stopping:
            print(f"worker {index} (pid {pid}) exited with {os.waitstatus_to_exitcode(status)}; restarting",
                  file=sys.stderr, flush=True)
            time.sleep(1.0)
            if not stopping:
                spawn(index)
    print("Threadline stopped.", file=out, flush=True)
    return 0
