"""Service limits, with ACS's documented values as defaults."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes the service enforces (see ``docs/limits.md``).

    ``Limits.unlimited()`` lifts every size limit for local development.
    """

    message_bytes: int = 28 * 1024
    participants_per_thread: int = 250
    participants_per_batch: int = 200
    page_size_max: int = 200
    page_size_default: int = 50
    metadata_bytes: int = 1024
    topic_chars: int = 512
    display_name_chars: int = 256
    body_bytes: int = 1024 * 1024
    image_bytes: int = 20 * 1024 * 1024
    attachments_per_message: int = 50
    images_per_thread: int = 10_000

    @classmethod
    def unlimited(cls) -> Limits:
        """Limits large enough never to matter during development."""
        big = 1 << 30
        return cls(
            message_bytes=big, participants_per_thread=big, participants_per_batch=big,
            page_size_max=big, metadata_bytes=big, topic_chars=big, display_name_chars=big,
            body_bytes=64 * 1024 * 1024, image_bytes=64 * 1024 * 1024, images_per_thread=big,
        )
