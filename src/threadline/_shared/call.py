"""One HTTP call described without doing it: the seam between request building and I/O.

Request builders (``chat/_requests.py``, ``identity/_requests.py``) turn a
method call into a :class:`Call`; the sync and async clients send it through
their azure-core pipeline and hand the response back to :meth:`Call.finish`,
which checks the status, maps errors and parses the body. So the twins share
everything but the ``await``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import msgspec
from azure.core.exceptions import DecodeError
from azure.core.rest import AsyncHttpResponse, HttpRequest, HttpResponse

from threadline.protocol import wire

from .errors import error_for_response

__all__ = [
    "JSON",
    "MERGE_PATCH",
    "Call",
    "join_url",
    "parse_json",
    "parse_nothing",
    "path_segment",
    "rebase_link",
    "with_api_version",
]

T = TypeVar("T")

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


def path_segment(value: str) -> str:
    """Percent-encode one path segment.

    ``:`` and ``@`` are legal in a path and are left alone, so the requests and
    the aiohttp transports put the same bytes on the wire (yarl would decode
    ``%3A`` back to ``:``); that keeps HMAC signatures transport-independent.
    """
    return quote(value, safe=":@")


def join_url(endpoint: str, path: str) -> str:
    """Append a path (starting with ``/``) to an endpoint, keeping the endpoint's own path."""
    return endpoint.rstrip("/") + path


def rebase_link(endpoint: str, link: str) -> str:
    """Turn a ``nextLink`` into a URL on ``endpoint``.

    A relative link is appended to the endpoint (a path prefix works). An
    absolute link keeps its path and query but gets the endpoint's scheme and
    host, so the bearer token never travels to another origin or over plain
    http because a server wrote its own idea of its address.
    """
    if link.startswith("/"):
        return join_url(endpoint, link)
    parts = urlsplit(link)
    if not parts.scheme:
        return join_url(endpoint, "/" + link)
    base = urlsplit(endpoint)
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))


def with_api_version(url: str, api_version: str) -> str:
    """Replace any ``api-version`` in a URL's query by ``api_version``; the rest stays byte for byte."""
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] != "api-version"]
    kept.append(f"api-version={quote(api_version, safe='')}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))


@dataclass
class Call(Generic[T]):
    """A request to send and how to read its answer.

    Attributes:
        method: the HTTP verb.
        url: an endpoint-relative path (``/chat/threads``) or a ``nextLink``
            (made relative to the endpoint by :func:`rebase_link`).
        success: the one status code the operation answers on success.
        parse: turns the response body into the result.
        query: query parameters (``api-version`` included).
        headers: extra headers.
        body: the JSON body, already encoded; None sends no body.
        content_type: the body's media type.
    """

    method: str
    url: str
    success: int
    parse: Callable[[bytes], T]
    query: Mapping[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str = JSON

    def request(self, endpoint: str) -> HttpRequest:
        """Build the azure-core request against ``endpoint``.

        Every POST carries a ``repeatability-request-id`` (a fresh uuid4 unless
        the builder set one). The request object is reused by the retry
        policy, so a retried POST repeats the same id.
        """
        url = rebase_link(endpoint, self.url)
        headers = {"Accept": JSON, **self.headers}
        if self.method == "POST":
            headers.setdefault("repeatability-request-id", str(uuid.uuid4()))
        if self.body is not None:
            headers["Content-Type"] = self.content_type
        return HttpRequest(
            self.method, url, params=dict(self.query) or None, headers=headers, content=self.body
        )

    def finish(self, response: HttpResponse | AsyncHttpResponse) -> T:
        """Check the status and parse the (already read) body.

        Raises:
            azure.core.exceptions.HttpResponseError: any other status, as the
                matching subclass (see :mod:`.errors`).
            azure.core.exceptions.DecodeError: the body does not match the wire model.
        """
        if response.status_code != self.success:
            raise error_for_response(response)
        try:
            return self.parse(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            raise DecodeError(f"Unexpected response body: {exc}", response=response, error=exc) from exc


def parse_nothing(body: bytes) -> None:
    """Parser of operations that answer with no body."""
    return None


def parse_json(into: type[T]) -> Callable[[bytes], T]:
    """Parser decoding the body into a wire model."""

    def parse(body: bytes) -> T:
        return wire.decode(body, into)

    return parse
