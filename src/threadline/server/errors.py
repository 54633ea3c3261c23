"""Errors as HTTP responses with the ACS body."""

from __future__ import annotations

import re

import msgspec
from starlette.responses import Response

from threadline.protocol.errors import ChatServiceError, ErrorKind, error_body
from threadline.protocol.wire import encode

__all__ = ["JSON", "error_response", "from_decode_error"]

JSON = "application/json; charset=utf-8"


def error_response(error: ChatServiceError, headers: dict[str, str] | None = None) -> Response:
    """The ACS ``CommunicationErrorResponse`` for a service error."""
    extra = dict(headers or {})
    extra["x-ms-error-code"] = error.code
    if error.retry_after is not None:
        extra["Retry-After"] = str(max(1, round(error.retry_after)))
    return Response(
        encode(error_body(error.code, error.message, error.target)),
        status_code=error.status,
        media_type=JSON,
        headers=extra,
    )


def from_decode_error(exc: msgspec.DecodeError) -> ChatServiceError:
    """A 400 for a body that is not valid JSON or not of the expected shape.

    The target names the field at fault, as a dotted path (``participants[0].communicationIdentifier``).
    """
    text = str(exc)
    path = ""
    if " - at `" in text:
        text, _, where = text.partition(" - at `")
        path = where.rstrip("`").removeprefix("$").removeprefix(".")
    missing = re.search(r"missing required field `([^`]+)`", text)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    if isinstance(exc, msgspec.ValidationError):
        return ChatServiceError(ErrorKind.INVALID, f"The request body is not valid: {text}.", target=path or None)
    return ChatServiceError(ErrorKind.INVALID, "The request body is not valid JSON.", target=path or None)
