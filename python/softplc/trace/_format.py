"""Low-level reading of trace files: frames, records and where the columns are.

The layout is specified in ``docs/trace-format.md``. This module finds the frames of a
file and the byte position of every column of every block without copying the column
data, so that :mod:`softplc.trace._reader` can hand NumPy views of the file to the user.

Nothing in a file is trusted before it is checked: every length, count and offset is
compared with the bytes that are really there before anything is allocated or looped
over, so the work of reading a file is proportional to its size whatever it claims
(a block claiming 2**64 rows, an index listing one block a hundred thousand times).
A cleanly closed file is verified by default: every frame's checksum, and the index
against the frames it lists.
"""

from __future__ import annotations

import itertools
import mmap
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgpack

from softplc.trace._errors import TraceError
from softplc.trace._schema import (
    Fields,
    check_events,
    check_gap,
    check_header,
    check_trigger,
    short,
)

__all__ = [
    "END_FRAME_BYTES",
    "FRAME_HEADER",
    "MAGIC",
    "SUPPORTED_MAJOR",
    "BlockRef",
    "Layout",
    "column_positions",
    "open_buffer",
    "scan_file",
    "verify_layout",
]

MAGIC = b"\x89SPLTRC\n"
FRAME_HEADER = 8
END_FRAME_BYTES = FRAME_HEADER + 25
SUPPORTED_MAJOR = 1

#: Record frames other than blocks that the index lists and the reader keeps.
RECORD_KINDS = ("events", "gap", "trigger")

_FRAME = struct.Struct("<II")
_BIN32 = struct.Struct(">BI")
_BLOCK_KEYS = ("seq", "rows", "first_cycle", "last_cycle", "t_first_ns", "t_last_ns")
#: The items of an index entry of ``blocks``.
_INDEX_ITEMS = ("offset", *_BLOCK_KEYS, "capture")
_CHECKS = {"events": check_events, "gap": check_gap, "trigger": check_trigger}


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

    @property
    def where(self) -> str:
        """``block SEQ at byte OFFSET``, for messages."""
        return f"block {self.seq} at byte {self.offset}"


@dataclass
class Layout:
    """The structure of a trace file as far as it could be read."""

    name: str
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
    #: Bytes per value of every column: cycle, t_ns, then the signals.
    widths: list[int] = field(default_factory=list)
    #: Column names, for messages: cycle, t_ns, then the signals.
    columns: list[str] = field(default_factory=list)
    #: Every frame's checksum was checked (always so for a file read by walking it).
    verified: bool = False
    #: Where the index frame of a closed file starts.
    index_at: int = 0
    #: Where the header frame ends.
    after_header: int = 0
    #: The records a closed file's index lists: (offset, type).
    record_index: list[tuple[int, str]] = field(default_factory=list)

    @property
    def row_bytes(self) -> int:
        """Bytes of one row over all columns (at least 16: cycle and t_ns)."""
        return sum(self.widths)


# -- frames ------------------------------------------------------------------------------


def _frame_at(buf: Any, pos: int, limit: int) -> tuple[int, int] | None:
    """(payload start, payload length) of a whole frame at ``pos`` that ends by
    ``limit``, else None."""
    if pos < 0 or pos + FRAME_HEADER > limit:
        return None
    length, _crc = _FRAME.unpack_from(buf, pos)
    if length == 0 or pos + FRAME_HEADER + length > limit:
        return None
    return pos + FRAME_HEADER, length


def _crc_ok(buf: Any, pos: int) -> bool:
    length, crc = _FRAME.unpack_from(buf, pos)
    start = pos + FRAME_HEADER
    return zlib.crc32(memoryview(buf)[start : start + length]) == int(crc)


def _decode(buf: Any, start: int, length: int, file: str, what: str) -> Any:
    """The msgpack value of a payload. msgpack bounds every length it reads by the
    payload's size, so a count that lies fails here instead of allocating."""
    try:
        return msgpack.unpackb(
            memoryview(buf)[start : start + length], raw=False, strict_map_key=False
        )
    except Exception as e:  # noqa: BLE001 (msgpack raises several types for bad data)
        raise TraceError(f"{file}: {what} does not decode ({_one_line(e)})") from None


def _one_line(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return " ".join(text.split())[:200]


def _record_meta(buf: Any, start: int, length: int) -> tuple[dict[str, Any], int] | None:
    """Decodes a record's map without its ``columns``. Returns the entries and the
    position of the ``columns`` array (-1 when there is none); None when the payload
    is not a map. When ``columns`` is the last entry, as softplc writes it, only the
    first few kilobytes are read."""
    view = memoryview(buf)[start : start + length]
    for prefix in (4096, length):
        # Every limit at the payload's size: no count read from the file can make the
        # unpacker reserve more than the payload could hold.
        up = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=length)
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
            if prefix >= length:
                return None
            continue
        except Exception:  # noqa: BLE001 (any decode failure: not a record)
            return None
    return None


def _bins(buf: Any, pos: int, end: int, block: BlockRef, layout: Layout) -> list[int]:
    """Positions of the data of the bin objects of a block's ``columns`` array at
    ``pos``, each checked to hold exactly ``rows`` values of its column's width."""
    where = f"{layout.name}: {block.where}"
    count = len(layout.widths)
    if pos >= end:
        raise TraceError(f"{where}: 'columns' is cut off")
    m = buf[pos]
    if 0x90 <= m <= 0x9F:
        n, pos = m & 0x0F, pos + 1
    elif m == 0xDC and pos + 3 <= end:
        (n,), pos = struct.unpack_from(">H", buf, pos + 1), pos + 3
    elif m == 0xDD and pos + 5 <= end:
        (n,), pos = struct.unpack_from(">I", buf, pos + 1), pos + 5
    else:
        raise TraceError(f"{where}: 'columns' is not an array")
    if n != count:
        raise TraceError(
            f"{where}: 'columns' holds {n} columns, expected {count} "
            f"(cycle, t_ns and {count - 2} signals)"
        )
    out = []
    for c, w in enumerate(layout.widths):
        col = f"{where}: column {c} ({layout.columns[c]!r})"
        m = buf[pos] if pos < end else -1
        if m == 0xC4 and pos + 2 <= end:
            ln, pos = buf[pos + 1], pos + 2
        elif m == 0xC5 and pos + 3 <= end:
            (ln,), pos = struct.unpack_from(">H", buf, pos + 1), pos + 3
        elif m == 0xC6 and pos + 5 <= end:
            (ln,), pos = struct.unpack_from(">I", buf, pos + 1), pos + 5
        else:
            raise TraceError(f"{col} is not a byte string")
        expected = block.rows * w
        if ln != expected:
            raise TraceError(
                f"{col} holds {ln} bytes, expected {expected} ({block.rows} rows of {w} bytes)"
            )
        if pos + ln > end:
            raise TraceError(f"{col} runs past the end of its frame")
        out.append(pos)
        pos += ln
    return out


def column_positions(buf: Any, block: BlockRef, layout: Layout) -> list[int]:
    """Data positions of every column of a block, each checked to hold exactly
    ``rows`` values.

    Writers put ``columns`` last and every column as bin 32, so positions follow from the
    row count and the widths; they are checked against the bytes, and the block is parsed
    in full when the check fails (another writer may encode differently).
    """
    if block.col_pos is not None:
        return block.col_pos
    end = block.payload + block.payload_len
    widths = layout.widths
    rows = block.rows
    # Rows were bounded by the frame's size when the block was read, so these sums stay
    # below the payload length plus five bytes a column.
    at = end - sum(5 + rows * w for w in widths)
    pos: list[int] = []
    if at >= block.payload:
        for w in widths:
            marker, n = _BIN32.unpack_from(buf, at)
            if marker != 0xC6 or n != rows * w:
                break
            pos.append(at + 5)
            at += 5 + n
    if len(pos) != len(widths):
        found = _record_meta(buf, block.payload, block.payload_len)
        if found is None or found[1] < 0:
            raise TraceError(f"{layout.name}: {block.where} has no 'columns'")
        pos = _bins(buf, found[1], end, block, layout)
    block.col_pos = pos
    return pos


def widths_of(header: dict[str, Any]) -> list[int]:
    """Bytes per value of every column: cycle, t_ns, then the signals (the header is
    checked: every dtype is one of the format's)."""
    return [int(str(c["dtype"])[2:]) for c in [*header["columns"], *header["signals"]]]


# -- opening -----------------------------------------------------------------------------


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


def scan_file(buf: Any, size: int, name: str, *, verify: bool = True) -> Layout:
    """Finds the header, blocks and records of a trace, checking each.

    A cleanly closed file is read through its end frame and index. With ``verify``
    (the default) every frame between the header and the index is walked: its checksum
    is checked, and the index must list exactly the frames found, with the metadata
    they hold; any mismatch raises TraceError naming the frame. Without ``verify`` only
    the header, index and end frames are checked, and the blocks are taken from the
    index (their bounds are still checked against the file).

    A file without an index (cut short, or still being written) is walked from the
    start and reading stops at the first frame that is incomplete or damaged;
    ``problem`` says where.
    """
    head = bytes(buf[: min(size, len(MAGIC))])
    if head != MAGIC[: len(head)]:
        raise TraceError(f"{name}: not a softplc trace file (it starts with {head[:8]!r})")
    if size < len(MAGIC):
        raise TraceError(f"{name}: truncated before the end of its header ({size} bytes)")
    hf = _frame_at(buf, len(MAGIC), size)
    if hf is None:
        raise TraceError(f"{name}: truncated before the end of its header ({size} bytes)")
    if not _crc_ok(buf, len(MAGIC)):
        raise TraceError(f"{name}: the header is damaged (checksum mismatch)")
    header = _decode(buf, *hf, name, "the header")
    if not isinstance(header, dict) or header.get("format") != "softplc-trace":
        raise TraceError(f"{name}: not a softplc trace file (no softplc-trace header)")
    version = header.get("version")
    if (
        not isinstance(version, list)
        or len(version) < 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in version)
    ):
        raise TraceError(f"{name}: header: 'version' must be [major, minor], got {short(version)}")
    if version[0] > SUPPORTED_MAJOR:
        raise TraceError(
            f"{name}: trace format version {version[0]}.{version[1]} is newer than this "
            f"reader supports ({SUPPORTED_MAJOR}.x); upgrade softplc"
        )
    check_header(header, name)
    layout = Layout(name=name, size=size, header=header)
    layout.widths = widths_of(header)
    layout.columns = ["cycle", "t_ns", *(str(s["name"]) for s in header["signals"])]
    layout.after_header = hf[0] + hf[1]
    index = _find_index(buf, layout, verify)
    if index is None:
        _walk(buf, layout, verify)
    else:
        _from_index(buf, layout, index, verify)
    return layout


# -- closed files: through the index -----------------------------------------------------


def _find_index(buf: Any, layout: Layout, verify: bool) -> dict[str, Any] | None:
    """The index of a cleanly closed file, or None when the file has no (intact) end
    frame. A closed file whose index is damaged raises TraceError when verifying (it is
    walked, with a warning, when not)."""
    name, size = layout.name, layout.size
    if size < layout.after_header + END_FRAME_BYTES:
        return None
    end_at = size - END_FRAME_BYTES
    ef = _frame_at(buf, end_at, size)
    if ef is None or ef[1] != END_FRAME_BYTES - FRAME_HEADER or not _crc_ok(buf, end_at):
        return None
    end = _decode(buf, *ef, name, f"the end frame at byte {end_at}")
    if not isinstance(end, dict) or end.get("type") != "end":
        return None  # another writer's last frame happens to be 25 bytes: not closed
    index_at = Fields(end, name, f"the end frame at byte {end_at}").integer(
        "index", lo=layout.after_header, hi=end_at
    )
    xf = _frame_at(buf, index_at, end_at)
    damage = None
    if xf is None or xf[0] + xf[1] != end_at:
        damage = "its length does not reach the end frame"
    elif not _crc_ok(buf, index_at):
        damage = "checksum mismatch"
    if damage is not None:
        if verify:
            raise TraceError(f"{name}: the index frame at byte {index_at} is damaged ({damage})")
        return None
    assert xf is not None
    index = _decode(buf, *xf, name, f"the index frame at byte {index_at}")
    f = Fields(index, name, f"the index frame at byte {index_at}")
    if index.get("type") != "index":
        raise f.fail(f"its type is {short(index.get('type'))}, expected 'index'")
    layout.index_at = index_at
    return index  # type: ignore[no-any-return]


def _entry_frame(buf: Any, layout: Layout, off: int, where: str, lowest: int) -> tuple[int, int]:
    """The frame an index entry points at, checked to lie whole between ``lowest`` (the
    end of the frame listed before it) and the index."""
    if off < lowest:
        raise TraceError(
            f"{layout.name}: {where} points at byte {off}, before the end of the frame "
            f"listed before it (byte {lowest}; entries must be distinct frames in file order)"
        )
    f = _frame_at(buf, off, layout.index_at)
    if f is None:
        raise TraceError(
            f"{layout.name}: {where} points at byte {off}, where no whole frame lies "
            f"before the index (at byte {layout.index_at})"
        )
    return f


def _index_blocks(buf: Any, layout: Layout, entries: list[Any]) -> list[BlockRef]:
    """The blocks an index lists, each checked: integers in range, offsets in file order
    and not overlapping, and a row count the frame can hold."""
    name = layout.name
    row_bytes = layout.row_bytes
    out: list[BlockRef] = []
    lowest = layout.after_header
    for i, e in enumerate(entries):
        where = f"index entry {i} of 'blocks'"
        if not isinstance(e, list) or len(e) not in (7, 8):
            raise TraceError(
                f"{name}: {where} must be [offset, seq, rows, first_cycle, last_cycle, "
                f"t_first_ns, t_last_ns, capture], got {short(e)}"
            )
        f = Fields(dict(zip(_INDEX_ITEMS, e, strict=False)), name, where)
        off = f.integer("offset")
        if out and off == out[-1].offset:
            raise TraceError(
                f"{name}: {where} lists the block at byte {off} again (entries must be "
                "distinct frames in file order)"
            )
        start, length = _entry_frame(buf, layout, off, where, lowest)
        b = _block_ref(off, f, start, length)
        _check_rows(b.rows, length, row_bytes, f"{name}: {where} ({b.where})")
        out.append(b)
        lowest = start + length
    return out


def _check_rows(rows: int, payload_len: int, row_bytes: int, where: str) -> None:
    most = payload_len // row_bytes
    if not 1 <= rows <= most:
        raise TraceError(
            f"{where}: 'rows' is {rows}, but its frame of {payload_len} bytes holds from 1 "
            f"to {most} rows of {row_bytes} bytes"
        )


def _from_index(buf: Any, layout: Layout, index: dict[str, Any], verify: bool) -> None:
    name = layout.name
    fx = Fields(index, name, f"the index frame at byte {layout.index_at}")
    summary = fx.opt_map("summary")
    if summary is not None:
        Fields(summary, name, "the index summary").opt_integer("events_lost")
    layout.summary = summary
    layout.blocks = _index_blocks(buf, layout, fx.array("blocks", default=[]))
    # Records: [offset, type], checked in range; then every listed frame (blocks and
    # records together) must be distinct and not overlap.
    records: list[tuple[int, str]] = []
    for i, e in enumerate(fx.array("records", default=[])):
        where = f"index entry {i} of 'records'"
        if not isinstance(e, list) or len(e) != 2 or not isinstance(e[1], str):
            raise TraceError(f"{name}: {where} must be [offset, type], got {short(e)}")
        records.append((Fields({"offset": e[0]}, name, where).integer("offset"), e[1]))
    frames = [(b.offset, b.payload + b.payload_len, "block") for b in layout.blocks]
    for i, (off, kind) in enumerate(records):
        start, length = _entry_frame(
            buf, layout, off, f"index entry {i} of 'records'", layout.after_header
        )
        frames.append((off, start + length, kind))
    frames.sort()
    for (a, a_end, _), (b, _, _) in itertools.pairwise(frames):
        if b < a_end:
            raise TraceError(
                f"{name}: the index lists overlapping frames at bytes {a} and {b} "
                "(entries must be distinct frames)"
            )
    layout.complete = True
    layout.good_bytes = layout.size
    layout.record_index = records
    if verify:
        layout.records = verify_layout(buf, layout)
        return
    for off, kind in records:
        f = _frame_at(buf, off, layout.index_at)
        assert f is not None
        if kind in RECORD_KINDS:
            what = f"the {kind} frame at byte {off}"
            rec = _decode(buf, *f, name, what)
            _check_record(rec, kind, name, what)
            layout.records.append(rec)


def _check_record(rec: Any, kind: str, file: str, what: str) -> None:
    if not isinstance(rec, dict) or rec.get("type") != kind:
        got = rec.get("type") if isinstance(rec, dict) else rec
        raise TraceError(f"{file}: {what}: the index says {kind!r}, the frame holds {short(got)}")
    _CHECKS[kind](rec, file, what)


def _block_ref(offset: int, f: Fields, start: int, length: int) -> BlockRef:
    """A block from checked metadata (a block frame's own, or its index entry)."""
    return BlockRef(
        offset,
        seq=f.integer("seq"),
        rows=f.integer("rows"),
        first_cycle=f.integer("first_cycle"),
        last_cycle=f.integer("last_cycle"),
        t_first_ns=f.integer("t_first_ns"),
        t_last_ns=f.integer("t_last_ns"),
        capture=f.opt_integer("capture"),
        payload=start,
        payload_len=length,
    )


def _block_from_meta(
    meta: dict[str, Any], layout: Layout, pos: int, start: int, length: int
) -> BlockRef:
    """A block's own metadata, checked (a row count its frame can hold)."""
    b = _block_ref(pos, Fields(meta, layout.name, f"the block at byte {pos}"), start, length)
    _check_rows(b.rows, length, layout.row_bytes, f"{layout.name}: {b.where}")
    return b


def verify_layout(buf: Any, layout: Layout) -> list[dict[str, Any]]:
    """Walks every frame between the header and the index of a closed file: checks its
    checksum, that the index lists it (blocks, events, gap and trigger frames) with the
    metadata it holds, and where each block's columns are. Returns the records the
    index lists, decoded and checked. Raises TraceError naming the first frame that is
    wrong."""
    name = layout.name
    blocks = {b.offset: b for b in layout.blocks}
    listed: dict[int, str] = dict(layout.record_index)

    def describe(at: int) -> str:
        b = blocks.get(at)
        if b is not None:
            return b.where
        kind = listed.get(at)
        return f"the {kind} frame at byte {at}" if kind else f"the frame at byte {at}"

    # First the bytes: every frame whole and its checksum right (damage explains any
    # other mismatch, so it is reported first).
    frames: list[tuple[int, int, int]] = []
    pos = layout.after_header
    while pos < layout.index_at:
        f = _frame_at(buf, pos, layout.index_at)
        if f is None:
            raise TraceError(
                f"{name}: {describe(pos)} is damaged (its length field does not fit "
                f"between byte {pos} and the index at byte {layout.index_at})"
            )
        if not _crc_ok(buf, pos):
            raise TraceError(f"{name}: {describe(pos)} is damaged (checksum mismatch)")
        frames.append((pos, *f))
        pos = f[0] + f[1]
    # Then the index: every entry at the start of a frame.
    starts = {at for at, _, _ in frames}
    for at in sorted([*blocks, *listed]):
        if at not in starts:
            raise TraceError(f"{name}: the index lists {describe(at)}, but no frame starts there")
    # Then each frame against its entry.
    found_records: list[dict[str, Any]] = []
    for at, start, length in frames:
        found = _record_meta(buf, start, length)
        kind = found[0].get("type") if found is not None else None
        block = blocks.get(at)
        if block is not None:
            if kind != "block" or found is None:
                raise TraceError(
                    f"{name}: the index lists byte {at} as a block, but the frame holds "
                    f"{'no record' if found is None else short(kind)}"
                )
            if found[1] < 0:
                raise TraceError(f"{name}: {block.where} has no 'columns'")
            own = _block_from_meta(found[0], layout, at, start, length)
            for key in (*_BLOCK_KEYS, "capture"):
                said, holds = getattr(block, key), getattr(own, key)
                if said != holds:
                    raise TraceError(
                        f"{name}: {block.where}: the index says {key}={said}, the block "
                        f"says {key}={holds}"
                    )
            column_positions(buf, block, layout)
            block.verified = True
        elif at in listed:
            want = listed[at]
            what = f"the {want} frame at byte {at}"
            if found is None:
                raise TraceError(f"{name}: {what} does not decode as a record")
            if want in RECORD_KINDS:
                _check_record(found[0], want, name, what)
                found_records.append(found[0])
        elif kind in ("block", *RECORD_KINDS):
            raise TraceError(f"{name}: the index does not list the {kind} frame at byte {at}")
        elif found is None or not isinstance(kind, str):
            raise TraceError(f"{name}: the frame at byte {at} is not a trace record")
    layout.verified = True
    return found_records


# -- files without an index: walking the frames ------------------------------------------


def _walk(buf: Any, layout: Layout, verify: bool) -> None:
    """Reads frames from the header on, stopping at the first that is cut off, empty or
    damaged (section 1 of the format). Whole, checksum-valid frames that are malformed
    raise TraceError. With ``verify``, a damaged frame is an error, not the end of the
    data, when the file shows it was closed (an index frame came before it) or when a
    whole, valid frame follows it (a torn tail never has one)."""
    name, size = layout.name, layout.size
    layout.verified = True
    pos = layout.after_header
    closed = False
    while True:
        layout.good_bytes = pos
        if pos == size:
            layout.problem = "it has no index (the recording did not close the file)"
            return
        f = _frame_at(buf, pos, size)
        if f is None:
            layout.problem = f"it ends inside a frame at byte {pos} of {size}"
            if pos + FRAME_HEADER <= size and _FRAME.unpack_from(buf, pos)[0] == 0:
                layout.problem = f"a zero-length frame at byte {pos} (a zero-filled tail)"
            return
        start, length = f
        if not _crc_ok(buf, pos):
            problem = f"the frame at byte {pos} is damaged (checksum mismatch)"
            nxt = _frame_at(buf, start + length, size)
            if verify and (closed or (nxt is not None and _crc_ok(buf, start + length))):
                raise TraceError(f"{name}: {problem}")
            layout.problem = problem
            return
        found = _record_meta(buf, start, length)
        kind = found[0].get("type") if found is not None else None
        if kind == "block":
            assert found is not None
            b = _block_from_meta(found[0], layout, pos, start, length)
            if found[1] < 0:
                raise TraceError(f"{name}: {b.where} has no 'columns'")
            b.verified = True
            column_positions(buf, b, layout)
            layout.blocks.append(b)
        elif kind in RECORD_KINDS:
            assert found is not None
            what = f"the {kind} frame at byte {pos}"
            _check_record(found[0], str(kind), name, what)
            layout.records.append(found[0])
        elif kind == "index":
            closed = True
        elif not isinstance(kind, str):
            layout.problem = f"the frame at byte {pos} is not a trace record"
            return
        pos = start + length
