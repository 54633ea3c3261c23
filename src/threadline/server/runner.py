"""Running the server: sockets, HTTP and HTTPS, the banner, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from typing import Any, TextIO
from urllib.parse import urlsplit

import uvicorn

from .app import running
from .connlimits import ConnectionLimiter
from .httpguard import GuardOptions, guarded_protocols
from .limits import Limits
from .preflight import SetupError, bind_error, clear_runtime, serve_lock, write_runtime
from .settings import Settings
from .tls import TlsFiles, ensure_certificate
from .tlsguard import server_context, tls_protocol

__all__ = ["banner", "explorer_urls", "run_workers", "serve"]

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
    # Clients send only small control frames on the real-time stream; a 16 MiB message would be
    # buffered whole before the endpoint could refuse it.
    "ws_max_size": 64 * 1024,
}

#: Open files kept free of connections (database, logs, TLS files, the listening sockets).
FD_RESERVE = 256


def connection_cap(wanted: int) -> int:
    """The connection cap: ``wanted``, lowered so connections cannot use up the open-file limit.

    The soft open-file limit is first raised towards the hard one (as far as
    ``wanted`` needs), so a shell's default of 1,024 does not shrink the cap.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


def _protocols(settings: Settings) -> dict[str, Any]:
    """uvicorn's ``http`` and ``ws`` protocols with the connection limits of the settings."""
    limiter = ConnectionLimiter(connection_cap(settings.max_connections))
    http, ws = guarded_protocols(limiter, GuardOptions(
        header_timeout_seconds=settings.header_timeout, body_timeout_seconds=settings.body_timeout,
        max_request_line_bytes=settings.max_request_line, max_head_bytes=settings.max_header_bytes,
    ))
    return {"http": http, "ws": ws}


def _bind(host: str, port: int, flag: str = "--http-port") -> socket.socket:
    """A listening socket (inherited from a ``--workers`` parent when it bound one).

    Raises:
        SetupError: the address is taken, not this machine's, or not allowed.
    """
    inherited = _INHERITED.pop((host, port), None)
    if inherited is not None:
        return inherited
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise bind_error(flag, host, port, exc) from exc
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
    if https_url and http_url:
        lines.append(f"  HTTP connection string (threadline.chat on loopback): {settings.connection_string(http_url)}")
    if tls is not None and https_url:
        lines += [
            "  Trust the certificate in the official SDKs with one of:",
            f"    connection_verify=\"{tls.ca}\"   (any client, as a keyword argument)",
            f"    SSL_CERT_FILE={tls.ca}         (azure.communication.chat.aio, aiohttp)",
            f"    REQUESTS_CA_BUNDLE={tls.ca}    (azure.communication.chat, requests)",
        ]
    if http_url:
        lines.append("  threadline.chat and threadline.identity also accept the plain HTTP endpoint.")
    lines += [f"  {line}" for line in limits_summary(settings)]
    lines.append("  Next: `threadline seed` makes demo users, a thread, tokens and ready-to-paste code;")
    explorer = explorer_urls(http_url, https_url)
    if explorer:
        lines.append(f"        the Explorer shows your data: {' or '.join(explorer)} (sign in with the access key);")
    lines += [
        "        samples/*.py in the source tree; docs/sdk.md and docs/realtime.md.",
        "Press Ctrl+C to stop.",
    ]
    return "\n".join(lines)


def explorer_urls(http_url: str | None, https_url: str | None) -> list[str]:
    """The Explorer's URLs to open in a browser: over HTTP only on loopback (the access key is typed
    into it), then over HTTPS; a wildcard host (``0.0.0.0``, ``::``) is shown as its loopback address.

    Args:
        http_url: the plain HTTP endpoint, or None when it is off.
        https_url: the HTTPS endpoint, or None when it is off.

    Returns:
        Zero, one or two URLs ending in ``/explorer``.
    """
    urls = []
    for url, plain in ((http_url, True), (https_url, False)):
        if not url:
            continue
        parts = urlsplit(url)
        try:
            address = ipaddress.ip_address(parts.hostname or "")
        except ValueError:
            address = None  # a name: loopback only if it is "localhost"
        if address is not None and address.is_unspecified:
            address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
        loopback = address.is_loopback if address is not None else parts.hostname == "localhost"
        if plain and not loopback:
            continue
        host = parts.hostname if address is None else (f"[{address}]" if address.version == 6 else str(address))
        urls.append(f"{parts.scheme}://{host}:{parts.port}/explorer")
    return urls


def limits_summary(settings: Settings) -> list[str]:
    """What the banner says of the limits in force and how to change them."""
    limits = settings.limits
    if limits == Limits.unlimited():
        return ["Limits:         none (--no-limits): sizes and rates lifted; drop the flag for ACS's limits"]
    sizes = (f"ACS sizes (message {limits.message_bytes // 1024} KB, {limits.participants_per_thread} participants "
             f"per thread, page size <= {limits.page_size_max}); lift with --no-limits")
    value = settings.throttle.strip().lower()
    if value in ("off", "0", "false", "no"):
        rates = "Rates:          not throttled (--throttle off)"
    elif value in ("", "on", "acs", "1", "true", "yes"):
        rates = ("Rates:          ACS's (e.g. 10 sends per thread per 10 s, 429 + Retry-After beyond); "
                 "--throttle off, or a factor such as 2")
    else:
        rates = f"Rates:          ACS's x {value} (--throttle {value}); --throttle on for ACS's, off to lift"
    return [f"Limits:         {sizes}", rates, "                see docs/limits.md"]


async def serve(settings: Settings, out: TextIO = sys.stdout) -> None:
    """Serve until SIGINT or SIGTERM, then finish in-flight requests and close the store.

    Args:
        settings: the settings (prepared here).
        out: where the banner goes.
    """
    settings = settings.prepared()
    with serve_lock(settings):
        await _serve(settings, out)
    print("Threadline stopped.", file=out, flush=True)


async def _serve(settings: Settings, out: TextIO) -> None:
    worker = bool(_INHERITED)  # a --workers child: its parent notes the endpoints
    tls = ensure_certificate(settings.data_dir.resolve() / "tls") if settings.https_port >= 0 else None
    servers: list[tuple[_Server, socket.socket]] = []
    async with running(settings) as app:
        # What exists now (modules, the app, the store) lives as long as the process: move it out of
        # the cyclic collector's reach, so a full collection does not rescan it and stall the loop
        # (bench/realtime.py, 1,000 connections: ~90 ms pauses before, ~30 ms after).
        gc.collect()
        gc.freeze()
        http_url = https_url = None
        protocols = _protocols(settings)  # one cap for both listeners
        if settings.http_port >= 0:
            sock = _bind(settings.host, settings.http_port)
            http_url = _url("http", settings.host, sock.getsockname()[1])
            config = uvicorn.Config(app, **_CONFIG, **protocols)
            servers.append((_Server(config), sock))
        if tls is not None:
            sock = _bind(settings.host, settings.https_port, "--https-port")
            https_url = _url("https", settings.host, sock.getsockname()[1])
            # no ssl_* settings: the protocol runs the handshake, under the connection cap (tlsguard.py)
            secure = {**protocols, "http": tls_protocol(protocols["http"], server_context(tls))}
            config = uvicorn.Config(app, **_CONFIG, **secure)
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
        if not worker:
            write_runtime(settings, http_url, https_url)
        print(banner(settings, http_url, https_url, tls), file=out, flush=True)
        try:
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))
        finally:
            if not worker:
                clear_runtime(settings)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


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
        The exit code: 0 after a requested stop.

    Raises:
        SetupError: workers cannot be used (SQLite, or no ``fork``), or a port cannot be bound.
    """
    if not settings.is_postgres:
        raise SetupError(f"--workers needs PostgreSQL (--database postgresql://...), not the SQLite file "
                         f"{settings.database_url} (one writing process); run one process, or several nodes on "
                         "PostgreSQL")
    if not hasattr(os, "fork"):  # pragma: no cover - Windows
        raise SetupError(f"--workers {settings.workers}: needs fork(); run one process per port behind a load "
                         "balancer")
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
        sock = _bind(settings.host, settings.https_port, "--https-port")
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
    write_runtime(settings, http_url, https_url)
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
    clear_runtime(settings)
    print("Threadline stopped.", file=out, flush=True)
    return 0
