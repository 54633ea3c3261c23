"""Send :class:`~.call.Call` objects: the only place where sync and async differ.

Both runners own an azure-core pipeline client built by :func:`.pipeline.build_policies`.
The pipeline is run with ``stream=False``, so the transport has read the body by
the time :meth:`Call.finish` looks at it. Per-call keyword arguments (``headers``,
``timeout``, ``connection_verify``...) go to the pipeline as in any azure-core client.
"""

from __future__ import annotations

from typing import Any, TypeVar

from azure.core import AsyncPipelineClient, PipelineClient
from azure.core.pipeline.policies import AsyncRedirectPolicy, AsyncRetryPolicy, RedirectPolicy, RetryPolicy
from azure.core.rest import AsyncHttpResponse, HttpRequest, HttpResponse

from .call import Call
from .pipeline import build_policies

__all__ = ["AsyncRunner", "SyncRunner"]

T = TypeVar("T")


class SyncRunner:
    """Runs calls through a :class:`azure.core.PipelineClient`.

    Args:
        endpoint: the service endpoint.
        auth_policy: the authentication policy.
        sdk_moniker: the User-Agent product.
        **kwargs: azure-core client settings (``transport``, ``connection_verify``, retry...).
    """

    def __init__(self, endpoint: str, auth_policy: Any, sdk_moniker: str, **kwargs: Any) -> None:
        self.endpoint = endpoint
        policies = build_policies(
            auth_policy=auth_policy,
            retry_policy=RetryPolicy(**kwargs),
            redirect_policy=RedirectPolicy(**kwargs),
            sdk_moniker=sdk_moniker,
            **kwargs,
        )
        self._client: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            base_url=endpoint, policies=policies, **kwargs
        )

    def run(self, call: Call[T], **kwargs: Any) -> T:
        """Send the call and return its parsed result (see :meth:`Call.finish`)."""
        response = self._client.send_request(call.request(self.endpoint), **kwargs)
        return call.finish(response)

    def close(self) -> None:
        """Close the transport."""
        self._client.close()

    def __enter__(self) -> SyncRunner:
        self._client.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self._client.__exit__(*args)


class AsyncRunner:
    """The async twin of :class:`SyncRunner`, on :class:`azure.core.AsyncPipelineClient`."""

    def __init__(self, endpoint: str, auth_policy: Any, sdk_moniker: str, **kwargs: Any) -> None:
        self.endpoint = endpoint
        policies = build_policies(
            auth_policy=auth_policy,
            retry_policy=AsyncRetryPolicy(**kwargs),
            redirect_policy=AsyncRedirectPolicy(**kwargs),
            sdk_moniker=sdk_moniker,
            **kwargs,
        )
        self._client: AsyncPipelineClient[HttpRequest, AsyncHttpResponse] = AsyncPipelineClient(
            base_url=endpoint, policies=policies, **kwargs
        )

    async def run(self, call: Call[T], **kwargs: Any) -> T:
        """Send the call and return its parsed result (see :meth:`Call.finish`)."""
        response = await self._client.send_request(call.request(self.endpoint), **kwargs)
        return call.finish(response)

    async def close(self) -> None:
        """Close the transport."""
        await self._client.close()

    async def __aenter__(self) -> AsyncRunner:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self._client.__aexit__(*args)
