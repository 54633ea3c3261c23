"""socket.io 0.9 packets, as the Trouter client bundled in the browser SDK speaks them.

A packet is ``type ":" [id ["+"]] ":" [endpoint] [":" data]``; the endpoint is
always empty here. Types: 0 disconnect, 1 connect, 2 heartbeat, 3 message,
5 event (``{"name", "args"}``), 6 ack (``<id>[+<json array>]``), 7 error, 8 noop.
Several packets in one HTTP body (xhr-polling) are framed as
``\\ufffd<length>\\ufffd<packet>`` each, length in UTF-16 units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = [
    "CONNECT",
    "HEARTBEAT",
    "NOOP",
    "Packet",
    "ack",
    "decode",
    "decode_payload",
    "disconnect",
    "encode_payload",
    "event",
    "message",
]

CONNECT = "1::"
HEARTBEAT = "2::"
NOOP = "8::"
_FRAME = "\ufffd"
_PACKET = re.compile(r"^([^:]+):([0-9]+)?(\+)?:([^:]*):?([\s\S]*)?$")
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded client packet.

    Attributes:
        type: the packet type digit.
        id: the message id, or None.
        wants_data: the id ended in ``+`` (an ack with data is expected).
        data: the text after the endpoint.
    """

    type: str
    id: int | None
    wants_data: bool
    data: str


def decode(text: str) -> Packet | None:
    """Decode one packet; None when it is not one."""
    match = _PACKET.match(text)
    if match is None:
        return None
    kind, ident, plus, _endpoint, data = match.groups()
    return Packet(kind, int(ident) if ident else None, bool(plus), data or "")


def event(name: str, *args: Any) -> str:
    """A server event packet (``5:::{"name":...,"args":[...]}``)."""
    return "5:::" + _encode({"name": name, "args": list(args)}).decode()


def ack(packet_id: int, data: Any = None) -> str:
    """The ack of a client packet, with ``[data]`` when given."""
    if data is None:
        return f"6:::{packet_id}"
    return f"6:::{packet_id}+" + _encode([data]).decode()


def message(payload: dict[str, Any]) -> str:
    """A JSON message packet (``3:::<json>``), the carrier of Trouter requests."""
    return "3:::" + _encode(payload).decode()


def disconnect(reason: str | dict[str, Any] | None = None) -> str:
    """A disconnect packet; the reason is text (``dup``) or a JSON object (``{"reason":"unauthorized"}``)."""
    if reason is None:
        return "0::"
    text = reason if isinstance(reason, str) else _encode(reason).decode()
    return "0:::" + text


def _units(text: str) -> int:
    """Length in UTF-16 code units (what JavaScript's ``length`` counts)."""
    return len(text.encode("utf-16-le")) // 2


def encode_payload(packets: list[str]) -> str:
    """One packet as is, or several framed for an xhr-polling body."""
    if len(packets) == 1:
        return packets[0]
    return "".join(f"{_FRAME}{_units(p)}{_FRAME}{p}" for p in packets)


def decode_payload(body: str) -> list[str]:
    """The packets of an xhr-polling body (framed or a single packet)."""
    if not body.startswith(_FRAME):
        return [body] if body else []
    packets: list[str] = []
    units = body.encode("utf-16-le")
    index = 0
    sep = _FRAME.encode("utf-16-le")
    while index < len(units):
        if units[index:index + 2] != sep:
            break
        end = units.find(sep, index + 2)
        if end < 0 or (end - index) % 2:
            break
        try:
            length = int(units[index + 2:end].decode("utf-16-le"))
        except ValueError:
            break
        start = end + 2
        packets.append(units[start:start + 2 * length].decode("utf-16-le", "replace"))
        index = start + 2 * length
    return packets
