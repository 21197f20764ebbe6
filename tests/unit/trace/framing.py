"""Rewriting trace files frame by frame, for tests that need a file softplc would not
write today (an older format version, lost events)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

MAGIC = b"\x89SPLTRC\n"


def frame(obj: Any) -> bytes:
    """One frame holding ``obj``."""
    payload = msgpack.packb(obj, use_bin_type=True)
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def read_frames(data: bytes) -> list[dict[str, Any]]:
    """Every frame's record, in file order."""
    assert data[:8] == MAGIC
    out, pos = [], 8
    while pos + 8 <= len(data):
        length, _crc = struct.unpack_from("<II", data, pos)
        out.append(msgpack.unpackb(data[pos + 8 : pos + 8 + length], raw=False))
        pos += 8 + length
    return out


def rewrite(path: Path, out: Path, edit: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
    """Writes ``path`` to ``out`` with every record passed through ``edit`` (None drops
    it); the index and end frame are rebuilt for the new offsets."""
    data = bytes(MAGIC)
    blocks, records, summary = [], [], None
    for rec in read_frames(path.read_bytes()):
        kind = rec.get("type")
        if kind == "end":
            continue
        new = edit(rec)
        if new is None:
            continue
        kind = new.get("type")
        if kind == "index":
            summary = new.get("summary")
            continue
        at = len(data)
        if kind == "block":
            blocks.append(
                [
                    at,
                    new["seq"],
                    new["rows"],
                    new["first_cycle"],
                    new["last_cycle"],
                    new["t_first_ns"],
                    new["t_last_ns"],
                    new.get("capture"),
                ]
            )
        elif kind != "header":
            records.append([at, kind])
        data += frame(new)
    if summary is not None:
        at = len(data)
        data += frame({"type": "index", "blocks": blocks, "records": records, "summary": summary})
        end = b"\x82\xa4type\xa3end\xa5index\xcf" + struct.pack(">Q", at)
        data += struct.pack("<II", len(end), zlib.crc32(end)) + end
    out.write_bytes(data)
