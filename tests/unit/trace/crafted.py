"""Generators of hostile and damaged trace files, built in the tests from a real
recording (no binary fixtures): each starts from a file the Rust writer made and
changes what a broken or hostile writer would."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import softplc.trace as st

from tests.unit.trace.framing import build, end_frame, frame, frames_at, read_frames, rewrite

#: The value the campaign saw misread: a REAL 49.95 whose exponent bit 30 flipped reads
#: 1.47e-37.
LEVEL = np.float32(49.95)
FLIPPED = np.frombuffer(
    struct.pack("<I", struct.unpack("<I", LEVEL.tobytes())[0] ^ (1 << 30)), "<f4"
)[0]


def recorded(path: Path, rows: int = 50, block_rows: int = 10, timing: bool = True) -> Path:
    """A small real trace: a REAL level (49.95 once, at row 17), a BOOL pump and a DINT
    count, in blocks of ``block_rows``, with two events."""
    level = np.linspace(0.0, 40.0, rows).astype(np.float32)
    level[17] = LEVEL
    st.record_arrays(
        path,
        {
            "tank.level": ("REAL", level),
            "tank.pump": ("BOOL", np.arange(rows) % 7 == 0),
            "count": ("DINT", np.arange(rows)),
        },
        block_rows=block_rows,
        timing=timing,
        events=[
            {"t_ns": 3_000_000, "kind": "force", "text": "tank.pump=TRUE"},
            {"t_ns": 9_000_000, "kind": "fault", "text": "division by zero"},
        ],
    )
    return path


def huge_row_count(src: Path, out: Path) -> Path:
    """Block 0 claims 2**64 - 1 rows, in its own metadata and in the index (every
    checksum is right)."""

    def edit(rec: dict[str, Any]) -> dict[str, Any]:
        if rec["type"] == "block" and rec["seq"] == 0:
            rec["rows"] = 2**64 - 1
        return rec

    rewrite(src, out, edit)
    return out


def repeated_index_entries(src: Path, out: Path, copies: int = 100_000) -> Path:
    """The index lists block 0 ``copies`` times (every checksum is right)."""

    def edit_index(index: dict[str, Any]) -> dict[str, Any]:
        index["blocks"] = [index["blocks"][0]] * copies
        return index

    records = [r for r in read_frames(src.read_bytes()) if r["type"] not in ("index", "end")]
    summary = next(r for r in read_frames(src.read_bytes()) if r["type"] == "index")["summary"]
    out.write_bytes(build(records, summary=summary, edit_index=edit_index))
    return out


def many_empty_signals(src: Path, out: Path, count: int = 200_000) -> Path:
    """A closed trace whose header lists ``count`` BOOL signals and which holds no rows
    (valid: it must be read, promptly)."""
    header = read_frames(src.read_bytes())[0]
    header["signals"] = [
        {
            "name": f"plant.s{i}",
            "type": "BOOL",
            "dtype": "|b1",
            "unit": "",
            "address": None,
            "kind": "memory",
            "task": None,
        }
        for i in range(count)
    ]
    summary = {"rows": 0, "blocks": 0, "events": 0, "events_lost": 0}
    out.write_bytes(build([header], summary=summary))
    return out


def lying_column(src: Path, out: Path, delta: int, column: int = 2) -> Path:
    """Block 1's column ``column`` holds ``delta`` bytes more (or fewer) than its rows
    need (every checksum is right)."""

    def edit(rec: dict[str, Any]) -> dict[str, Any]:
        if rec["type"] == "block" and rec["seq"] == 1:
            col = rec["columns"][column]
            rec["columns"][column] = col + bytes(delta) if delta > 0 else col[:delta]
        return rec

    rewrite(src, out, edit)
    return out


def value_offset(data: bytes, value: np.float32) -> int:
    """Where the only copy of a float32 value is in a file."""
    raw = value.tobytes()
    at = data.find(raw)
    assert at > 0 and data.find(raw, at + 1) < 0, "the value must be in the file once"
    return at


def flipped_bit(src: Path, out: Path) -> tuple[Path, int]:
    """The campaign's damage: bit 30 of the REAL 49.95 in a data column flipped, so that
    it reads 1.47e-37 (the frame's checksum no longer matches). Returns the file and the
    offset of the block frame holding it."""
    data = bytearray(src.read_bytes())
    at = value_offset(bytes(data), LEVEL)
    data[at + 3] ^= 0x40
    out.write_bytes(bytes(data))
    block = max(off for off, rec in frames_at(src.read_bytes()) if off < at)
    return out, block


def frame_offset(path: Path, kind: str, nth: int = 0) -> int:
    """The offset of the ``nth`` frame of type ``kind``."""
    return [off for off, rec in frames_at(path.read_bytes()) if rec["type"] == kind][nth]


def damaged_frame(src: Path, out: Path, kind: str) -> tuple[Path, int]:
    """One byte inside the first frame of type ``kind`` changed (checksum mismatch)."""
    data = bytearray(src.read_bytes())
    at = frame_offset(src, kind)
    data[at + 12] ^= 0x01
    out.write_bytes(bytes(data))
    return out, at


def edited(src: Path, out: Path, kind: str, change: Any, *, index: bool = True) -> Path:
    """Every frame of type ``kind`` passed through ``change`` (which edits the record in
    place), framed again with right checksums; the index rebuilt (or, with
    ``index=False``, the original index kept, now pointing at the old offsets)."""
    if kind == "index":
        frames = read_frames(src.read_bytes())
        records = [r for r in frames if r["type"] not in ("index", "end")]
        summary = next(r for r in frames if r["type"] == "index")["summary"]

        def edit_index(rec: dict[str, Any]) -> dict[str, Any]:
            change(rec)
            return rec

        out.write_bytes(build(records, summary=summary, edit_index=edit_index))
        return out
    if index:

        def edit(rec: dict[str, Any]) -> dict[str, Any]:
            if rec["type"] == kind:
                change(rec)
            return rec

        rewrite(src, out, edit)
        return out
    data = bytearray(src.read_bytes()[:8])
    for _, rec in frames_at(src.read_bytes()):
        if rec["type"] == "end":
            continue
        if rec["type"] == "index":
            index_at = len(data)
        elif rec["type"] == kind:
            change(rec)
        data += frame(rec)
    out.write_bytes(bytes(data + end_frame(index_at)))
    return out


def every_row_after_a_gap(path: Path, rows: int) -> Path:
    """A trace of one INT whose every row follows lost rows (the cycle numbers go up by
    two with decimation 1): as many gaps as rows."""
    src = path.with_name("dense.trace")
    st.record_arrays(src, {"x": ("INT", np.arange(rows) % 100)}, timing=False, block_rows=65536)

    def edit(rec: dict[str, Any]) -> dict[str, Any]:
        if rec["type"] == "block":
            rec["columns"][0] = (np.frombuffer(rec["columns"][0], "<u8") * 2).tobytes()
            rec["first_cycle"] *= 2
            rec["last_cycle"] *= 2
        return rec

    rewrite(src, path, edit)
    return path
