"""Destination safety: which URLs Threadline may POST events to.

Rules (``docs/webhooks.md``): the scheme is ``http`` or ``https``; the host
must resolve, and every address it resolves to must be public, unless the
host name or a network containing the address is in the allow-list setting
(``THREADLINE_WEBHOOK_ALLOW``, comma-separated host names and CIDR networks,
``*`` allowing everything). Loopback, private, link-local, multicast,
reserved and unspecified addresses are thus refused by default. The check
runs when a subscription is added and again before every delivery, since
DNS answers change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = ["AllowList", "DestinationError", "check_destination", "check_url_shape"]


class DestinationError(ValueError):
    """The destination URL is not allowed."""


class AllowList:
    """Host names and networks that may be non-public destinations.

    Args:
        entries: host names, CIDR networks or single addresses; ``*`` allows all.
    """

    def __init__(self, entries: Sequence[str]) -> None:
        self.any = False
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                self.any = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry)

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        """An allow-list from the comma-separated setting."""
        return cls((text or "").split(","))

    def allows(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether a non-public address of a host is allowed."""
        return self.any or host.lower() in self.hosts or any(address in n for n in self.networks)


def check_url_shape(url: str) -> tuple[str, int]:
    """Check scheme and host; return (host, port).

    Raises:
        DestinationError: not an absolute http(s) URL with a host, or it carries credentials.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationError(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise DestinationError("the destination must be an http or https URL")
    if not parts.hostname:
        raise DestinationError("the destination URL has no host")
    if parts.username or parts.password:
        raise DestinationError("the destination URL must not carry credentials (use --secret)")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def check_destination(url: str, allow: AllowList) -> None:
    """Check a destination against the rules of this module.

    Args:
        url: the destination.
        allow: the allow-list setting.

    Raises:
        DestinationError: the URL is refused (the message says why, never with secrets).
    """
    host, port = check_url_shape(url)
    if allow.any:
        return
    try:
        literal = ipaddress.ip_address(host)
        addresses = [literal]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise DestinationError(f"the host {host} does not resolve") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        if not _public(address) and not allow.allows(host, address):
            raise DestinationError(
                f"{host} resolves to the non-public address {address}; allow it with THREADLINE_WEBHOOK_ALLOW"
            )
