"""Checks before serving, and the one-line errors the CLI prints when one fails.

Every problem a user can fix (a port in use, a data folder that is a file,
a database URL of an unknown scheme, PostgreSQL down, a key that does not
match the database) becomes a :class:`SetupError` whose message is one line
naming the value, the flag that set it and the fix. The ``threadline``
command prints it and exits with status 2 (with a traceback only at
``--log-level debug``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import logging
import os
import re
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from threadline.store.base import Store, StoreUnavailable

from .settings import Settings

__all__ = [
    "SetupError",
    "bind_error",
    "check",
    "clear_runtime",
    "client_url",
    "endpoints",
    "key_fingerprint",
    "masked",
    "open_checked",
    "read_runtime",
    "runtime_file",
    "serve_lock",
    "write_runtime",
]


log = logging.getLogger("threadline.server")


class SetupError(Exception):
    """A problem the user must fix before the command can run.

    The message is one line: the value at fault, the flag (or variable) that set it, and the fix.
    """


def masked(url: str) -> str:
    """The URL with its password replaced by ``***``, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def key_fingerprint(key: bytes) -> str:
    """A short fingerprint of the access key: tells keys apart without revealing them."""
    return hmac.new(key, b"threadline key fingerprint", hashlib.sha256).hexdigest()[:16]


def _number(value: int, flag: str, low: int, high: int, hint: str) -> None:
    if not low <= value <= high:
        raise SetupError(f"{flag} {value}: out of range; use {hint}")


def check(settings: Settings, *, serving: bool = True) -> None:
    """Refuse settings that cannot work, before anything is opened.

    Args:
        settings: the settings as given (not yet prepared).
        serving: also check what only ``serve`` uses (ports, workers, throttle).

    Raises:
        SetupError: the first problem found.
    """
    url = settings.database
    if url and "://" in url and not settings.is_postgres:
        scheme = url.split("://", 1)[0]
        raise SetupError(f"--database {masked(url)}: unsupported scheme '{scheme}://' (THREADLINE_DATABASE); "
                         "use postgresql://user@host:5432/name, or a SQLite file path")
    resource = settings.resource_id
    if resource is not None and not re.fullmatch(r"[0-9A-Za-z-]{1,64}", resource):
        raise SetupError(f"--resource-id {resource}: not a resource id (THREADLINE_RESOURCE_ID); use a GUID such as "
                         f"{uuid.uuid4()}, or leave it out to use the data folder's")
    data = settings.data_dir
    if data.exists() and not data.is_dir():
        raise SetupError(f"--data {data}: is a file, not a folder; pass a folder with --data (THREADLINE_DATA)")
    try:
        data.mkdir(parents=True, exist_ok=True)
        probe = data / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SetupError(f"--data {data}: cannot write there ({exc.strerror}); pass a writable folder with "
                         "--data (THREADLINE_DATA)") from exc
    if not settings.is_postgres and Path(settings.database_url).is_dir():
        raise SetupError(f"--database {settings.database_url}: is a folder; name a SQLite file, "
                         "or leave --database out to use <data>/threadline.db")
    if settings.events and not settings.events.startswith(("redis://", "rediss://", "unix://")):
        raise SetupError(f"--events {masked(settings.events)}: not a Redis URL (THREADLINE_EVENTS); use "
                         "redis://host:6379/0 (rediss:// for TLS), or leave it out on a single node")
    if settings.sqlite_synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
        raise SetupError(f"THREADLINE_SQLITE_SYNCHRONOUS={settings.sqlite_synchronous}: unknown level; "
                         "use NORMAL or FULL (--synchronous)")
    if not serving:
        return
    _number(settings.http_port, "--http-port", -1, 65535, "0..65535, 0 for any free port, -1 to disable HTTP")
    _number(settings.https_port, "--https-port", -1, 65535, "0..65535, 0 for any free port, -1 to disable HTTPS")
    if settings.http_port < 0 and settings.https_port < 0:
        raise SetupError("--http-port -1 --https-port -1: nothing to serve; enable at least one of them")
    _number(settings.workers, "--workers", 1, 256, "a number of processes from 1 to 256")
    _number(settings.event_retention_seconds, "THREADLINE_EVENT_RETENTION", 1, 10**9, "seconds, at least 1")
    _number(settings.idempotency_retention_seconds, "THREADLINE_IDEMPOTENCY_RETENTION", 1, 10**9,
            "seconds, at least 1")
    from threadline.identity.tokens import TokenIssuer

    from .throttle import make_throttle

    try:
        make_throttle(settings.limits, TokenIssuer(b"check", "check"), settings.throttle)
    except ValueError:
        raise SetupError(f"--throttle {settings.throttle}: not on, off or a positive factor (THREADLINE_THROTTLE); "
                         "use on (ACS rates), off, or a number such as 2 (doubles every rate)") from None


def bind_error(flag: str, host: str, port: int, exc: OSError) -> SetupError:
    """The one-line error for a listening socket that could not be opened."""
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return SetupError(f"{flag} {port}: {where} is already in use (another server?); stop it, or pick another "
                          f"port with {flag} (0 picks a free one)")
    if exc.errno == errno.EACCES:
        return SetupError(f"{flag} {port}: not allowed to listen on {where}; pick a port above 1023 with {flag}")
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return SetupError(f"--host {host}: not an address of this machine ({exc.strerror or exc}); use 127.0.0.1, "
                          "0.0.0.0 or one of its addresses (THREADLINE_HOST)")
    return SetupError(f"{flag} {port}: cannot listen on {where} ({exc.strerror or exc}); pick another with {flag}")


def _open_error(settings: Settings, exc: BaseException) -> SetupError | None:
    """The one-line error for a database that could not be opened, or None for an unexpected failure."""
    if settings.is_postgres:
        url = masked(settings.database_url)
        import asyncpg

        if isinstance(exc, asyncpg.InvalidCatalogNameError):
            name = urlsplit(settings.database_url).path.lstrip("/") or "postgres"
            return SetupError(f"--database {url}: database '{name}' does not exist; create it "
                              f"(createdb {name}, or CREATE DATABASE) or fix the name in the URL")
        if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError):
            return SetupError(f"--database {url}: PostgreSQL refused the login ({exc}); fix the user or password "
                              "in the URL")
        if isinstance(exc, asyncpg.exceptions.ReadOnlySQLTransactionError):
            return SetupError(f"--database {url}: PostgreSQL is read-only (a standby?) and cannot apply migrations; "
                              "point --database at the primary")
        if isinstance(exc, StoreUnavailable):
            cause = exc.__cause__ or exc
            return SetupError(f"--database {url}: PostgreSQL is not reachable ({cause}); start it, or fix the host "
                              "and port in the URL")
        return None
    if isinstance(exc, sqlite3.Error | OSError):
        return SetupError(f"--database {settings.database_url}: SQLite cannot open it ({exc}); check that the file "
                          "and its folder are writable, or pass another --data")
    return None


async def open_checked(settings: Settings, *, refuse_others: bool = True) -> Store:
    """Open the store the settings name, and check it belongs to this key and resource.

    The first opening records the resource id and the key's fingerprint in
    the database; the commands that mint tokens (``user``, ``token``,
    ``seed``) then refuse another key or resource, whose tokens the server
    would reject. A server (``refuse_others=False``) only warns: one database
    may serve several resources, each with its own nodes and key.

    Args:
        settings: prepared settings.
        refuse_others: refuse a database recorded for another key or resource (else log a warning).

    Returns:
        The opened store.

    Raises:
        SetupError: the database cannot be opened, or (``refuse_others``) was made for another key or resource.
    """
    from .app import open_store

    assert settings.resource_id is not None
    store = open_store(settings)
    try:
        await store.open()
    except Exception as exc:
        error = _open_error(settings, exc)
        if error is None:
            raise
        raise error from exc
    try:
        resource, fingerprint = await store.resource_identity(settings.resource_id, key_fingerprint(settings.key_bytes))
    except BaseException:
        await store.close()
        raise
    where = masked(settings.database_url)
    problem = None
    if resource != settings.resource_id:
        problem = (f"--resource-id {settings.resource_id}: the database {where} belongs to resource {resource}; "
                   "pass --resource-id of that resource (or the data folder it was made with)")
    elif fingerprint != key_fingerprint(settings.key_bytes):
        given = key_fingerprint(settings.key_bytes)
        problem = (f"--access-key: not the key the database {where} was made with (its fingerprint {fingerprint}, "
                   f"this key's {given}); pass that key (THREADLINE_ACCESS_KEY), or the data folder it was made with")
    if problem is not None and refuse_others:
        await store.close()
        raise SetupError(problem)
    if problem is not None:
        log.warning("this database was first opened with another key or resource; tokens minted for it "
                    "(threadline user/token/seed) will not verify here: %s", problem)
    return store


@contextlib.contextmanager
def serve_lock(settings: Settings) -> Iterator[None]:
    """Hold the lock that makes one ``serve`` per SQLite database (nothing for PostgreSQL).

    Two servers on one SQLite file would each deliver only their own events.

    Raises:
        SetupError: another server holds the lock.
    """
    if settings.is_postgres or os.name != "posix":
        yield
        return
    import fcntl

    path = Path(settings.database_url + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise SetupError(f"--data {settings.data_dir}: another threadline serve (pid {holder}) already serves "
                             f"{settings.database_url}; stop it, or give this one its own --data folder "
                             "(its clients would never see the other's events)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def runtime_file(settings: Settings) -> Path:
    """Where a running server notes its actual endpoints."""
    return settings.data_dir / "runtime.json"


def write_runtime(settings: Settings, http_url: str | None, https_url: str | None) -> None:
    """Note the endpoints and database this process serves, for the CLI run on the same data folder.

    Readable by the owner only: the database URL may hold a password (as the folder's ``access-key`` does).
    """
    body = {"pid": os.getpid(), "http": http_url, "https": https_url, "database": settings.database}
    path = runtime_file(settings)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(body) + "\n")
    partial.replace(path)


def clear_runtime(settings: Settings) -> None:
    """Remove the runtime file, when it is this process's."""
    with contextlib.suppress(OSError, ValueError):
        if read_runtime(settings, alive=False).get("pid") == os.getpid():
            runtime_file(settings).unlink()


def client_url(url: str) -> str:
    """A URL clients can connect to: a wildcard listen address (``0.0.0.0``, ``[::]``) becomes loopback."""
    for wildcard in ("://0.0.0.0:", "://[::]:"):
        url = url.replace(wildcard, "://127.0.0.1:")
    return url


def endpoints(settings: Settings) -> tuple[str, str]:
    """The (http, https) endpoints of the server running on the data folder, else those the settings name."""
    running = read_runtime(settings)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    http = str(running.get("http") or f"http://{host}:{settings.http_port}")
    https = str(running.get("https") or f"https://{host}:{settings.https_port}")
    return client_url(http), client_url(https)


def read_runtime(settings: Settings, *, alive: bool = True) -> dict[str, object]:
    """The endpoints of the server running on this data folder, or ``{}`` when none runs.

    Args:
        settings: the settings (their data folder).
        alive: only when the process that wrote it still runs.
    """
    try:
        found = json.loads(runtime_file(settings).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    pid = found.get("pid")
    if alive:
        if not isinstance(pid, int):
            return {}
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return {}
        except PermissionError:  # alive, someone else's
            pass
    return found

