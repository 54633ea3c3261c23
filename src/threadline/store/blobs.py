"""Blob storage for image bytes: one small interface, one implementation per engine.

SQLite keeps each blob as a file under ``<database folder>/images/``;
PostgreSQL keeps it in the ``image_blobs`` table, so every node serves every
image. Image *rows* (who uploaded what, to which thread and message) always
live in the database, in the same transactions as messages and threads.

Ordering rules that keep rows and bytes consistent:

* upload writes the blob first and the row second, so no row ever names a
  missing blob (a crash in between leaves an orphan blob, never a broken row);
* delete removes the rows inside the write transaction and the blobs after it
  commits (PostgreSQL removes both in the same transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .base import StoreError

__all__ = ["AttachmentUnavailable", "BlobStore", "FileBlobs", "ImageLimitReached"]

_KEY = re.compile(r"^[0-9a-f]{32}/[0-9a-z-]{1,64}$")


class AttachmentUnavailable(StoreError):
    """An attachment names an image that is not in the thread or belongs to another message."""


class ImageLimitReached(StoreError):
    """The thread already holds as many images as the limit allows (checked inside the write)."""


class BlobStore(Protocol):
    """Bytes by key. Keys are ``<32 hex>/<image id>`` (see :func:`~.records.blob_key`)."""

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` durably, replacing what was there."""

    async def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None."""

    async def delete(self, keys: Sequence[str]) -> None:
        """Forget the keys; unknown keys are ignored."""


class FileBlobs:
    """Blobs as files: ``<root>/<thread digest>/<image id>``, written via a temporary file and a rename.

    Args:
        root: the folder that holds the blobs (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):  # keys are ours; refuse anything else rather than touch the disk
            raise StoreError(f"invalid blob key {key!r}")
        return self.root / key

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        for attempt in range(3):  # a delete may remove the (then empty) folder between mkdir and open
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                handle = open(temporary, "wb")  # noqa: SIM115 - closed below
            except FileNotFoundError:
                if attempt == 2:
                    raise
                continue
            with handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            break
        os.replace(temporary, path)  # the folder holds the temporary file now: no delete removes it

    def _get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def _delete(self, keys: Sequence[str]) -> None:
        folders = set()
        for key in keys:
            path = self._path(key)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            folders.add(path.parent)
        for folder in folders:
            with contextlib.suppress(OSError):  # not empty, or already gone
                folder.rmdir()

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, keys: Sequence[str]) -> None:
        if keys:
            await asyncio.to_thread(self._delete, list(keys))
