"""One HTTP attempt: a batch POST, or a handshake, with Event Grid's headers.

Every request has a total timeout, follows no redirect (a 3xx is a failure),
and reads at most :data:`MAX_RESPONSE_BYTES` of the answer. 200-204 is
success; 400, 401, 403 and 413 are failures not worth retrying (as Event Grid
treats them); anything else, a timeout or a connection error is retried.

aiohttp is imported at the first request, not with this module: importing it builds
its default TLS contexts (the system's CA bundle), ~0.5 s of CPU that every
``threadline`` command and every server start paid, webhooks or not.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from .envelopes import CLOUDEVENTS, SIGNATURE_HEADER, sign

if TYPE_CHECKING:
    import aiohttp

__all__ = ["MAX_RESPONSE_BYTES", "NO_RETRY", "Attempt", "Poster"]

MAX_RESPONSE_BYTES = 64 * 1024
NO_RETRY = frozenset({400, 401, 403, 413})
ORIGIN = "eventgrid.azure.net"


async def _capped(response: aiohttp.ClientResponse) -> bytes:
    """The answer's body up to :data:`MAX_RESPONSE_BYTES`; the rest is never read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16384):
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RESPONSE_BYTES:
            break
    return b"".join(chunks)[:MAX_RESPONSE_BYTES]


@dataclass(slots=True)
class Attempt:
    """What one request gave."""

    ok: bool
    status: int | None
    retry: bool
    ms: float
    body: bytes = b""
    error: str | None = None
    allowed_origin: str | None = None


class Poster:
    """Sends requests to webhook destinations over one aiohttp session.

    Args:
        timeout: seconds for the whole request, answer included.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import aiohttp  # at the first request (see the module)

            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=10),
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()

    async def _request(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> Attempt:
        import aiohttp  # imported by _client already; here for its exception type

        start = time.perf_counter()
        try:
            async with self._client().request(method, url, headers=headers, data=data,
                                              allow_redirects=False) as response:
                body = await _capped(response)
                status = response.status
                ok = 200 <= status <= 204
                return Attempt(ok, status, not ok and status not in NO_RETRY,
                               (time.perf_counter() - start) * 1000, body,
                               None if ok else f"HTTP {status}",
                               response.headers.get("WebHook-Allowed-Origin"))
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            reason = "timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
            return Attempt(False, None, True, (time.perf_counter() - start) * 1000, error=reason)

    async def post(self, url: str, payload: bytes, *, schema: str, sub_name: str, kind: str,
                   delivery_count: int, secret: str | None, count: int, first_id: str) -> Attempt:
        """POST a JSON array of envelopes.

        Args:
            url: the destination.
            payload: the body.
            schema: ``eventgrid`` or ``cloudevents`` (sets ``Content-Type``).
            sub_name: ``aeg-subscription-name``.
            kind: ``aeg-event-type``: ``Notification`` or ``SubscriptionValidation``.
            delivery_count: ``aeg-delivery-count`` (0 on the first attempt).
            secret: signs the body in :data:`~.envelopes.SIGNATURE_HEADER` when given.
            count: events in the body.
            first_id: ``aeg-output-event-id`` of a single-event body.

        Returns:
            The attempt's result.
        """
        if schema == CLOUDEVENTS and payload.startswith(b"{"):
            content_type = "application/cloudevents+json; charset=utf-8"
        elif schema == CLOUDEVENTS:
            content_type = "application/cloudevents-batch+json; charset=utf-8"
        else:
            content_type = "application/json; charset=utf-8"
        headers = {
            "Content-Type": content_type,
            "aeg-event-type": kind,
            "aeg-subscription-name": sub_name.upper(),
            "aeg-delivery-count": str(delivery_count),
            "aeg-metadata-version": "1",
            "aeg-data-version": "1.0",
        }
        if count == 1:
            headers["aeg-output-event-id"] = first_id
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, payload)
        return await self._request("POST", url, headers, payload)

    async def abuse_protection(self, url: str) -> Attempt:
        """The CloudEvents 1.0 webhook OPTIONS handshake; ``ok`` only if the origin is allowed."""
        result = await self._request("OPTIONS", url, {"WebHook-Request-Origin": ORIGIN}, None)
        allowed = (result.allowed_origin or "").strip()
        if result.ok and allowed not in (ORIGIN, "*"):
            result.ok, result.retry, result.error = False, True, "WebHook-Allowed-Origin missing"
        return result


def validation_echo(body: bytes) -> str | None:
    """The ``validationResponse`` of a synchronous Event Grid handshake answer, if any."""
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(answer, dict) and isinstance(answer.get("validationResponse"), str):
        return str(answer["validationResponse"])
    return None
