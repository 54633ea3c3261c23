"""The ACS error model: kinds of failure, their codes and their HTTP statuses.

Services raise :class:`ChatServiceError` with a :class:`ErrorKind`; the server
turns the kind into a status and the error into the ACS body
``{"error": {"code", "message", "target"}}``. The SDK reads the same body back.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["STATUS", "ChatServiceError", "ErrorKind", "error_body"]


class ErrorKind(Enum):
    """Why a request failed, independent of transport."""

    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA = "unsupported_media"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


#: The HTTP status of each kind, as ACS answers.
STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 400,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED_MEDIA: 415,
    ErrorKind.THROTTLED: 429,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
}

#: The code and message the ACS examples use for each kind.
_DEFAULTS: dict[ErrorKind, tuple[str, str]] = {
    ErrorKind.INVALID: ("BadRequest", "The request is invalid."),
    ErrorKind.UNAUTHORIZED: ("Unauthorized", "Request is not authorized."),
    ErrorKind.FORBIDDEN: ("Forbidden", "User is not allowed to perform specified action."),
    ErrorKind.NOT_FOUND: ("NotFound", "Not found."),
    ErrorKind.CONFLICT: ("Conflict", "The request conflicts with the current state."),
    ErrorKind.TOO_LARGE: ("RequestEntityTooLarge", "The request body is too large."),
    ErrorKind.UNSUPPORTED_MEDIA: ("UnsupportedMediaType", "The media type is not supported."),
    ErrorKind.THROTTLED: ("TooManyRequests", "Rate limit exceeded."),
    ErrorKind.UNAVAILABLE: ("ServiceUnavailable", "The server is currently unable to handle the request."),
    ErrorKind.INTERNAL: ("InternalError", "The server hit an unexpected error."),
}


class ChatServiceError(Exception):
    """A request the service refuses, with the ACS code, message and target.

    Args:
        kind: why it failed; decides the HTTP status.
        message: the human-readable reason; the kind's ACS default when omitted.
        code: the ACS error code; the kind's ACS default when omitted.
        target: the field or identifier at fault, when there is one.
        retry_after: seconds the client should wait (throttling only).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str | None = None,
        *,
        code: str | None = None,
        target: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        default_code, default_message = _DEFAULTS[kind]
        self.kind = kind
        self.code = code or default_code
        self.message = message or default_message
        self.target = target
        self.retry_after = retry_after
        super().__init__(f"({self.code}) {self.message}")

    @property
    def status(self) -> int:
        """The HTTP status ACS uses for this error."""
        return STATUS[self.kind]


def error_body(code: str, message: str, target: str | None = None) -> dict[str, dict[str, str]]:
    """Build the ACS ``CommunicationErrorResponse`` body."""
    error = {"code": code, "message": message}
    if target is not None:
        error["target"] = target
    return {"error": error}
