"""ACS error bodies and the azure-core exception each status maps to.

The official clients map 401 to ``ClientAuthenticationError``, 404 to
``ResourceNotFoundError``, 409 to ``ResourceExistsError``, 304 to
``ResourceNotModifiedError`` and any other unexpected status to
``HttpResponseError``. The ACS body ``{"error": {"code", "message", "target"}}``
is parsed into ``exc.model.error`` (a :class:`ChatError`); azure-core itself
also fills ``exc.error`` and formats ``str(exc)`` as ``(Code) message``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
)
from azure.core.rest import AsyncHttpResponse, HttpResponse

from threadline.protocol import wire

from .model_base import Model

__all__ = ["ERROR_MAP", "ChatError", "CommunicationErrorResponse", "error_for_response"]

#: Status codes with a dedicated azure-core exception; anything else is ``HttpResponseError``.
ERROR_MAP: dict[int, type[HttpResponseError]] = {
    304: ResourceNotModifiedError,
    401: ClientAuthenticationError,
    404: ResourceNotFoundError,
    409: ResourceExistsError,
}


class ChatError(Model):
    """An ACS error: ``code``, ``message``, ``target``, ``details`` and ``inner_error``.

    Args:
        code: the error code (``Forbidden``, or an HTTP status as a string for participant errors).
        message: the human-readable message.
    """

    _validation: ClassVar[dict[str, dict[str, bool]]] = {
        "code": {"required": True},
        "message": {"required": True},
        "target": {"readonly": True},
        "details": {"readonly": True},
        "inner_error": {"readonly": True},
    }
    _attribute_map: ClassVar[dict[str, dict[str, str]]] = {
        "code": {"key": "code", "type": "str"},
        "message": {"key": "message", "type": "str"},
        "target": {"key": "target", "type": "str"},
        "details": {"key": "details", "type": "[ChatError]"},
        "inner_error": {"key": "innererror", "type": "ChatError"},
    }

    def __init__(self, *, code: str, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.code = code
        self.message = message
        self.target: str | None = None
        self.details: list[ChatError] | None = None
        self.inner_error: ChatError | None = None

    @classmethod
    def _from_wire(cls, error: wire.CommunicationError) -> ChatError:
        result = cls(code=error.code, message=error.message)
        result.target = error.target
        result.details = [cls._from_wire(d) for d in error.details] if error.details is not None else None
        result.inner_error = cls._from_wire(error.innererror) if error.innererror is not None else None
        return result


class CommunicationErrorResponse(Model):
    """The ACS error envelope; ``error`` is the :class:`ChatError`."""

    _attribute_map: ClassVar[dict[str, dict[str, str]]] = {"error": {"key": "error", "type": "ChatError"}}
    _subtypes: ClassVar[dict[str, type[Model]]] = {"ChatError": ChatError}

    def __init__(self, *, error: ChatError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error


def _parse_error(body: bytes) -> CommunicationErrorResponse | None:
    try:
        decoded = wire.decode(body, wire.ErrorResponse)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return CommunicationErrorResponse(error=ChatError._from_wire(decoded.error))


def error_for_response(response: HttpResponse | AsyncHttpResponse) -> HttpResponseError:
    """Build the exception for an unexpected status; the caller raises it.

    The response body must already be read.
    """
    model = _parse_error(response.content) if response.content else None
    error_type = ERROR_MAP.get(response.status_code, HttpResponseError)
    return error_type(response=response, model=model)
