"""Endpoints: scheme defaults, the loopback exception to https, connection strings."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback_url", "normalize_endpoint", "parse_connection_string"]

_CONNECTION_STRING_FORMAT = (
    "Invalid connection string. The format should be as follows: "
    "endpoint=https://<ResourceUrl>/;accesskey=<KeyValue>"
)


def _is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Return True when the URL's host is ``localhost``, 127.0.0.0/8 or ``::1``."""
    return _is_loopback_host(urlsplit(url).hostname or "")


def normalize_endpoint(endpoint: str) -> str:
    """Check an endpoint and give it a scheme.

    A bare host gets ``https://``. ``http://`` is kept only for loopback hosts,
    where a development server listens without TLS.

    Args:
        endpoint: ``https://host[:port][/prefix]``, ``host``, or ``http://127.0.0.1:port``.

    Returns:
        The endpoint with its scheme, as given otherwise.

    Raises:
        ValueError: not a string, no host, another scheme, or ``http://`` to a non-loopback host.
    """
    if not isinstance(endpoint, str):
        raise ValueError("Host URL must be a string")
    if not endpoint.lower().startswith("http"):
        endpoint = "https://" + endpoint
    parts = urlsplit(endpoint.rstrip("/"))
    if not parts.netloc:
        raise ValueError(f"Invalid URL: {endpoint}")
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"Invalid URL scheme: {endpoint}")
    if parts.scheme.lower() == "http" and not _is_loopback_host(parts.hostname or ""):
        raise ValueError(
            "Plain http is only allowed to a loopback host (localhost, 127.0.0.0/8, ::1); "
            f"use https: {endpoint}"
        )
    return endpoint


def parse_connection_string(conn_str: str) -> tuple[str, str]:
    """Split ``endpoint=...;accesskey=...`` into the endpoint and the access key.

    Keys are case-insensitive and other keys are ignored, as in the official
    SDK. Unlike it, the endpoint keeps its scheme, so ``http://127.0.0.1:port``
    stays plain http (a bare host still becomes https).

    Raises:
        ValueError: not a string, or a key is missing.
    """
    if not isinstance(conn_str, str) or not conn_str:
        raise ValueError("Connection string must be a non-empty string.")
    values: dict[str, str] = {}
    for part in conn_str.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    endpoint = values.get("endpoint")
    access_key = values.get("accesskey")
    if not endpoint or not access_key:
        raise ValueError(_CONNECTION_STRING_FORMAT)
    return endpoint.rstrip("/"), access_key
