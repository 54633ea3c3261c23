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

__all__ = ["Settings"]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


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
        webhook_allow: non-public webhook destinations allowed (hosts, CIDRs, ``*``; ``docs/webhooks.md``).
        webhook_topic: the ``topic``/``source`` of webhook events (an ARM-like id from the resource id when None).
        webhook_timeout: seconds per webhook request.
        webhook_poll_ms: how often an idle deliverer looks at the event log.
        webhook_lease_seconds: how long a node's lease on a subscription lasts unless renewed.
        webhook_retry_scale: multiplies Event Grid's retry schedule (tests shrink it).
        webhook_public_url: base URL of the ``validationUrl`` sent in the handshake (omitted when None).
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
    webhook_allow: str = ""
    webhook_topic: str | None = None
    webhook_timeout: float = 30.0
    webhook_poll_ms: int = 250
    webhook_lease_seconds: int = 15
    webhook_retry_scale: float = 1.0
    webhook_public_url: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from ``THREADLINE_*`` variables, defaults elsewhere."""
        env = os.environ.get
        limits = Limits.unlimited() if env("THREADLINE_NO_LIMITS", "") in ("1", "true", "yes") else Limits()
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
            webhook_allow=env("THREADLINE_WEBHOOK_ALLOW", ""),
            webhook_topic=env("THREADLINE_WEBHOOK_TOPIC") or None,
            webhook_timeout=float(env("THREADLINE_WEBHOOK_TIMEOUT") or 30),
            webhook_poll_ms=_env_int("THREADLINE_WEBHOOK_POLL_MS", 250),
            webhook_lease_seconds=_env_int("THREADLINE_WEBHOOK_LEASE_SECONDS", 15),
            webhook_retry_scale=float(env("THREADLINE_WEBHOOK_RETRY_SCALE") or 1),
            webhook_public_url=env("THREADLINE_WEBHOOK_PUBLIC_URL") or None,
        )

    def prepared(self) -> Settings:
        """Return a copy with the key and resource id filled in from (or saved to) the data folder.

        Raises:
            ValueError: the access key is not base64.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = self.access_key or _read_or_create(
            self.data_dir / "access-key", base64.b64encode(secrets.token_bytes(32)).decode()
        )
        decode_key(key)
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
