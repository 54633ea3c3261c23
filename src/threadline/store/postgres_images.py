"""Images in the PostgreSQL store: rows and bytes in the database (mixed into ``PostgresStore``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .blobs import AttachmentUnavailable, ImageLimitReached
from .records import ImageRecord, MessageRecord, blob_key
from .sqlite_images import IMAGE_COLUMNS, image_from

__all__ = ["PostgresBlobs", "PostgresImages"]

T = TypeVar("T")
Connection = Any  # asyncpg.Connection; asyncpg ships no precise types


class PostgresBlobs:
    """Blobs in the ``image_blobs`` table, so every node serves every image.

    Args:
        write: runs a function in one transaction (the store's ``_write``).
        read: runs a function on a pooled connection (the store's ``_read``).
    """

    def __init__(
        self,
        write: Callable[[Callable[[Connection], Awaitable[Any]]], Awaitable[Any]],
        read: Callable[[Callable[[Connection], Awaitable[Any]]], Awaitable[Any]],
    ) -> None:
        self._write = write
        self._read = read

    async def put(self, key: str, data: bytes) -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT INTO image_blobs (key, data) VALUES ($1, $2) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data",
                key, data,
            )
        )

    async def get(self, key: str) -> bytes | None:
        value = await self._read(lambda c: c.fetchval("SELECT data FROM image_blobs WHERE key = $1", key))
        return None if value is None else bytes(value)

    async def delete(self, keys: Sequence[str]) -> None:
        if keys:
            await self._write(lambda c: c.execute("DELETE FROM image_blobs WHERE key = ANY($1::text[])", list(keys)))


class PostgresImages:
    """Image operations of :class:`~threadline.store.postgres.PostgresStore`.

    The store supplies ``blobs``, ``_write`` and ``_read``; the helpers whose
    names start with ``_`` run inside the store's write transactions, where
    they drop the bytes together with the rows (so they return no keys).
    """

    blobs: PostgresBlobs

    async def _write(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def _read(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def add_image(self, image: ImageRecord, data: bytes, *, limit: int | None = None) -> bool:
        """Keep an uploaded image; False (and nothing kept) when the thread is not live.

        Raises:
            ImageLimitReached: the thread already has ``limit`` images (nothing kept).
        """
        await self.blobs.put(image.blob_key, data)

        async def run(c: Connection) -> bool:
            # The thread's row lock orders uploads (and deletes) of a thread: count-then-insert is exact.
            live = await c.fetchval(
                "SELECT true FROM threads WHERE id = $1 AND deleted_ms IS NULL FOR UPDATE", image.thread_id
            )
            if not live:
                return False
            if limit is not None:
                held = await c.fetchval("SELECT count(*) FROM images WHERE thread_id = $1", image.thread_id)
                if held >= limit:
                    raise ImageLimitReached(image.thread_id)
            await c.execute(
                f"INSERT INTO images ({IMAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
                image.thread_id, image.id, image.uploader_id, image.name, image.content_type, image.size,
                image.created_ms,
            )
            return True

        try:
            added = await self._write(run)
        except BaseException:
            await self.blobs.delete([image.blob_key])
            raise
        if not added:
            await self.blobs.delete([image.blob_key])
        return bool(added)

    async def get_image(self, thread_id: str, image_id: str) -> ImageRecord | None:
        """The image's row, or None."""
        row = await self._read(
            lambda c: c.fetchrow(
                f"SELECT {IMAGE_COLUMNS} FROM images WHERE thread_id = $1 AND id = $2", thread_id, image_id
            )
        )
        return None if row is None else image_from(row)

    async def read_image(self, image: ImageRecord) -> bytes | None:
        """The image's bytes, or None when they are gone."""
        return await self.blobs.get(image.blob_key)

    async def delete_image(self, thread_id: str, image_id: str) -> bool:
        """Forget an image, row and bytes in one transaction; False when there was none."""
        found: list[bool] = []

        async def run(c: Connection) -> list[str]:
            row = await c.fetchrow("SELECT id FROM images WHERE thread_id = $1 AND id = $2", thread_id, image_id)
            found[:] = [row is not None]
            return await self._drop_images(c, thread_id, image_id=image_id)

        await self._write(run)
        return bool(found and found[0])

    # -- helpers run inside write transactions ---------------------------------------------------------

    @staticmethod
    async def _drop_images(
        c: Connection, thread_id: str, *, message_id: str | None = None, image_id: str | None = None,
        keep: Sequence[str] = (),
    ) -> list[str]:
        """Delete a thread's images (of one message or one image), rows and bytes; return no keys."""
        sql = "DELETE FROM images WHERE thread_id = $1"
        args: list[Any] = [thread_id]
        if message_id is not None:
            args.append(message_id)
            sql += f" AND message_id = ${len(args)}"
        if image_id is not None:
            args.append(image_id)
            sql += f" AND id = ${len(args)}"
        if keep:
            args.append(list(keep))
            sql += f" AND NOT (id = ANY(${len(args)}::text[]))"
        rows = await c.fetch(sql + " RETURNING id", *args)
        if rows:
            keys = [blob_key(thread_id, r["id"]) for r in rows]
            await c.execute("DELETE FROM image_blobs WHERE key = ANY($1::text[])", keys)
        return []

    @staticmethod
    async def _link_images(c: Connection, message: MessageRecord, image_ids: Sequence[str]) -> None:
        """Attach images to a message, in order, and set its ``attachments``.

        Raises:
            AttachmentUnavailable: an image is not in the thread or is attached to another message.
        """
        for position, image_id in enumerate(image_ids):
            status = await c.execute(
                "UPDATE images SET message_id = $1, position = $2 WHERE thread_id = $3 AND id = $4 "
                "AND (message_id IS NULL OR message_id = $1)",
                message.id, position, message.thread_id, image_id,
            )
            if not str(status).endswith(" 1"):
                raise AttachmentUnavailable(image_id)
        await PostgresImages._fill_attachments(c, [message])

    @staticmethod
    async def _fill_attachments(c: Connection, messages: Sequence[MessageRecord]) -> None:
        """Set ``attachments`` on messages of one thread from the image rows."""
        if not messages:
            return
        by_id = {m.id: m for m in messages}
        rows = await c.fetch(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE thread_id = $1 AND message_id = ANY($2::text[]) "
            "ORDER BY position",
            messages[0].thread_id, list(by_id),
        )
        for message in messages:
            message.attachments = None
        for row in rows:
            owner = by_id[row["message_id"]]
            owner.attachments = [*(owner.attachments or []), image_from(row)]
