"""Server settings: flags, environment variables and the data folder.

Every setting has a ``THREADLINE_*`` environment variable. The access key,
resource id and TLS certificate are generated on first start and kept in the
data folder, so a restarted server keeps its users' tokens valid.
"""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from threadline.identity.hmac import decode_key
from threadline.server.limits import Limits

__all__ = ["Settings", "SettingsError"]


class SettingsError(ValueError):
    """A setting whose value cannot be used; the message names the value, where it came from and the fix."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a whole number; set it to one (default {default}) "
                            "or unset it") from None


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number; set it to one (default {default}) "
                            "or unset it") from None


def _read_or_create(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text("utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(make + "\n")
    return make


@dataclass(slots=True)
class Settings:
    """Everything a server process needs to know.

    Attributes:
        data_dir: where the database, keys and certificate live.
        host: the address to listen on.
        http_port: plain HTTP port (0 picks a free one, -1 disables).
        https_port: HTTPS port (0 picks a free one, -1 disables).
        access_key: base64 HMAC key of the resource (generated when None).
        resource_id: the resource id in user ids (generated when None).
        database: ``postgresql://...`` or a SQLite file path (``<data_dir>/threadline.db`` when None).
        events: ``redis://...`` for the cross-node hub; None keeps events in-process.
        limits: the service limits.
        sqlite_synchronous: ``NORMAL`` (survives a process crash) or ``FULL`` (also a power loss).
        event_retention_seconds: how long events stay resumable.
        idempotency_retention_seconds: how long a repeatability-request-id is remembered.
        throttle: ``on`` (ACS rates), ``off``, or a factor scaling the ACS rates.
        throttle_keys: the most rate-limit windows a process holds (memory bound, ``docs/limits.md``).
        workers: server processes on this machine (PostgreSQL only).
        retention_interval_seconds: how often the retention pruner looks for expired threads.
        retention_clock_skew_seconds: how far ahead of the wall clock the retention pruner's
            clock runs (0; tests and drills set it to see threads expire without waiting days).
        header_timeout: seconds a client has to send a request head.
        body_timeout: seconds a client has to send a request body, after its head.
        max_connections: open connections per process (lowered to fit the open-file limit).
        max_request_line: the longest request target, in bytes.
        max_header_bytes: the largest request head (request line and headers), in bytes.
        realtime_per_user: real-time connections one user may hold per process.
        realtime_queue_bytes: UTF-8 bytes a real-time connection may have waiting before it is too slow.
        cors_origins: origins allowed to call from a web page, comma-separated; ``*`` = any.
        webhook_allow: non-public webhook destinations allowed (hosts, CIDRs, ``*``; ``docs/webhooks.md``).
        webhook_topic: the ``topic``/``source`` of webhook events (an ARM-like id from the resource id when None).
        webhook_timeout: seconds per webhook request.
        webhook_poll_ms: how often an idle deliverer looks at the event log.
        webhook_lease_seconds: how long a node's lease on a subscription lasts unless renewed.
        webhook_retry_scale: multiplies Event Grid's retry schedule (tests shrink it).
        webhook_public_url: base URL of the ``validationUrl`` sent in the handshake (omitted when None).
        cache_entries: the most users, and the most memberships, the access cache holds (0: off).
        cache_ttl_seconds: how long an access cache entry may be served (a backstop; writes invalidate).
    """

    data_dir: Path = Path("threadline-data")
    host: str = "127.0.0.1"
    http_port: int = 8080
    https_port: int = 8443
    access_key: str | None = None
    resource_id: str | None = None
    database: str | None = None
    events: str | None = None
    limits: Limits = field(default_factory=Limits)
    sqlite_synchronous: str = "NORMAL"
    event_retention_seconds: int = 24 * 3600
    idempotency_retention_seconds: int = 24 * 3600
    throttle: str = "on"
    throttle_keys: int = 100_000
    workers: int = 1
    retention_interval_seconds: float = 60.0
    retention_clock_skew_seconds: int = 0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 10_000
    max_request_line: int = 16 * 1024
    max_header_bytes: int = 64 * 1024
    realtime_per_user: int = 20
    realtime_queue_bytes: int = 2 * 1024 * 1024
    cors_origins: str = "*"
    webhook_allow: str = ""
    webhook_topic: str | None = None
    webhook_timeout: float = 30.0
    webhook_poll_ms: int = 250
    webhook_lease_seconds: int = 15
    webhook_retry_scale: float = 1.0
    webhook_public_url: str | None = None
    cache_entries: int = 20_000
    cache_ttl_seconds: float = 10.0

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from ``THREADLINE_*`` variables, defaults elsewhere."""
        env = os.environ.get
        limits = Limits.unlimited() if env("THREADLINE_NO_LIMITS", "") in ("1", "true", "yes") else Limits()
        limits = replace(limits, image_bytes=_env_int("THREADLINE_IMAGE_BYTES", limits.image_bytes),
                         images_per_thread=_env_int("THREADLINE_IMAGES_PER_THREAD", limits.images_per_thread))
        return cls(
            data_dir=Path(env("THREADLINE_DATA", "threadline-data")),
            host=env("THREADLINE_HOST", "127.0.0.1"),
            http_port=_env_int("THREADLINE_HTTP_PORT", 8080),
            https_port=_env_int("THREADLINE_HTTPS_PORT", 8443),
            access_key=env("THREADLINE_ACCESS_KEY") or None,
            resource_id=env("THREADLINE_RESOURCE_ID") or None,
            database=env("THREADLINE_DATABASE") or None,
            events=env("THREADLINE_EVENTS") or None,
            limits=limits,
            sqlite_synchronous=env("THREADLINE_SQLITE_SYNCHRONOUS", "NORMAL"),
            event_retention_seconds=_env_int("THREADLINE_EVENT_RETENTION", 24 * 3600),
            idempotency_retention_seconds=_env_int("THREADLINE_IDEMPOTENCY_RETENTION", 24 * 3600),
            throttle=env("THREADLINE_THROTTLE", "on"),
            throttle_keys=_env_int("THREADLINE_THROTTLE_KEYS", 100_000),
            workers=_env_int("THREADLINE_WORKERS", 1),
            retention_interval_seconds=_env_float("THREADLINE_RETENTION_INTERVAL", 60.0),
            retention_clock_skew_seconds=_env_int("THREADLINE_RETENTION_CLOCK_SKEW", 0),
            header_timeout=_env_float("THREADLINE_HEADER_TIMEOUT", 10.0),
            body_timeout=_env_float("THREADLINE_BODY_TIMEOUT", 30.0),
            max_connections=_env_int("THREADLINE_MAX_CONNECTIONS", 10_000),
            max_request_line=_env_int("THREADLINE_MAX_REQUEST_LINE", 16 * 1024),
            max_header_bytes=_env_int("THREADLINE_MAX_HEADER_BYTES", 64 * 1024),
            realtime_per_user=_env_int("THREADLINE_REALTIME_PER_USER", 20),
            realtime_queue_bytes=_env_int("THREADLINE_REALTIME_QUEUE_BYTES", 2 * 1024 * 1024),
            cors_origins=env("THREADLINE_CORS_ORIGINS", "*"),
            webhook_allow=env("THREADLINE_WEBHOOK_ALLOW", ""),
            webhook_topic=env("THREADLINE_WEBHOOK_TOPIC") or None,
            webhook_timeout=_env_float("THREADLINE_WEBHOOK_TIMEOUT", 30.0),
            webhook_poll_ms=_env_int("THREADLINE_WEBHOOK_POLL_MS", 250),
            webhook_lease_seconds=_env_int("THREADLINE_WEBHOOK_LEASE_SECONDS", 15),
            webhook_retry_scale=_env_float("THREADLINE_WEBHOOK_RETRY_SCALE", 1.0),
            webhook_public_url=env("THREADLINE_WEBHOOK_PUBLIC_URL") or None,
            cache_entries=_env_int("THREADLINE_CACHE_ENTRIES", 20_000),
            cache_ttl_seconds=_env_float("THREADLINE_CACHE_TTL", 10.0),
        )

    def prepared(self) -> Settings:
        """Return a copy with the key and resource id filled in from (or saved to) the data folder.

        Raises:
            SettingsError: the access key is not base64.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = self.access_key or _read_or_create(
            self.data_dir / "access-key", base64.b64encode(secrets.token_bytes(32)).decode()
        )
        try:
            decode_key(key)
        except ValueError:
            where = "--access-key" if self.access_key else f"{self.data_dir / 'access-key'}"
            raise SettingsError(f"the access key from {where} is not base64; pass the key "
                                "from the connection string (accesskey=...), or omit it to use the data "
                                "folder's") from None
        resource = self.resource_id or _read_or_create(self.data_dir / "resource-id", str(uuid.uuid4()))
        return replace(self, access_key=key, resource_id=resource)

    @property
    def key_bytes(self) -> bytes:
        """The decoded access key (call :meth:`prepared` first)."""
        if self.access_key is None:
            raise RuntimeError("settings are not prepared")
        return decode_key(self.access_key)

    @property
    def database_url(self) -> str:
        """The database to use: a PostgreSQL URL or a SQLite path."""
        return self.database or str(self.data_dir / "threadline.db")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    def connection_string(self, endpoint: str) -> str:
        """The ACS connection string for an endpoint."""
        return f"endpoint={endpoint.rstrip('/')}/;accesskey={self.access_key}"
