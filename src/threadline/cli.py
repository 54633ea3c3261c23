"""The ``threadline`` command: serve, user, token, migrate, backup, connection-string, webhook."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from threadline.identity.tokens import SCOPES
from threadline.server.limits import Limits
from threadline.server.preflight import SetupError
from threadline.server.settings import Settings

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the value, the flag, where to read more) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="data folder (THREADLINE_DATA, default ./threadline-data)")
    parser.add_argument("--database", help="postgresql://... or a SQLite file (THREADLINE_DATABASE)")
    parser.add_argument("--access-key", help="base64 access key (THREADLINE_ACCESS_KEY)")
    parser.add_argument("--resource-id", help="resource id in user ids (THREADLINE_RESOURCE_ID)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="info adds one access line per request; debug also shows tracebacks of errors "
                        "(THREADLINE_LOG_LEVEL, default warning)")


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    changes: dict[str, object] = {}
    for name, attr in (("data", "data_dir"), ("database", "database"), ("access_key", "access_key"),
                       ("resource_id", "resource_id"), ("host", "host"), ("http_port", "http_port"),
                       ("https_port", "https_port"), ("events", "events"), ("workers", "workers"),
                       ("synchronous", "sqlite_synchronous"), ("throttle", "throttle"),
                       ("throttle_keys", "throttle_keys"),
                       ("header_timeout", "header_timeout"), ("body_timeout", "body_timeout"),
                       ("max_connections", "max_connections"), ("max_request_line", "max_request_line"),
                       ("max_header_bytes", "max_header_bytes"), ("realtime_per_user", "realtime_per_user"),
                       ("realtime_queue_bytes", "realtime_queue_bytes"),
                       ("cors_origins", "cors_origins")):
        value = getattr(args, name, None)
        if value is not None:
            changes[attr] = value
    if getattr(args, "no_limits", False):
        changes["limits"] = Limits.unlimited()
    settings = replace(settings, **changes)  # type: ignore[arg-type]
    if args.command != "serve" and settings.database is None:
        # The other commands use the database of the server running on this data folder, if one runs.
        from threadline.server.preflight import read_runtime

        running = read_runtime(settings).get("database")
        if isinstance(running, str):
            settings = replace(settings, database=running)
    return settings


def _connection_flags(serve: argparse.ArgumentParser) -> None:
    """Slow- and greedy-client protection (docs/limits.md); not lifted by --no-limits."""
    serve.add_argument("--header-timeout", type=float,
                       help="seconds to send a request head (THREADLINE_HEADER_TIMEOUT, 10)")
    serve.add_argument("--body-timeout", type=float,
                       help="seconds to send a request body (THREADLINE_BODY_TIMEOUT, 30)")
    serve.add_argument("--max-connections", type=int,
                       help="open connections per process (THREADLINE_MAX_CONNECTIONS, 10000)")
    serve.add_argument("--max-request-line", type=int,
                       help="longest request target in bytes (THREADLINE_MAX_REQUEST_LINE, 16384)")
    serve.add_argument("--max-header-bytes", type=int,
                       help="largest request head in bytes (THREADLINE_MAX_HEADER_BYTES, 65536)")
    serve.add_argument("--realtime-per-user", type=int,
                       help="real-time connections per user (THREADLINE_REALTIME_PER_USER, 20)")
    serve.add_argument("--realtime-queue-bytes", type=int,
                       help="bytes a real-time connection may have queued (THREADLINE_REALTIME_QUEUE_BYTES, 2 MiB)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="threadline", description="Self-hosted ACS-compatible chat.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser(
        "serve", help="run the server", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="variables without a flag:\n"
        "  THREADLINE_EVENT_RETENTION        seconds events stay resumable (default 86400)\n"
        "  THREADLINE_IDEMPOTENCY_RETENTION  seconds a repeatability-request-id is remembered (default 86400)\n"
        "see docs/limits.md and docs/operations.md",
    )
    _common(serve)
    serve.add_argument("--host", help="listen address (THREADLINE_HOST, default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="HTTP port, -1 to disable (THREADLINE_HTTP_PORT, 8080)")
    serve.add_argument("--https-port", type=int, help="HTTPS port, -1 to disable (THREADLINE_HTTPS_PORT, 8443)")
    serve.add_argument("--events", help="redis://... to share real-time events between nodes (THREADLINE_EVENTS)")
    serve.add_argument("--workers", type=int,
                       help="server processes on this machine, PostgreSQL only (THREADLINE_WORKERS, default 1)")
    serve.add_argument("--synchronous", choices=["NORMAL", "FULL"],
                       help="SQLite durability level (THREADLINE_SQLITE_SYNCHRONOUS, default NORMAL)")
    serve.add_argument("--throttle", help="on (ACS rates), off, or a factor scaling them (THREADLINE_THROTTLE)")
    serve.add_argument("--throttle-keys", type=int,
                       help="most rate-limit windows held in memory (THREADLINE_THROTTLE_KEYS, 100000)")
    serve.add_argument("--cors-origins",
                       help="origins web pages may call from, comma-separated (THREADLINE_CORS_ORIGINS, default *)")
    serve.add_argument("--no-limits", action="store_true",
                       help="lift ACS size limits and throttling (THREADLINE_NO_LIMITS=1)")
    _connection_flags(serve)
    serve.add_argument("--log-format", choices=["json", "text"], help="THREADLINE_LOG_FORMAT, default json")

    scopes_help = f"comma-separated token scopes, of: {', '.join(SCOPES)} (default chat,voip)"
    minutes_help = "token lifetime in minutes, 60..1440 (default 1440)"
    user = commands.add_parser("user", help="create an identity (prints its id and a token)")
    _common(user)
    user.add_argument("--scopes", default="chat,voip", help=scopes_help)
    user.add_argument("--minutes", type=int, default=1440, help=minutes_help)

    token = commands.add_parser("token", help="issue a token for an identity")
    _common(token)
    token.add_argument("user_id", help="the identity, 8:acs:<resource id>_<guid>")
    token.add_argument("--scopes", default="chat,voip", help=scopes_help)
    token.add_argument("--minutes", type=int, default=1440, help=minutes_help)

    seed = commands.add_parser("seed", help="demo identities and a thread, with tokens and code snippets "
                               "(idempotent)")
    _common(seed)
    seed.add_argument("--json", action="store_true", help="print JSON for scripts")
    seed.add_argument("--minutes", type=int, default=1440, help=minutes_help)

    migrate = commands.add_parser("migrate", help="apply pending schema migrations")
    _common(migrate)

    backup = commands.add_parser("backup", help="write a consistent copy of the database, even while serving")
    _common(backup)
    backup.add_argument("path", type=Path, help="the file to write (SQLite)")

    conn = commands.add_parser("connection-string",
                               help="print the connection string (of the server running on --data, if any)")
    _common(conn)
    conn.add_argument("--http", action="store_true", help="the plain HTTP endpoint (threadline.chat on loopback)")
    conn.add_argument("--endpoint", help="the endpoint clients use (default: the running server's)")

    from threadline.server.webhooks.cli import register as register_webhook

    register_webhook(commands, _common)
    return parser


#: Flag and fix for the identity service's refusals, by their target.
_FIXES = {
    "ExpiresInMinutes": ("--minutes", "use a lifetime from 60 to 1440 minutes"),
    "CreateTokenWithScopes": ("--scopes", f"use a comma-separated list of {', '.join(SCOPES)}"),
    "Scopes": ("--scopes", f"use a comma-separated list of {', '.join(SCOPES)}"),
    "id": ("", "create one with `threadline user`, on the same --data/--database"),
}


async def _with_identity(settings: Settings, work: str, args: argparse.Namespace) -> int:
    from threadline.identity.tokens import TokenIssuer, derive_signing_key
    from threadline.protocol.errors import ChatServiceError
    from threadline.server.preflight import open_checked
    from threadline.server.services.identity import IdentityService

    settings = settings.prepared()
    assert settings.resource_id is not None
    store = await open_checked(settings)
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
            flag, fix = _FIXES.get(exc.target or "", ("", "see --help"))
            value = {"--minutes": str(args.minutes), "--scopes": args.scopes}.get(flag, getattr(args, "user_id", ""))
            raise SetupError(f"{flag or 'USER_ID'} {value}: {exc.message.rstrip('.')}; {fix}") from exc
    finally:
        await store.close()
    return 0


async def _migrate(settings: Settings) -> int:
    from threadline.server.preflight import open_checked

    store = await open_checked(settings.prepared(), refuse_others=False)  # opening applies pending migrations
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
    if not source.is_file():
        raise SetupError(f"--data {settings.data_dir}: no database at {source}; pass the --data folder (or "
                         "--database file) the server uses")
    store = SqliteStore(source)
    await store.open()
    try:
        size = await store.backup(path)
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SetupError(f"backup {path}: cannot write the copy there ({reason}); pass a path in a writable "
                         "folder") from exc
    finally:
        await store.close()
    print(f"backed up {source} to {path} ({size} bytes)")
    return 0


def _connection_string(settings: Settings, args: argparse.Namespace) -> str:
    """The running server's endpoint (from its runtime file) or the configured one, with the key."""
    from threadline.server.preflight import endpoints

    http, https = endpoints(settings)
    return settings.connection_string(args.endpoint or (http if args.http else https))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``threadline`` command.

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).

    Returns:
        The process exit code.
    """
    args = _parser().parse_args(argv)
    level = args.log_level or os.environ.get("THREADLINE_LOG_LEVEL") or "warning"
    from threadline.server.preflight import SetupError
    from threadline.server.settings import SettingsError

    try:
        return _run(args, level)
    except (SetupError, SettingsError) as exc:
        if level == "debug":
            traceback.print_exc()
        print(f"threadline {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, level: str) -> int:
    from threadline.server.preflight import check

    settings = _settings(args)
    check(settings, serving=args.command == "serve")
    if args.command == "serve":
        from threadline.server.cors import parse_origins
        from threadline.server.metrics import configure_logging

        try:
            parse_origins(settings.cors_origins)
        except ValueError as exc:
            raise SetupError(f"--cors-origins: {exc}; use * or comma-separated origins such as "
                             "https://app.example") from exc
        from threadline.server.runner import run

        configure_logging(level, args.log_format or os.environ.get("THREADLINE_LOG_FORMAT") or "json")
        run(settings)
        return 0
    if args.command in ("user", "token"):
        return asyncio.run(_with_identity(settings, args.command, args))
    if args.command == "seed":
        from threadline.seed import render, render_json, seed

        if not 60 <= args.minutes <= 1440:
            raise SetupError(f"--minutes {args.minutes}: out of range; use a lifetime from 60 to 1440 minutes")
        done = asyncio.run(seed(settings, args.minutes))
        print(render_json(done) if args.json else render(done))
        return 0
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "backup":
        return asyncio.run(_backup(settings, args.path))
    if args.command == "webhook":
        from threadline.server.webhooks.cli import run as run_webhook

        return asyncio.run(run_webhook(settings, args))
    if args.command == "connection-string":
        print(_connection_string(settings.prepared(), args))
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
