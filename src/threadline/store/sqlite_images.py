"""Images in the SQLite store: rows in the database, bytes as files (mixed into ``SqliteStore``)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .blobs import AttachmentUnavailable, FileBlobs, ImageLimitReached
from .records import ImageRecord, MessageRecord, blob_key

__all__ = ["IMAGE_COLUMNS", "SqliteImages", "image_from"]

T = TypeVar("T")
IMAGE_COLUMNS = "thread_id, id, uploader_id, name, content_type, size, created_ms, message_id"


def image_from(row: Any) -> ImageRecord:
    """An image record from a row holding :data:`IMAGE_COLUMNS` (SQLite or asyncpg)."""
    return ImageRecord(
        thread_id=row["thread_id"], id=row["id"], uploader_id=row["uploader_id"], name=row["name"],
        content_type=row["content_type"], size=row["size"], created_ms=row["created_ms"],
        message_id=row["message_id"],
    )


class SqliteImages:
    """Image operations of :class:`~threadline.store.sqlite.SqliteStore`.

    The store supplies ``blobs``, ``_write`` and ``_peek``; the helpers whose
    names start with ``_`` run inside the store's write transactions.
    """

    blobs: FileBlobs

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, bulk: bool = False) -> T:
        raise NotImplementedError

    async def _peek(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def add_image(self, image: ImageRecord, data: bytes, *, limit: int | None = None) -> bool:
        """Keep an uploaded image; False (and nothing kept) when the thread is not live.

        Raises:
            ImageLimitReached: the thread already has ``limit`` images (nothing kept).
        """
        await self.blobs.put(image.blob_key, data)

        def run(c: sqlite3.Connection) -> bool:
            if limit is not None:  # the single writer makes count-then-insert atomic
                held = c.execute("SELECT count(*) FROM images WHERE thread_id = ?", (image.thread_id,)).fetchone()
                if held[0] >= limit:
                    raise ImageLimitReached(image.thread_id)
            cursor = c.execute(
                f"INSERT INTO images ({IMAGE_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, NULL "
                "WHERE EXISTS (SELECT 1 FROM threads WHERE id = ? AND deleted_ms IS NULL)",
                (image.thread_id, image.id, image.uploader_id, image.name, image.content_type, image.size,
                 image.created_ms, image.thread_id),
            )
            return cursor.rowcount == 1

        try:
            added = await self._write(run)
        except BaseException:
            await self.blobs.delete([image.blob_key])
            raise
        if not added:
            await self.blobs.delete([image.blob_key])
        return added

    async def get_image(self, thread_id: str, image_id: str) -> ImageRecord | None:
        """The image's row, or None."""
        row = await self._peek(
            lambda c: c.execute(
                f"SELECT {IMAGE_COLUMNS} FROM images WHERE thread_id = ? AND id = ?", (thread_id, image_id)
            ).fetchone()
        )
        return None if row is None else image_from(row)

    async def read_image(self, image: ImageRecord) -> bytes | None:
        """The image's bytes, or None when they are gone."""
        return await self.blobs.get(image.blob_key)

    async def delete_image(self, thread_id: str, image_id: str) -> bool:
        """Forget an image (row, then bytes); False when there was none."""
        keys = await self._write(lambda c: self._drop_images(c, thread_id, image_id=image_id))
        await self.blobs.delete(keys)
        return bool(keys)

    def _backup_images(self, copy: Path) -> int:
        """Copy the image files a database backup names to ``<copy>.images/``; return how many.

        Image files never change once written, so the files of the backup's
        snapshot are exact; one deleted since the snapshot is missing from the
        copy and reads as a 404 after a restore.
        """
        folder = copy.with_name(copy.name + ".images")
        shutil.rmtree(folder, ignore_errors=True)
        conn = sqlite3.connect(str(copy))
        try:
            rows = conn.execute("SELECT thread_id, id FROM images").fetchall()
        finally:
            conn.close()
        copied = 0
        for thread_id, image_id in rows:
            key = blob_key(thread_id, image_id)
            source = self.blobs.root / key
            if source.is_file():
                (folder / key).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, folder / key)
                copied += 1
        return copied

    # -- helpers run inside write transactions ---------------------------------------------------------

    @staticmethod
    def _drop_images(
        c: sqlite3.Connection, thread_id: str, *, message_id: str | None = None, image_id: str | None = None,
        keep: Sequence[str] = (),
    ) -> list[str]:
        """Delete the rows of a thread's images (of one message or one image); return their blob keys."""
        sql, args = "DELETE FROM images WHERE thread_id = ?", [thread_id]
        if message_id is not None:
            sql += " AND message_id = ?"
            args.append(message_id)
        if image_id is not None:
            sql += " AND id = ?"
            args.append(image_id)
        if keep:
            sql += f" AND id NOT IN ({', '.join('?' for _ in keep)})"
            args.extend(keep)
        rows = c.execute(sql + " RETURNING id", args).fetchall()
        return [blob_key(thread_id, r["id"]) for r in rows]

    @staticmethod
    def _link_images(c: sqlite3.Connection, message: MessageRecord, image_ids: Sequence[str]) -> None:
        """Attach images to a message, in order, and set its ``attachments``.

        Raises:
            AttachmentUnavailable: an image is not in the thread or is attached to another message.
        """
        for position, image_id in enumerate(image_ids):
            cursor = c.execute(
                "UPDATE images SET message_id = ?, position = ? WHERE thread_id = ? AND id = ? "
                "AND (message_id IS NULL OR message_id = ?)",
                (message.id, position, message.thread_id, image_id, message.id),
            )
            if cursor.rowcount != 1:
                raise AttachmentUnavailable(image_id)
        SqliteImages._fill_attachments(c, [message])

    @staticmethod
    def _fill_attachments(c: sqlite3.Connection, messages: Sequence[MessageRecord]) -> None:
        """Set ``attachments`` on messages of one thread from the image rows."""
        if not messages:
            return
        by_id = {m.id: m for m in messages}
        rows = c.execute(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE thread_id = ? AND message_id IN "
            f"({', '.join('?' for _ in by_id)}) ORDER BY position",
            (messages[0].thread_id, *by_id),
        ).fetchall()
        for message in messages:
            message.attachments = None
        for row in rows:
            owner = by_id[row["message_id"]]
            owner.attachments = [*(owner.attachments or []), image_from(row)]
