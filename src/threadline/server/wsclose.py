"""WebSocket close reasons that fit in a close frame.

A close frame's payload is at most 125 bytes: the 2-byte code and up to 123
bytes of UTF-8 reason (RFC 6455 §5.5). A longer reason makes the WebSocket
library fail the close, and the client sees an abnormal 1006 instead of the
code the server meant. Every reason goes through :func:`fit_close_reason`.
"""

from __future__ import annotations

__all__ = ["MAX_CLOSE_REASON_BYTES", "fit_close_reason"]

#: The most UTF-8 bytes a close reason may take.
MAX_CLOSE_REASON_BYTES = 123


def fit_close_reason(reason: str, limit: int = MAX_CLOSE_REASON_BYTES) -> str:
    """Cut a close reason to ``limit`` UTF-8 bytes, never inside a character.

    Args:
        reason: the reason as meant.
        limit: the most bytes allowed.

    Returns:
        The reason itself when it fits, else its longest prefix that fits, ending in ``…`` when room allows.
    """
    raw = reason.encode("utf-8", "replace")
    if len(raw) <= limit:
        return reason
    ellipsis = "…".encode()
    room = limit - len(ellipsis) if limit >= len(ellipsis) else limit
    cut = raw[:room].decode("utf-8", "ignore")
    return cut + "…" if room != limit else cut
