"""A thread's metadata patch, merged inside the write that stores it (see :class:`~.records.MetadataPatch`).

Both engines read the stored map in the write transaction, under the lock every
write of the thread takes (its row lock on PostgreSQL, the one writer on
SQLite), merge the patch with :func:`apply_metadata` and store the result: two
concurrent patches each see the other's keys, and the size limit holds for the
map actually stored.
"""

from __future__ import annotations

import msgspec

from .base import StoreError
from .records import MetadataPatch

__all__ = ["MetadataChange", "MetadataTooLarge", "apply_metadata"]

#: What ``update_thread`` takes as metadata: a patch merged inside the write, or a whole map that replaces it.
MetadataChange = MetadataPatch | dict[str, str]


class MetadataTooLarge(StoreError):
    """A metadata patch would leave a map over its size limit; nothing was written.

    Attributes:
        limit: the most bytes the map's compact JSON may take.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"metadata must not exceed {limit} bytes")
        self.limit = limit


def apply_metadata(current: dict[str, str] | None, patch: MetadataChange) -> dict[str, str]:
    """Merge ``patch`` into the stored map ``current`` and check the result's size.

    Args:
        current: the stored map, read inside the write (None: none).
        patch: the patch and its limit, or a whole map that replaces the stored one as it is.

    Returns:
        The map to store.

    Raises:
        MetadataTooLarge: the merged map's compact JSON is over ``patch.max_bytes``.
    """
    if isinstance(patch, dict):
        return patch
    merged = patch.merged(current)
    if patch.max_bytes is not None and merged and len(msgspec.json.encode(merged)) > patch.max_bytes:
        raise MetadataTooLarge(patch.max_bytes)
    return merged
