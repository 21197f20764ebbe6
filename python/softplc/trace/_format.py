"""Low-level reading of trace files: frames, records and where the columns are.

The layout is specified in ``docs/trace-format.md``. This module finds the frames of a
file and the byte position of every column of every block without copying the column
data, so that :mod:`softplc.trace._reader` can hand NumPy views of the file to the user.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgpack

from softplc.trace._errors import TraceError

__all__ = [
    "END_FRAME_BYTES",
    "FRAME_HEADER",
    "MAGIC",
    "SUPPORTED_MAJOR",
    "BlockRef",
    "Layout",
    "scan_file",
]

MAGIC = b"\x89SPLTRC\n"
FRAME_HEADER = 8
END_FRAME_BYTES = FRAME_HEADER + 25
SUPPORTED_MAJOR = 1

_FRAME = struct.Struct("<II")


@dataclass
class BlockRef:
    """Where one block is and what it holds (from the index or its own metadata)."""

    offset: int
    seq: int
    rows: int
    first_cycle: int
    last_cycle: int
    t_first_ns: int
    t_last_ns: int
    capture: int | None = None
    payload: int = 0
    payload_len: int = 0
    verified: bool = False
    #: Byte positions of the columns' data, once known.
    col_pos: list[int] | None = None


@dataclass
class Layout:
    """The structure of a trace file as far as it could be read."""

    size: int
    header: dict[str, Any]
    blocks: list[BlockRef] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    complete: bool = False
    #: Byte offset where readable data ends.
    good_bytes: int = 0
    #: Why reading stopped early (None when the file is complete).
    problem: str | None = None
    widths: list[int] = field(default_factory=list)


def _frame_at(buf: Any, pos: int, size: int) -> tuple[int, int] | None:
    """(payload start, payload length) of a whole frame at ``pos``, else None."""
    if pos + FRAME_HEADER > size:
        return None
    length, _crc = _FRAME.unpack_from(buf, pos)
    if length == 0 or pos + FRAME_HEADER + length > size:
        return None
    return pos + FRAME_HEADER, length


def _crc_ok(buf: Any, pos: int) -> bool:
    length, crc = _FRAME.unpack_from(buf, pos)
    start = pos + FRAME_HEADER
    return zlib.crc32(memoryview(buf)[start : start + length]) == int(crc)


def _decode(buf: Any, start: int, length: int) -> Any:
    return msgpack.unpackb(memoryview(buf)[start : start + length], raw=False, strict_map_key=False)


def _block_meta(buf: Any, start: int, length: int) -> tuple[dict[str, Any], int] | None:
    """Decodes a record's map without its ``columns``. Returns the entries and the
    position of the ``columns`` array (-1 when there is none). When ``columns`` is the
    last entry, as softplc writes it, only the first few kilobytes are read."""
    view = memoryview(buf)[start : start + length]
    for prefix in (4096, length):
        up = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(length, 1 << 20))
        up.feed(view[: min(prefix, length)])
        try:
            n = up.read_map_header()
            meta: dict[str, Any] = {}
            cols = -1
            for i in range(n):
                key = up.unpack()
                if key == "columns":
                    cols = start + up.tell()
                    if i == n - 1:
                        return meta, cols
                    up.skip()
                    continue
                meta[key] = up.unpack()
            return meta, cols
        except msgpack.OutOfData:
            continue
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            return None
    return None


def _bin_positions(buf: Any, pos: int, end: int, count: int) -> list[int] | None:
    """Positions of the data of ``count`` bin objects in a msgpack array at ``pos``."""
    if pos >= end:
        return None
    m = buf[pos]
    if 0x90 <= m <= 0x9F:
        n, pos = m & 0x0F, pos + 1
    elif m == 0xDC:
        (n,), pos = struct.unpack_from(">H", buf, pos + 1), pos + 3
    elif m == 0xDD:
        (n,), pos = struct.unpack_from(">I", buf, pos + 1), pos + 5
    else:
        return None
    if n != count:
        return None
    out = []
    for _ in range(n):
        if pos >= end:
            return None
        m = buf[pos]
        if m == 0xC4:
            ln, pos = buf[pos + 1], pos + 2
        elif m == 0xC5:
            (ln,), pos = struct.unpack_from(">H", buf, pos + 1), pos + 3
        elif m == 0xC6:
            (ln,), pos = struct.unpack_from(">I", buf, pos + 1), pos + 5
        else:
            return None
        out.append(pos)
        pos += ln
    return out if pos <= end else None


def column_positions(buf: Any, block: BlockRef, widths: list[int]) -> list[int]:
    """Data positions of every column of a block.

    Writers put ``columns`` last and every column as bin 32, so positions follow from the
    row count and the widths; they are checked against the bytes, and the block is parsed
    in full when the check fails (another writer may encode differently).
    """
    if block.col_pos is not None:
        return block.col_pos
    end = block.payload + block.payload_len
    total = sum(5 + block.rows * w for w in widths)
    start = end - total
    pos: list[int] = []
    ok = start >= block.payload
    at = start
    if ok:
        for w in widths:
            n = block.rows * w
            if buf[at] != 0xC6 or struct.unpack_from(">I", buf, at + 1)[0] != n:
                ok = False
                break
            pos.append(at + 5)
            at += 5 + n
    if not ok:
        found = _block_meta(buf, block.payload, block.payload_len)
        cols = None
        if found is not None and found[1] >= 0:
            cols = _bin_positions(buf, found[1], end, len(widths))
        if cols is None:
            raise TraceError(f"block {block.seq} at byte {block.offset} is malformed")
        for p, w in zip(cols, widths):
            if p + block.rows * w > end:
                raise TraceError(f"block {block.seq} at byte {block.offset} is malformed")
        pos = cols
    block.col_pos = pos
    return pos


def widths_of(header: dict[str, Any]) -> list[int]:
    """Bytes per value of every column: cycle, t_ns, then the signals."""
    out = []
    for col in list(header.get("columns", [])) + list(header.get("signals", [])):
        dt = str(col.get("dtype", ""))
        try:
            out.append(int(dt[2:]))
        except ValueError:
            raise TraceError(f"the header has a column of unknown dtype {dt!r}") from None
    return out


def open_buffer(path: str | os.PathLike[str]) -> tuple[Any, int]:
    """Maps a file for reading; returns the buffer and its size. Clear errors only."""
    p = os.fspath(path)
    try:
        f = open(p, "rb")  # noqa: SIM115 (the mapping outlives the with-block otherwise)
    except FileNotFoundError:
        raise TraceError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{p}: is a directory, not a trace file") from None
    except OSError as e:
        raise TraceError(f"{p}: cannot open: {e.strerror or e}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise TraceError(f"{p}: the file is empty (the trace recorded nothing)")
        try:
            buf: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            buf = f.read()
    return buf, size


def scan_file(buf: Any, size: int, name: str, *, verify: bool = False) -> Layout:
    """Finds the header, blocks and records of a trace.

    A cleanly closed file is read through its end frame and index (touching only the
    header and index, unless ``verify`` checks every frame's CRC). Otherwise the frames
    are walked from the start and reading stops at the first frame that is incomplete or
    damaged; ``problem`` says where.
    """
    head = bytes(buf[: min(size, len(MAGIC))])
    if head != MAGIC[: len(head)]:
        raise TraceError(f"{name}: not a softplc trace file (it starts with {head[:8]!r})")
    if size < len(MAGIC):
        raise TraceError(f"{name}: truncated before the end of its header ({size} bytes)")
    hf = _frame_at(buf, len(MAGIC), size)
    if hf is None or not _crc_ok(buf, len(MAGIC)):
        if hf is None:
            raise TraceError(f"{name}: truncated before the end of its header ({size} bytes)")
        raise TraceError(f"{name}: the header is damaged (checksum mismatch)")
    try:
        header = _decode(buf, *hf)
    except Exception as e:  # noqa: BLE001 (any decode failure means a damaged header)
        raise TraceError(f"{name}: the header does not decode: {e}") from None
    if not isinstance(header, dict) or header.get("format") != "softplc-trace":
        raise TraceError(f"{name}: not a softplc trace file (no softplc-trace header)")
    version = header.get("version") or [0, 0]
    if int(version[0]) > SUPPORTED_MAJOR:
        raise TraceError(
            f"{name}: trace format version {version[0]}.{version[1]} is newer than this "
            f"reader supports ({SUPPORTED_MAJOR}.x); upgrade softplc"
        )
    widths = widths_of(header)
    after_header = hf[0] + hf[1]
    layout = _from_index(buf, size, header, after_header, verify)
    if layout is None:
        layout = _walk(buf, size, header, after_header)
    layout.widths = widths
    return layout


def _from_index(
    buf: Any, size: int, header: dict[str, Any], after_header: int, verify: bool
) -> Layout | None:
    if size < after_header + END_FRAME_BYTES:
        return None
    end_at = size - END_FRAME_BYTES
    ef = _frame_at(buf, end_at, size)
    if ef is None or ef[1] != END_FRAME_BYTES - FRAME_HEADER or not _crc_ok(buf, end_at):
        return None
    try:
        end = _decode(buf, *ef)
        index_at = int(end["index"])
    except Exception:  # noqa: BLE001
        return None
    if end.get("type") != "end" or not after_header <= index_at < end_at:
        return None
    xf = _frame_at(buf, index_at, end_at)
    if xf is None or xf[0] + xf[1] != end_at or not _crc_ok(buf, index_at):
        return None
    try:
        index = _decode(buf, *xf)
    except Exception:  # noqa: BLE001
        return None
    if index.get("type") != "index":
        return None
    layout = Layout(size=size, header=header, summary=index.get("summary"), complete=True)
    layout.good_bytes = size
    for entry in index.get("blocks", []):
        off, seq, rows, c0, c1, t0, t1 = (int(x) for x in entry[:7])
        bf = _frame_at(buf, off, index_at)
        if bf is None:
            return None
        capture = None if len(entry) < 8 or entry[7] is None else int(entry[7])
        b = BlockRef(
            off, seq, rows, c0, c1, t0, t1, capture=capture, payload=bf[0], payload_len=bf[1]
        )
        if verify:
            if not _crc_ok(buf, off):
                raise TraceError(f"block {seq} at byte {off} is damaged (checksum mismatch)")
            b.verified = True
        layout.blocks.append(b)
    for off, _kind in index.get("records", []):
        rf = _frame_at(buf, int(off), index_at)
        if rf is None or (verify and not _crc_ok(buf, int(off))):
            return None
        try:
            layout.records.append(_decode(buf, *rf))
        except Exception:  # noqa: BLE001
            return None
    return layout


def _walk(buf: Any, size: int, header: dict[str, Any], pos: int) -> Layout:
    layout = Layout(size=size, header=header)
    while True:
        layout.good_bytes = pos
        if pos == size:
            layout.problem = "it has no index (the recording did not close the file)"
            return layout
        f = _frame_at(buf, pos, size)
        if f is None:
            layout.problem = f"it ends inside a frame at byte {pos} of {size}"
            return layout
        if not _crc_ok(buf, pos):
            layout.problem = f"the frame at byte {pos} is damaged (checksum mismatch)"
            return layout
        start, length = f
        found = _block_meta(buf, start, length)
        kind = found[0].get("type") if found is not None else None
        if kind == "block" and found is not None:
            meta = found[0]
            try:
                b = BlockRef(
                    pos,
                    int(meta["seq"]),
                    int(meta["rows"]),
                    int(meta["first_cycle"]),
                    int(meta["last_cycle"]),
                    int(meta["t_first_ns"]),
                    int(meta["t_last_ns"]),
                    capture=None if meta.get("capture") is None else int(meta["capture"]),
                    payload=start,
                    payload_len=length,
                    verified=True,
                )
            except (KeyError, TypeError, ValueError):
                layout.problem = f"the block at byte {pos} lacks its metadata"
                return layout
            layout.blocks.append(b)
        elif kind in ("index", "end"):
            pass
        elif kind is not None and found is not None:
            layout.records.append(found[0])
        else:
            layout.problem = f"the frame at byte {pos} is not a trace record"
            return layout
        pos = start + length
