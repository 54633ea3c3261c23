"""What the Redis hub sends on its channel, and where the channel's name comes from.

One message is a :class:`Batch`: the node that committed, and its events as compact msgpack
arrays (:class:`Wire`). A batch holds the events published during one turn of a node's loop
(``turns.py``), of any threads and partitions; receivers order them per partition.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

__all__ = ["DEFAULT_CHANNEL", "Batch", "Wire", "decode", "encode", "split_channel"]

DEFAULT_CHANNEL = "threadline:events"


class Wire(msgspec.Struct, array_like=True):
    """One event on the channel (compact: a msgpack array)."""

    position: int
    thread_id: str
    type: str
    payload: bytes
    created_ms: int
    recipients: list[str]


class Batch(msgspec.Struct, array_like=True):
    """The events of one turn of a node's loop, and the node that committed them."""

    node: str
    events: list[Wire]


encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder(Batch).decode


def split_channel(url: str) -> tuple[str, str]:
    """Take the ``channel`` query parameter out of a Redis URL.

    Args:
        url: ``redis://host:port/db`` with an optional ``?channel=name``.

    Returns:
        The URL without the parameter, and the channel (``threadline:events`` by default).
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    channel = next((v for k, v in query if k == "channel" and v), DEFAULT_CHANNEL)
    rest = urlencode([(k, v) for k, v in query if k != "channel"])
    return urlunsplit(parts._replace(query=rest)), channel
