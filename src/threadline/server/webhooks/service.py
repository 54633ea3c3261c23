"""Subscription management: the one model behind the CLI and the admin API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from threadline.protocol.inputs import invalid, parse_time_ms
from threadline.protocol.times import now_ms
from threadline.store.base import Store
from threadline.store.webhooks import DeadLetterRecord, SubscriptionRecord

from .model import Defaults, new_subscription
from .safety import AllowList, check_destination

__all__ = ["DEAD_LETTER_PAGE", "DEAD_LETTER_PAGE_MAX", "WebhookService", "dead_letter_view"]

#: Dead letters listed when no limit is asked for, and the most listed at once.
DEAD_LETTER_PAGE, DEAD_LETTER_PAGE_MAX = 1000, 5000


def dead_letter_view(dead: DeadLetterRecord) -> dict[str, Any]:
    """A dead letter as the CLI and admin API show it (with the exact envelope that was refused)."""
    return {
        "id": dead.id, "eventId": dead.event_id, "eventType": dead.event_type, "threadId": dead.thread_id,
        "position": dead.position, "reason": dead.reason, "attempts": dead.attempts,
        "deadLetteredOn": dead.created_ms, "replayRequested": dead.replay,
        "event": msgspec.json.decode(dead.envelope),
    }


@dataclass(slots=True)
class WebhookService:
    """Adds, lists, removes and replays subscriptions.

    Args:
        store: the opened store.
        allow: the destination allow-list.
        defaults: the retry-policy defaults.
    """

    store: Store
    allow: AllowList
    defaults: Defaults = Defaults()  # noqa: RUF009 - frozen

    async def add(self, url: str, **options: Any) -> SubscriptionRecord:
        """Validate and store a new (pending) subscription; see :func:`.model.new_subscription`.

        Raises:
            SubscriptionError: a bad option.
            DestinationError: the URL is not an allowed destination.
        """
        sub = new_subscription(url, defaults=self.defaults, **options)
        await check_destination(url, self.allow)
        await self.store.webhooks.add_subscription(sub)
        return sub

    async def all(self) -> list[SubscriptionRecord]:
        """Every subscription, oldest first."""
        return await self.store.webhooks.list_subscriptions()

    async def get(self, sub_id: str) -> SubscriptionRecord | None:
        """One subscription, or None."""
        return await self.store.webhooks.get_subscription(sub_id)

    async def remove(self, sub_id: str) -> bool:
        """Delete a subscription and its dead letters; False if unknown."""
        return await self.store.webhooks.remove_subscription(sub_id)

    async def dead_letters(self, sub_id: str, limit: int | None = None) -> list[DeadLetterRecord]:
        """The dead letters of a subscription, oldest first.

        Args:
            sub_id: the subscription.
            limit: the most to list, 1..:data:`DEAD_LETTER_PAGE_MAX`; None for :data:`DEAD_LETTER_PAGE`.

        Returns:
            At most ``limit`` dead letters.

        Raises:
            ChatServiceError: 400 naming ``maxPageSize`` for a limit out of range.
        """
        if limit is None:
            limit = DEAD_LETTER_PAGE
        elif not 1 <= limit <= DEAD_LETTER_PAGE_MAX:
            raise invalid(f"maxPageSize must be 1 to {DEAD_LETTER_PAGE_MAX}.", "maxPageSize")
        return await self.store.webhooks.list_deadletters(sub_id, limit)

    async def replay(self, sub_id: str, since: str | None) -> tuple[int, str | None]:
        """Redeliver: every dead letter, and with ``since`` every kept event created since then.

        Args:
            sub_id: the subscription.
            since: an ISO 8601 date-time (see :func:`~threadline.protocol.inputs.parse_time_ms`), or None.

        Returns:
            (dead letters marked, the rewound cursor token or None).

        Raises:
            ChatServiceError: 400 naming ``since`` when it is not a date-time within the accepted range;
                nothing is marked then.
        """
        since_ms = parse_time_ms(since, "since")
        marked = await self.store.webhooks.request_replay(sub_id)
        cursor = None
        if since_ms is not None:
            cursor = await self.store.webhooks.rewind(sub_id, min(since_ms, now_ms()))
        return marked, cursor

    async def validate(self, sub_id: str, code: str) -> bool:
        """Finish an Event Grid handshake through the ``validationUrl``."""
        return await self.store.webhooks.activate(sub_id, code)
