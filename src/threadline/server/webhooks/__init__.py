"""Event Grid / CloudEvents webhooks: ACS chat events delivered durably (``docs/webhooks.md``).

Modules, one concern each: :mod:`.mapping` (store events -> ACS event types
and data), :mod:`.envelopes` (both schemas, the handshake event, the
signature), :mod:`.model` (subscriptions and filters), :mod:`.safety`
(destinations), :mod:`.delivery` (one HTTP attempt), :mod:`.schedule`
(retries), :mod:`.cursor` (event-log positions), :mod:`.worker` (leases and
the delivery loop), :mod:`.service` (management), :mod:`.telemetry`.
"""

from __future__ import annotations

from threadline.server.settings import Settings

from .envelopes import default_topic
from .safety import AllowList
from .worker import Dispatcher, WebhookConfig

__all__ = ["Dispatcher", "WebhookConfig", "config_from"]


def config_from(settings: Settings) -> WebhookConfig:
    """The webhook settings of a prepared :class:`Settings`."""
    assert settings.resource_id is not None
    return WebhookConfig(
        topic=settings.webhook_topic or default_topic(settings.resource_id),
        allow=AllowList.parse(settings.webhook_allow),
        timeout=settings.webhook_timeout,
        poll=settings.webhook_poll_ms / 1000,
        lease=float(settings.webhook_lease_seconds),
        retry_scale=settings.webhook_retry_scale,
        public_url=settings.webhook_public_url,
    )
