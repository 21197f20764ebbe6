"""The control channel's wire format: length-prefixed MessagePack messages.

Each message is a 4-byte big-endian length, then that many bytes of MessagePack
encoding one map. A length above :data:`MAX_MESSAGE` is refused before anything is
read or allocated, so a client cannot make the runtime allocate what it claims.

Requests carry ``id`` (an integer the answer echoes) and ``op``; answers are
``{"id", "ok": True, "result"}`` or ``{"id", "ok": False, "error": {"type",
"message"}}``; subscription updates are ``{"sub", "cycle", "t_ns", "values",
"quality", "age_ns", "forced"}``. The operations are listed in
:mod:`softplc.control.server`.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import msgpack

__all__ = ["MAX_MESSAGE", "ProtocolError", "decode", "encode", "read_async", "recv_sync"]

#: Largest message either side accepts (1 MiB).
MAX_MESSAGE = 1 << 20

_LEN = struct.Struct(">I")


class ProtocolError(Exception):
    """A message that is not one: too long, cut short, not MessagePack, not a map."""


def encode(msg: dict[str, Any]) -> bytes:
    """One framed message."""
    body: bytes = msgpack.packb(msg, use_bin_type=True)
    if len(body) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(body)} bytes is over the {MAX_MESSAGE} limit")
    return _LEN.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """The map a message body holds."""
    try:
        msg = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as e:  # noqa: BLE001 - msgpack raises many unrelated types on garbage
        raise ProtocolError(f"not a MessagePack message ({type(e).__name__})") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"a message is a map, got {type(msg).__name__}")
    return msg


def _length(head: bytes) -> int:
    (n,) = _LEN.unpack(head)
    if n > MAX_MESSAGE:
        raise ProtocolError(f"message length {n} is over the {MAX_MESSAGE} limit")
    return int(n)


async def read_async(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message from a stream; None at a clean end of stream."""
    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise ProtocolError("stream ended inside a length prefix") from None
    n = _length(head)
    try:
        body = await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise ProtocolError(f"stream ended inside a message of {n} bytes") from None
    return decode(body)


def recv_sync(sock: socket.socket) -> dict[str, Any]:
    """The next message from a blocking socket."""

    def exactly(n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ProtocolError("the runtime closed the connection")
            buf += chunk
        return bytes(buf)

    return decode(exactly(_length(exactly(4))))
