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
from urllib.parse import urlencode

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.wire import decode, encode
from threadline.store.base import StoreError, StoreReadOnly, StoreUnavailable

from . import metrics
from .errors import JSON, error_response, from_decode_error
from .throttle import REFUND_STATUSES

__all__ = ["Call", "endpoint", "json", "next_link", "no_content"]

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
    """One request as the routes see it."""

    __slots__ = ("api_version", "headers", "request", "state")

    def __init__(self, request: Request, api_version: str, headers: dict[str, str]) -> None:
        self.request = request
        self.api_version = api_version
        self.headers = headers
        self.state: Any = request.app.state

    def path(self, name: str) -> str:
        """A path parameter, percent-decoded.

        Raises:
            ChatServiceError: 400 when it holds a NUL character.
        """
        value: str = self.request.path_params[name]
        _refuse_nul(value, name)
        return value

    def query_int(self, name: str) -> int | None:
        """An optional integer query parameter.

        Raises:
            ChatServiceError: 400 when it is not an integer.
        """
        value = self.request.query_params.get(name)
        if value is None or value == "":
            return None
        _refuse_nul(value, name)
        try:
            return int(value)
        except ValueError:
            raise ChatServiceError(ErrorKind.INVALID, f"{name} must be an integer.", target=name) from None

    def query(self, name: str) -> str | None:
        """An optional query parameter; empty counts as absent.

        Raises:
            ChatServiceError: 400 when it holds a NUL character.
        """
        value = self.request.query_params.get(name)
        if value:
            _refuse_nul(value, name)
        return value or None

    async def body(self) -> bytes:
        """The raw body, refused past the configured size."""
        limit: int = self.state.settings.limits.body_bytes
        declared = self.request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ChatServiceError(ErrorKind.INVALID, f"The request body exceeds {limit} bytes.")
        chunks = []
        size = 0
        async for chunk in self.request.stream():
            size += len(chunk)
            if size > limit:
                raise ChatServiceError(ErrorKind.INVALID, f"The request body exceeds {limit} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)

    async def model(self, into: type[T], *, empty: T | None = None) -> T:
        """Read and decode the JSON body (see :meth:`decode`)."""
        return self.decode(await self.body(), into, empty=empty)

    @staticmethod
    def decode(raw: bytes, into: type[T], *, empty: T | None = None) -> T:
        """Decode a JSON body; an empty body gives ``empty`` when that is allowed.

        Raises:
            ChatServiceError: 400 for a missing, malformed or mistyped body.
        """
        if not raw.strip():
            if empty is not None:
                return empty
            raise ChatServiceError(ErrorKind.INVALID, "The request body is required.")
        try:
            value = decode(raw, into)
        except msgspec.DecodeError as exc:
            raise from_decode_error(exc) from None
        if b"\\u0000" in raw:  # cheap test first: JSON can carry NUL only as this escape
            _refuse_nul_in(msgspec.to_builtins(value), "")
        return value

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


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


def json(call: Call, model: Any, status: int = 200) -> Response:
    return Response(encode(model), status_code=status, media_type=JSON, headers=call.headers)


def no_content(call: Call, status: int = 204) -> Response:
    return Response(b"", status_code=status, headers=call.headers)


def next_link(call: Call, cursor: str | None, params: dict[str, Any], cursor_name: str = "syncState") -> str | None:
    """A relative nextLink carrying every paging parameter (no ``+`` in it)."""
    if cursor is None:
        return None
    query = {cursor_name: cursor, **{k: v for k, v in params.items() if v is not None}}
    query["api-version"] = call.api_version
    return f"{call.request.url.path}?{urlencode(query)}"


def endpoint(
    versions: tuple[str, ...],
) -> Callable[[Callable[[Call], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """Wrap a route: check api-version, throttle, echo request ids, map every error to an ACS body.

    The route's function name is its operation name in throttling rules,
    metrics and access logs.
    """
    supported = ", ".join(versions)

    def wrap(handler: Callable[[Call], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        operation = handler.__name__

        async def run(request: Request) -> Response:
            started = time.perf_counter()
            client_id = request.headers.get("x-ms-client-request-id")
            request_id = client_id or _request_id()
            headers = {"api-supported-versions": supported, "x-ms-request-id": request_id}
            if client_id:
                headers["x-ms-client-request-id"] = client_id
            ticket = None
            state = request.app.state
            try:
                version = request.query_params.get("api-version")
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
                throttle = getattr(state, "throttle", None)
                if throttle is not None:
                    ticket = throttle.admit(operation, request)
                response = await handler(Call(request, version, headers))
            except ChatServiceError as exc:
                if exc.status == 429:
                    metrics.throttled(operation)
                response = error_response(exc, headers)
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
            if ticket is not None and status in REFUND_STATUSES:
                state.throttle.refund(ticket)
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

        run.__name__ = operation
        run.__qualname__ = handler.__qualname__
        run.__doc__ = handler.__doc__
        return run

    return wrap
