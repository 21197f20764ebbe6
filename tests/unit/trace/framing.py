"""Rewriting trace files frame by frame, for tests that need a file softplc would not
write today (an older format version, lost events, a damaged or malformed file)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgpack

MAGIC = b"\x89SPLTRC\n"


def frame(obj: Any) -> bytes:
    """One frame holding ``obj``."""
    payload = msgpack.packb(obj, use_bin_type=True)
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def end_frame(index_at: int) -> bytes:
    """The 33-byte end frame pointing at the index frame at ``index_at``."""
    end = b"\x82\xa4type\xa3end\xa5index\xcf" + struct.pack(">Q", index_at)
    return struct.pack("<II", len(end), zlib.crc32(end)) + end


def read_frames(data: bytes) -> list[dict[str, Any]]:
    """Every frame's record, in file order."""
    return [rec for _, rec in frames_at(data)]


def frames_at(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    """(offset, record) of every frame, in file order."""
    assert data[:8] == MAGIC
    out, pos = [], 8
    while pos + 8 <= len(data):
        length, _crc = struct.unpack_from("<II", data, pos)
        out.append((pos, msgpack.unpackb(data[pos + 8 : pos + 8 + length], raw=False)))
        pos += 8 + length
    return out


def build(
    records: Iterable[dict[str, Any]],
    *,
    summary: dict[str, Any] | None = None,
    edit_index: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> bytes:
    """A closed trace file: MAGIC, the records (the header first) and an index of their
    offsets with the end frame; ``edit_index`` may change the index before it is
    written. Without ``summary`` the file ends with the records (no index)."""
    data = bytearray(MAGIC)
    blocks, listed = [], []
    for rec in records:
        at = len(data)
        kind = rec.get("type")
        if kind == "block":
            # .get: a test may have removed an entry to see what the reader says.
            keys = ("seq", "rows", "first_cycle", "last_cycle", "t_first_ns", "t_last_ns")
            blocks.append([at, *(rec.get(k) for k in keys), rec.get("capture")])
        elif kind != "header":
            listed.append([at, kind])
        data += frame(rec)
    if summary is not None:
        index = {"type": "index", "blocks": blocks, "records": listed, "summary": summary}
        if edit_index is not None:
            index = edit_index(index)
        at = len(data)
        data += frame(index)
        data += end_frame(at)
    return bytes(data)


def rewrite(path: Path, out: Path, edit: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
    """Writes ``path`` to ``out`` with every record passed through ``edit`` (None drops
    it); the index and end frame are rebuilt for the new offsets."""
    kept, summary = [], None
    for rec in read_frames(path.read_bytes()):
        kind = rec.get("type")
        if kind == "end":
            continue
        new = edit(rec)
        if new is None:
            continue
        if new.get("type") == "index":
            summary = new.get("summary")
            continue
        kept.append(new)
    out.write_bytes(build(kept, summary=summary))
