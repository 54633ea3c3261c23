"""The plumbing every route shares: api-version, body, errors, headers.

A route is an async function ``(call) -> Response`` wrapped by
:func:`endpoint`, which answers every failure with the ACS error body and the
right status, never a 500 for bad input.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.inputs import (
    MAX_CURSOR_CHARS,
    MAX_ID_CHARS,
    MAX_QUERY_CHARS,
    MAX_REQUEST_ID_CHARS,
    check_text,
    parse_int_text,
)
from threadline.protocol.wire import decode, encode
from threadline.store.base import StoreError, StoreReadOnly, StoreUnavailable

from . import metrics
from .errors import JSON, error_response, from_decode_error
from .throttle import REFUND_STATUSES, Ticket

__all__ = ["Call", "Endpoint", "endpoint"]

T = TypeVar("T")
log = logging.getLogger("threadline.server")

_ID_PREFIX = str(uuid.uuid4())[:24]
_ID_COUNTER = itertools.count()


def _request_id() -> str:
    """A GUID-shaped request id: a random per-process prefix and a counter (cheaper than uuid4)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFF:012x}"
access_log = logging.getLogger("threadline.access")
_DRIVER_MODULES = frozenset({"sqlite3", "asyncpg", "psycopg", "psycopg2"})


class Call:
    """One request as the routes see it.

    Attributes:
        operation: the route name (its throttling rules, metrics and logs go by it).
        ticket: the rate-limit slots charged to this request (see ``auth.admit``), refunded
            when it is then refused as 401/403.
    """

    __slots__ = ("api_version", "headers", "operation", "query_params", "request", "request_headers", "state",
                 "ticket")

    def __init__(
        self, request: Request, api_version: str, headers: dict[str, str], operation: str,
        request_headers: dict[str, str], query_params: dict[str, str],
    ) -> None:
        self.request = request
        self.api_version = api_version
        #: the answer's headers (request ids, api-supported-versions; a route adds Location).
        self.headers = headers
        self.state: Any = request.app.state
        self.operation = operation
        self.ticket: Ticket | None = None
        #: the request's headers by lower-cased name (the first of repeated ones), read once.
        self.request_headers = request_headers
        #: the query parameters (the last of repeated ones), parsed once.
        self.query_params = query_params

    def path(self, name: str) -> str:
        """A path parameter (an id), percent-decoded.

        Raises:
            ChatServiceError: 400 when it holds a NUL character or is longer than any id.
        """
        value: str = self.request.path_params[name]
        return check_text(value, name, MAX_ID_CHARS)

    def query_int(self, name: str) -> int | None:
        """An optional integer query parameter: ASCII digits within a 64-bit integer.

        Raises:
            ChatServiceError: 400 when it is anything else.
        """
        value = self.query_params.get(name)
        if value:
            _refuse_nul(value, name)
        return parse_int_text(value, name)

    def query(self, name: str) -> str | None:
        """An optional query parameter; empty counts as absent.

        Raises:
            ChatServiceError: 400 when it holds a NUL character or is too long
                (``syncState``: ``MAX_CURSOR_CHARS``; others: ``MAX_QUERY_CHARS``).
        """
        value = self.query_params.get(name)
        if value:
            check_text(value, name, MAX_CURSOR_CHARS if name == "syncState" else MAX_QUERY_CHARS)
        return value or None

    async def body(self) -> bytes:
        """The raw body, refused past the configured size (read once: a route calls this at most once).

        Raises:
            ChatServiceError: 400 when the body is larger than ``limits.body_bytes``.
            ClientDisconnect: the client went away (or its body deadline passed) first.
        """
        limit: int = self.state.settings.limits.body_bytes
        declared = self.request_headers.get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise ChatServiceError(ErrorKind.INVALID, f"The request body exceeds {limit} bytes.")
        # Straight from ``receive`` (Starlette's ``Request.stream`` is an async generator: a
        # frame and a hook more for what is nearly always one message).
        receive = self.request.receive
        chunks = []
        size = 0
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise ChatServiceError(ErrorKind.INVALID, f"The request body exceeds {limit} bytes.")
                if chunk:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            elif kind == "http.disconnect":
                raise ClientDisconnect()

    async def model(self, into: type[T], *, empty: T | None = None) -> T:
        """Read and decode the JSON body (see :meth:`decode`)."""
        return self.decode(await self.body(), into, empty=empty)

    @staticmethod
    def decode(raw: bytes, into: type[T], *, empty: T | None = None) -> T:
        """Decode a JSON body; an empty body gives ``empty`` when that is allowed.

        The whole body must be UTF-8 (RFC 8259). msgspec checks the strings it decodes (raw
        UTF-8, and escaped lone surrogates such as ``\\ud800`` anywhere) but not the bytes of
        fields it skips (unknown keys and their values), so a body that is not all ASCII is
        decoded once more to check them; an ASCII body (what most SDKs send) needs no copy.

        Raises:
            ChatServiceError: 400 for a missing, malformed or mistyped body.
        """
        if not raw.strip():
            if empty is not None:
                return empty
            raise ChatServiceError(ErrorKind.INVALID, "The request body is required.")
        try:
            if not raw.isascii():
                raw.decode("utf-8")
            value = decode(raw, into)
        except UnicodeDecodeError:
            raise ChatServiceError(ErrorKind.INVALID, "The request body is not valid UTF-8.") from None
        except msgspec.DecodeError as exc:
            raise from_decode_error(exc) from None
        if b"\\u0000" in raw:  # cheap test first: JSON can carry NUL only as this escape
            _refuse_nul_in(msgspec.to_builtins(value), "")
        return value

    @property
    def url_path(self) -> str:
        """The request's path as ``request.url.path`` spells it, without building the whole URL."""
        path: str = self.request.scope["path"]
        return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")

    def header(self, name: str) -> str | None:
        """A request header, by name in any case (bounded ones are checked at the edge: :data:`BOUNDED_HEADERS`)."""
        return self.request_headers.get(name.lower())


#: Headers the service reads or echoes, with their longest accepted value.
BOUNDED_HEADERS: dict[str, int] = {
    "repeatability-request-id": MAX_REQUEST_ID_CHARS,
    "x-ms-client-request-id": MAX_REQUEST_ID_CHARS,
}


def _header_dict(scope: Scope) -> dict[str, str]:
    """A request's headers by name, decoded once (as Starlette's ``Headers.get`` reads them: the first wins).

    Servers hand ASGI apps lower-cased header names.
    """
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])}


def _query_dict(scope: Scope) -> dict[str, str]:
    """A request's query parameters, as Starlette's ``QueryParams.get`` reads them (the last wins).

    A query with nothing to unescape (no ``%`` or ``+``: the usual ``api-version=...``)
    is split directly; any other goes through ``urllib.parse.parse_qsl``, blank values kept.
    """
    text: str = scope["query_string"].decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    params = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


def _check_headers(headers: dict[str, str]) -> None:
    """Refuse a bounded header that is too long or holds NUL (400 naming the header).

    Raises:
        ChatServiceError: 400 ``BadRequest`` with the header's name as ``target``.
    """
    for name, longest in BOUNDED_HEADERS.items():
        value = headers.get(name)
        if value is not None:
            check_text(value, name, longest)


def _refuse_nul(text: str, target: str) -> None:
    """No string may hold NUL: PostgreSQL cannot store it, so neither engine accepts it."""
    if "\x00" in text:
        raise ChatServiceError(ErrorKind.INVALID, "Strings must not contain the NUL character (U+0000).",
                               target=target or None)


def _refuse_nul_in(value: Any, path: str) -> None:
    """Walk decoded JSON and refuse the first string (key or value) holding NUL."""
    if isinstance(value, str):
        _refuse_nul(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, path)
            _refuse_nul_in(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul_in(item, f"{path}[{index}]")


def _client_gone(request: Request, operation: str, request_id: str) -> Response | None:
    """The request's body never fully arrived: the read deadline passed, or the client went away.

    A missed deadline was answered ``408`` by the connection layer already; it
    is counted under that status. A client that disconnected is counted in
    ``threadline_client_aborts_total`` (not as a server error) and logged at
    info; None is returned, since there is nobody to answer.
    """
    if request.scope.get("threadline.read_timeout"):
        body = encode({"error": {"code": "RequestTimeout", "message": "The request body did not arrive in time."}})
        return Response(body, status_code=408, media_type=JSON, headers={"x-ms-error-code": "RequestTimeout"})
    metrics.client_aborted(operation)
    log.info("client went away during %s %s", request.method, request.url.path,
             extra={"request_id": request_id, "operation": operation})
    return None


class Endpoint:
    """A route's handler as an ASGI application (what :func:`endpoint` makes of it).

    Starlette serves a plain function through two more layers (a request/response
    adapter and an exception wrapper around ``send``); a route that catches its own
    errors needs neither, so it is handed to the router as an ASGI app.

    Attributes:
        handle: answers a request (every failure as an ACS error response).
    """

    def __init__(self, handle: Callable[[Request], Awaitable[Response]], handler: Callable[..., Any]) -> None:
        self.handle = handle
        self.__name__ = handler.__name__
        self.__qualname__ = handler.__qualname__
        self.__doc__ = handler.__doc__

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request."""
        response = await self.handle(Request(scope, receive, send))
        await response(scope, receive, send)


def endpoint(versions: tuple[str, ...]) -> Callable[[Callable[[Call], Awaitable[Response]]], Endpoint]:
    """Wrap a route: check api-version, echo request ids, map every error to an ACS body.

    The route's function name is its operation name in throttling rules,
    metrics and access logs.
    """
    supported = ", ".join(versions)

    def wrap(handler: Callable[[Call], Awaitable[Response]]) -> Endpoint:
        operation = handler.__name__

        async def run(request: Request) -> Response:
            started = time.perf_counter()
            scope = request.scope
            request_headers = _header_dict(scope)
            client_id = request_headers.get("x-ms-client-request-id")
            if client_id is not None and (len(client_id) > MAX_REQUEST_ID_CHARS or "\x00" in client_id):
                client_id = None  # not echoed; refused below
            request_id = client_id or _request_id()
            headers = {"api-supported-versions": supported, "x-ms-request-id": request_id}
            if client_id:
                headers["x-ms-client-request-id"] = client_id
            call = None
            state = request.app.state
            try:
                query_params = _query_dict(scope)
                version = query_params.get("api-version")
                if not version:
                    raise ChatServiceError(
                        ErrorKind.INVALID, "The api-version query parameter is required.",
                        code="MissingApiVersionParameter", target="api-version",
                    )
                if version not in versions:
                    raise ChatServiceError(
                        ErrorKind.INVALID, f"The api-version '{version}' is not supported. "
                        f"Supported versions: {supported}.",
                        code="UnsupportedApiVersion", target="api-version",
                    )
                _check_headers(request_headers)
                # Rate budgets are charged by auth.admit once the caller is known (not here).
                call = Call(request, version, headers, operation, request_headers, query_params)
                response = await handler(call)
            except ChatServiceError as exc:
                if exc.status == 429:
                    metrics.throttled(operation)
                response = error_response(exc, headers)
            except ClientDisconnect:
                gone = _client_gone(request, operation, request_id)
                if gone is None:
                    return Response(b"", status_code=400)  # nobody reads it: the connection is gone
                response = gone
            except StoreUnavailable as exc:
                metrics.database_error("unavailable")
                why = "The database is read-only; writes are refused." if isinstance(exc, StoreReadOnly) else None
                response = error_response(ChatServiceError(ErrorKind.UNAVAILABLE, why, retry_after=1), headers)
            except Exception as exc:  # a bug: answer in the ACS shape and log it
                if isinstance(exc, StoreError) or type(exc).__module__.partition(".")[0] in _DRIVER_MODULES:
                    metrics.database_error("error")
                log.exception("unhandled error in %s %s", request.method, request.url.path,
                              extra={"request_id": request_id, "operation": operation})
                response = error_response(ChatServiceError(ErrorKind.INTERNAL), headers)
            status = response.status_code
            if call is not None and call.ticket is not None and status in REFUND_STATUSES:
                state.throttle.refund(call.ticket)
            elapsed = time.perf_counter() - started
            metrics.observe(operation, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d", request.method, request.url.path, status,
                    extra={
                        "request_id": request_id, "client_request_id": client_id, "operation": operation,
                        "method": request.method, "path": request.url.path, "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "error_code": response.headers.get("x-ms-error-code"),
                    },
                )
            return response

        return Endpoint(run, handler)

    return wrap
