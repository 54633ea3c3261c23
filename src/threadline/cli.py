"""The ``threadline`` command: serve, user, token, migrate, backup, connection-string, webhook."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from threadline.server.limits import Limits
from threadline.server.settings import Settings

__all__ = ["main"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="data folder (THREADLINE_DATA, default ./threadline-data)")
    parser.add_argument("--database", help="postgresql://... or a SQLite file (THREADLINE_DATABASE)")
    parser.add_argument("--access-key", help="base64 access key (THREADLINE_ACCESS_KEY)")
    parser.add_argument("--resource-id", help="resource id in user ids (THREADLINE_RESOURCE_ID)")


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    changes: dict[str, object] = {}
    for name, attr in (("data", "data_dir"), ("database", "database"), ("access_key", "access_key"),
                       ("resource_id", "resource_id"), ("host", "host"), ("http_port", "http_port"),
                       ("https_port", "https_port"), ("events", "events"), ("workers", "workers"),
                       ("synchronous", "sqlite_synchronous"), ("throttle", "throttle"),
                       ("throttle_keys", "throttle_keys")):
        value = getattr(args, name, None)
        if value is not None:
            changes[attr] = value
    if getattr(args, "no_limits", False):
        changes["limits"] = Limits.unlimited()
    return replace(settings, **changes)  # type: ignore[arg-type]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="threadline", description="Self-hosted ACS-compatible chat.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host", help="listen address (THREADLINE_HOST, default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="HTTP port, -1 to disable (THREADLINE_HTTP_PORT, 8080)")
    serve.add_argument("--https-port", type=int, help="HTTPS port, -1 to disable (THREADLINE_HTTPS_PORT, 8443)")
    serve.add_argument("--events", help="redis://... to share real-time events between nodes")
    serve.add_argument("--workers", type=int, help="server processes on this machine (PostgreSQL only)")
    serve.add_argument("--synchronous", choices=["NORMAL", "FULL"], help="SQLite durability level")
    serve.add_argument("--throttle", help="on (ACS rates), off, or a factor scaling them (THREADLINE_THROTTLE)")
    serve.add_argument("--throttle-keys", type=int,
                       help="most rate-limit windows held in memory (THREADLINE_THROTTLE_KEYS, 100000)")
    serve.add_argument("--no-limits", action="store_true",
                       help="lift ACS size limits and throttling (THREADLINE_NO_LIMITS=1)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                       help="info adds one access line per request (THREADLINE_LOG_LEVEL, default warning)")
    serve.add_argument("--log-format", choices=["json", "text"], help="THREADLINE_LOG_FORMAT, default json")

    user = commands.add_parser("user", help="create an identity (prints its id and a token)")
    _common(user)
    user.add_argument("--scopes", default="chat,voip", help="comma-separated token scopes")
    user.add_argument("--minutes", type=int, default=1440, help="token lifetime, 60..1440")

    token = commands.add_parser("token", help="issue a token for an identity")
    _common(token)
    token.add_argument("user_id")
    token.add_argument("--scopes", default="chat,voip")
    token.add_argument("--minutes", type=int, default=1440)

    migrate = commands.add_parser("migrate", help="apply pending schema migrations")
    _common(migrate)

    backup = commands.add_parser("backup", help="write a consistent copy of the database, even while serving")
    _common(backup)
    backup.add_argument("path", type=Path, help="the file to write (SQLite)")

    conn = commands.add_parser("connection-string", help="print the connection string")
    _common(conn)
    conn.add_argument("--endpoint", default="https://127.0.0.1:8443", help="the endpoint clients use")

    from threadline.server.webhooks.cli import register as register_webhook

    register_webhook(commands, _common)
    return parser


async def _with_identity(settings: Settings, work: str, args: argparse.Namespace) -> int:
    from threadline.identity.tokens import TokenIssuer, derive_signing_key
    from threadline.protocol.errors import ChatServiceError
    from threadline.server.app import open_store
    from threadline.server.services.identity import IdentityService

    settings = settings.prepared()
    assert settings.resource_id is not None
    store = open_store(settings)
    await store.open()
    try:
        service = IdentityService(
            store, TokenIssuer(derive_signing_key(settings.key_bytes), settings.resource_id), settings.resource_id
        )
        scopes = [s for s in args.scopes.split(",") if s]
        try:
            if work == "user":
                user, issued = await service.create(scopes, args.minutes)
                print(f"user:  {user.id}")
                if issued:
                    print(f"token: {issued.token}")
            else:
                issued = await service.issue(args.user_id, scopes, args.minutes)
                print(issued.token)
        except ChatServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    finally:
        await store.close()
    return 0


async def _migrate(settings: Settings) -> int:
    from threadline.server.app import open_store

    store = open_store(settings.prepared())
    await store.open()  # opening applies pending migrations
    await store.close()
    print("migrations applied")
    return 0


async def _backup(settings: Settings, path: Path) -> int:
    if settings.is_postgres:
        print("PostgreSQL is backed up with its own tools; for example:")
        print(f"  pg_dump --format=custom --file {shlex.quote(str(path))} {shlex.quote(settings.database_url)}")
        return 0
    from threadline.store.sqlite import SqliteStore

    source = Path(settings.database_url)
    if not source.exists():
        print(f"error: no database at {source}", file=sys.stderr)
        return 1
    store = SqliteStore(source)
    await store.open()
    try:
        size = await store.backup(path)
    finally:
        await store.close()
    print(f"backed up {source} to {path} ({size} bytes)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``threadline`` command.

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).

    Returns:
        The process exit code.
    """
    args = _parser().parse_args(argv)
    settings = _settings(args)
    if args.command == "serve":
        from threadline.server.metrics import configure_logging
        from threadline.server.runner import run

        configure_logging(
            args.log_level or os.environ.get("THREADLINE_LOG_LEVEL") or "warning",
            args.log_format or os.environ.get("THREADLINE_LOG_FORMAT") or "json",
        )
        run(settings)
        return 0
    if args.command in ("user", "token"):
        return asyncio.run(_with_identity(settings, args.command, args))
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "backup":
        return asyncio.run(_backup(settings, args.path))
    if args.command == "webhook":
        from threadline.server.webhooks.cli import run as run_webhook

        return asyncio.run(run_webhook(settings, args))
    if args.command == "connection-string":
        print(settings.prepared().connection_string(args.endpoint))
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
