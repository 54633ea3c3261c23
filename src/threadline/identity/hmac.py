"""HMAC-SHA256 request signing, exactly as the ACS SDKs sign.

The string to sign is ``VERB\\n<path?query>\\n<x-ms-date>;<host>;<content hash>``
and the key is the base64-decoded access key. The SDK side uses
:func:`sign`; the server side uses :func:`verify` with every request target
and host the official clients are known to sign (see ``official-sdk.md`` §5).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable
from email.utils import formatdate, parsedate_to_datetime

__all__ = [
    "EMPTY_CONTENT_HASH",
    "SIGNED_HEADERS",
    "authorization",
    "content_hash",
    "date_header",
    "parse_authorization",
    "parse_date",
    "sign",
    "signature",
    "verify",
]

SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"
EMPTY_CONTENT_HASH = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
_SCHEME = "HMAC-SHA256"


def content_hash(body: bytes) -> str:
    """Return base64(SHA-256(body)), the ``x-ms-content-sha256`` header value."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def date_header(epoch_seconds: float) -> str:
    """Format a time as ``x-ms-date`` (RFC 1123, GMT)."""
    return formatdate(epoch_seconds, usegmt=True)


def parse_date(value: str) -> float | None:
    """Read an ``x-ms-date`` header into epoch seconds; None when unreadable."""
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a year or hour of 20 digits
        return None


def signature(key: bytes, method: str, path_and_query: str, date: str, host: str, body_hash: str) -> str:
    """Compute the base64 signature of one request.

    Args:
        key: the decoded access key.
        method: the HTTP verb, upper case.
        path_and_query: the request target as sent (``/identities?api-version=...``).
        date: the ``x-ms-date`` header.
        host: the signed host (``host[:port]``).
        body_hash: the ``x-ms-content-sha256`` header.

    Returns:
        The base64 HMAC-SHA256 of the string to sign.
    """
    to_sign = f"{method.upper()}\n{path_and_query}\n{date};{host};{body_hash}"
    digest = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def authorization(sig: str) -> str:
    """Build the ``Authorization`` header value for a signature."""
    return f"{_SCHEME} SignedHeaders={SIGNED_HEADERS}&Signature={sig}"


def parse_authorization(header: str) -> str | None:
    """Return the signature of an HMAC ``Authorization`` header, or None if it is not one."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.upper() != _SCHEME:
        return None
    fields = dict(part.partition("=")[::2] for part in rest.strip().split("&"))
    if fields.get("SignedHeaders", "").lower() != SIGNED_HEADERS:
        return None
    return fields.get("Signature") or None


def decode_key(access_key: str) -> bytes:
    """Decode a base64 access key.

    Raises:
        ValueError: the key is not valid base64.
    """
    try:
        return base64.b64decode(access_key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the access key must be base64") from exc


def sign(key: bytes, method: str, path_and_query: str, host: str, body: bytes, now: float) -> dict[str, str]:
    """Return the headers that sign one request, as the ACS SDKs send them."""
    date = date_header(now)
    body_hash = content_hash(body)
    sig = signature(key, method, path_and_query, date, host, body_hash)
    return {
        "x-ms-date": date,
        "x-ms-content-sha256": body_hash,
        "x-ms-return-client-request-id": "true",
        "Authorization": authorization(sig),
    }


def verify(
    key: bytes,
    method: str,
    targets: Iterable[str],
    hosts: Iterable[str],
    date: str,
    body_hash: str,
    provided: str,
) -> bool:
    """Check a signature against every request target and host a client may have signed.

    Returns:
        True when one combination gives ``provided`` (compared in constant time).
    """
    host_list = list(dict.fromkeys(hosts))
    for target in dict.fromkeys(targets):
        for host in host_list:
            expected = signature(key, method, target, date, host, body_hash)
            if hmac.compare_digest(expected, provided):
                return True
    return False
