"""Browser access: CORS on every route (``edge.py`` applies it, and collapses ``//`` paths).

Web pages on another origin call Threadline with the ACS JavaScript SDK. Every
such call is preflighted (the SDK sends ``authorization`` and ``x-ms-*``
headers), so the server answers ``OPTIONS`` for any path and method and adds
``Access-Control-Allow-Origin`` to every answer. Authentication is by bearer
token (or ``X-Skypetoken``), never by cookie, so allowing any origin exposes
nothing a page could not already do with a token it holds; credentials are
never allowed.

The SDK builds URLs by appending ``/chat/...`` to the endpoint string, so an
endpoint ending in ``/`` yields ``//chat/...``: leading slashes are collapsed
before routing.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

__all__ = ["EXPOSED_HEADERS", "REQUEST_HEADERS", "cors_middleware", "parse_origins"]

#: Request headers the ACS SDKs send (documented; any requested header is allowed).
REQUEST_HEADERS = (
    "authorization", "content-type", "accept", "x-ms-client-request-id", "x-ms-useragent", "x-ms-date",
    "x-ms-content-sha256", "x-ms-host", "repeatability-request-id", "repeatability-first-sent",
    "x-skypetoken", "image-filename", "ms-cv", "traceparent",
)

#: Response headers a page may read.
EXPOSED_HEADERS = (
    "location", "retry-after", "x-ms-error-code", "x-ms-client-request-id", "x-ms-request-id", "ms-cv",
    "repeatability-result", "www-authenticate", "x-trouter-skypetoken-deprecated", "content-length", "etag",
)

#: Methods the API serves.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def parse_origins(value: str) -> list[str]:
    """The allowed origins from a comma-separated setting (``*`` = any origin).

    Args:
        value: e.g. ``*`` or ``https://app.example.com,http://localhost:5173``.

    Returns:
        The origins, without trailing slashes; ``["*"]`` when any is allowed.

    Raises:
        ValueError: an origin is not ``scheme://host[:port]``.
    """
    origins = [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
    if not origins or "*" in origins:
        return ["*"]
    for origin in origins:
        scheme, sep, rest = origin.partition("://")
        if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
            raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
    return origins


def cors_middleware(origins: list[str]) -> Middleware:
    """The CORS layer for the app.

    Args:
        origins: allowed origins (``["*"]`` for any).

    Returns:
        Starlette's CORS middleware, configured for the ACS SDKs.
    """
    return Middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=list(METHODS),
        allow_headers=["*"],
        expose_headers=list(EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=600,
    )
