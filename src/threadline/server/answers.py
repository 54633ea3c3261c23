"""What routes answer with: JSON bodies, empty answers, paging links.

Every answer carries the call's headers (request ids, ``api-supported-versions``, a route's
``Location``); errors are :mod:`endpoint`'s to answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from threadline.protocol.wire import encode

from .endpoint import Call
from .errors import JSON

__all__ = ["json", "next_link", "no_content"]

_JSON_BYTES = JSON.encode("latin-1")

class _JsonAnswer(Response):
    """A JSON answer whose raw headers are built in one pass (what ``Response.__init__`` would make of them)."""

    media_type = JSON

    def __init__(self, body: bytes, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        raw.append((b"content-type", _JSON_BYTES))
        self.raw_headers = raw


def json(call: Call, model: Any, status: int = 200) -> Response:
    """A JSON answer carrying the call's headers.

    Args:
        call: the request (its ``headers`` are the answer's).
        model: what to encode (a wire model or plain data).
        status: a status with a body (not 1xx, 204 or 304).

    Returns:
        The response.
    """
    return _JsonAnswer(encode(model), status, call.headers)


def no_content(call: Call, status: int = 204) -> Response:
    """An answer without a body (``204`` unless told), carrying the call's headers."""
    return Response(b"", status_code=status, headers=call.headers)


def next_link(call: Call, cursor: str | None, params: dict[str, Any], cursor_name: str = "syncState") -> str | None:
    """A relative nextLink carrying every paging parameter (no ``+`` in it)."""
    if cursor is None:
        return None
    query = {cursor_name: cursor, **{k: v for k, v in params.items() if v is not None}}
    query["api-version"] = call.api_version
    return f"{call.url_path}?{urlencode(query)}"
