"""azure-core pipelines for the chat and identity clients, and the bearer policies.

The policy order is the one AutoRest clients use (request id, headers, user
agent, proxy, redirect, retry, authentication, hooks, logging, tracing,
sensitive-header cleanup, HTTP logging). Authentication sits after the retry
policy, so every retry is re-authorised and re-signed, and a 429/503 with
``Retry-After`` is retried after the delay the server asks for.
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import (
    AsyncBearerTokenCredentialPolicy,
    BearerTokenCredentialPolicy,
    CustomHookPolicy,
    DistributedTracingPolicy,
    HeadersPolicy,
    HttpLoggingPolicy,
    NetworkTraceLoggingPolicy,
    ProxyPolicy,
    RequestIdPolicy,
    SensitiveHeaderCleanupPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest

from .endpoint import is_loopback_url

__all__ = ["AsyncLoopbackBearerPolicy", "LoopbackBearerPolicy", "build_policies"]


def _allow_http_to_loopback(request: PipelineRequest[HttpRequest]) -> None:
    url = request.http_request.url
    if url.lower().startswith("http://") and is_loopback_url(url):
        request.context["enforce_https"] = False


class LoopbackBearerPolicy(BearerTokenCredentialPolicy):  # type: ignore[type-arg]
    """azure-core's bearer policy, which also lets plain http through to loopback hosts.

    azure-core refuses to send a bearer token over http. A development server
    on ``127.0.0.1`` has no TLS and the token never leaves the machine, so for
    loopback URLs (checked per request, nextLinks included) the check is
    switched off; any other http URL still raises ``ServiceRequestError``.
    """

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        """Authorise the request; see the class docstring for http."""
        _allow_http_to_loopback(request)
        super().on_request(request)


class AsyncLoopbackBearerPolicy(AsyncBearerTokenCredentialPolicy):  # type: ignore[type-arg]
    """The async twin of :class:`LoopbackBearerPolicy`."""

    async def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        """Authorise the request; see :class:`LoopbackBearerPolicy` for http."""
        _allow_http_to_loopback(request)
        await super().on_request(request)


def build_policies(
    *, auth_policy: Any, retry_policy: Any, redirect_policy: Any, sdk_moniker: str, **kwargs: Any
) -> list[Any]:
    """Return the policy list of a client.

    Args:
        auth_policy: the bearer or HMAC policy.
        retry_policy: ``RetryPolicy(**kwargs)`` or its async twin (a user's ``retry_policy`` wins).
        redirect_policy: ``RedirectPolicy(**kwargs)`` or its async twin (a user's wins).
        sdk_moniker: the User-Agent product, e.g. ``threadline-chat/0.1.0``.
        **kwargs: the client's keyword arguments (``headers``, ``user_agent``,
            ``retry_total``, ``logging_enable``... as in azure-core).
    """
    return [
        RequestIdPolicy(**kwargs),
        kwargs.get("headers_policy") or HeadersPolicy(**kwargs),
        kwargs.get("user_agent_policy") or UserAgentPolicy(sdk_moniker=sdk_moniker, **kwargs),
        kwargs.get("proxy_policy") or ProxyPolicy(**kwargs),
        kwargs.get("redirect_policy") or redirect_policy,
        kwargs.get("retry_policy") or retry_policy,
        auth_policy,
        kwargs.get("custom_hook_policy") or CustomHookPolicy(**kwargs),
        kwargs.get("logging_policy") or NetworkTraceLoggingPolicy(**kwargs),
        DistributedTracingPolicy(**kwargs),
        SensitiveHeaderCleanupPolicy(**kwargs),
        kwargs.get("http_logging_policy") or HttpLoggingPolicy(**kwargs),
    ]
