"""``threadline webhook add|list|remove|deadletters|replay``: the CLI over the shared service.

Like ``threadline user``, the commands open the database named by the
settings (``--data``/``--database``), so they work while servers run: the
deliverers pick changes up within a few seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from threadline.protocol.errors import ChatServiceError
from threadline.server.preflight import SetupError
from threadline.server.settings import Settings

__all__ = ["register", "run"]


def register(commands: Any, common: Any) -> None:
    """Add the ``webhook`` command and its subcommands to the CLI parser."""
    webhook = commands.add_parser("webhook", help="manage Event Grid / CloudEvents webhook subscriptions")
    sub = webhook.add_subparsers(dest="webhook_command", required=True)
    add = sub.add_parser("add", help="subscribe a URL (prints the subscription as JSON)")
    common(add)
    add.add_argument("url")
    add.add_argument("--schema", choices=["eventgrid", "cloudevents"], default="eventgrid")
    add.add_argument("--events", dest="event_types", help="comma-separated event types (default: all chat events)")
    add.add_argument("--subject-prefix", help="deliver only subjects starting with this, e.g. thread/19:...")
    add.add_argument("--secret", help="sign each body with HMAC-SHA256 (header x-threadline-signature)")
    add.add_argument("--batch-size", type=int, help="events per POST, 1..5000 (default 1)")
    add.add_argument("--max-attempts", type=int, help="attempts per event, 1..30 (default 30)")
    add.add_argument("--ttl-minutes", type=int, help="minutes an event may wait, 1..1440 (default 1440)")
    lister = sub.add_parser("list", help="list subscriptions")
    common(lister)
    remove = sub.add_parser("remove", help="delete a subscription and its dead letters")
    common(remove)
    remove.add_argument("id")
    dead = sub.add_parser("deadletters", help="print a subscription's dead letters as JSON lines")
    common(dead)
    dead.add_argument("id")
    dead.add_argument("--limit", type=int, help="most dead letters to print, 1..5000 (default 1000)")
    replay = sub.add_parser("replay", help="redeliver the dead letters, and with --since every kept event since")
    common(replay)
    replay.add_argument("id")
    replay.add_argument("--since", help="ISO 8601 date-time: also redeliver the events created since then")


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False))


#: The flag, value and fix of the service's refusals (by their target), for the one-line CLI error.
_FLAGS = {
    "maxPageSize": ("--limit", "limit", "use a number from 1 to 5000"),
    "since": ("--since", "since", "use an ISO 8601 date-time such as 2026-01-01T00:00:00Z"),
}


def _refused(exc: ChatServiceError, args: argparse.Namespace) -> SetupError:
    """The service's 400 as the CLI reports any bad flag: ``--flag value: what is wrong; the fix``."""
    flag, attr, fix = _FLAGS[exc.target or ""]
    reason = exc.message.removeprefix(f"{exc.target} ").rstrip(".")
    return SetupError(f"{flag} {getattr(args, attr)}: {reason}; {fix}")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run a ``webhook`` subcommand; return the exit code."""
    from threadline.server.app import open_store

    from .model import SubscriptionError, public_view
    from .safety import AllowList, DestinationError
    from .service import WebhookService, dead_letter_view

    settings = settings.prepared()
    store = open_store(settings)
    await store.open()
    service = WebhookService(store, AllowList.parse(settings.webhook_allow))
    try:
        command = args.webhook_command
        if command == "add":
            events = [e for e in (args.event_types or "").split(",") if e.strip()] or None
            try:
                sub = await service.add(
                    args.url, schema=args.schema, event_types=events, subject_prefix=args.subject_prefix,
                    secret=args.secret, batch_size=args.batch_size, max_attempts=args.max_attempts,
                    ttl_minutes=args.ttl_minutes,
                )
            except (SubscriptionError, DestinationError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            _print(public_view(sub))
        elif command == "list":
            for sub in await service.all():
                _print(public_view(sub))
        elif command == "remove":
            if not await service.remove(args.id):
                print(f"error: no subscription {args.id}", file=sys.stderr)
                return 1
            print(f"removed {args.id}")
        elif command == "deadletters":
            if await service.get(args.id) is None:
                print(f"error: no subscription {args.id}", file=sys.stderr)
                return 1
            try:
                letters = await service.dead_letters(args.id, args.limit)
            except ChatServiceError as exc:
                raise _refused(exc, args) from None
            for dead in letters:
                _print(dead_letter_view(dead))
        else:
            if await service.get(args.id) is None:
                print(f"error: no subscription {args.id}", file=sys.stderr)
                return 1
            try:
                marked, cursor = await service.replay(args.id, args.since)
            except ChatServiceError as exc:
                raise _refused(exc, args) from None
            _print({"deadLettersReplayed": marked, "cursor": cursor})
    finally:
        await store.close()
    return 0
