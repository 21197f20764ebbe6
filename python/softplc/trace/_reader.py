"""Loading a trace file into NumPy arrays."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np

from softplc.trace._errors import TraceError, TraceWarning
from softplc.trace._format import (
    BlockRef,
    Layout,
    column_positions,
    open_buffer,
    scan_file,
    verify_layout,
)

__all__ = ["ENUMS_META", "Signal", "Trace", "glob_match", "load", "split_patterns"]

#: The header ``meta`` entry that names the values of enumeration signals: a JSON
#: object ``{signal: {value: name}}`` (see docs/trace-format.md).
ENUMS_META = "enums"


@dataclass(frozen=True, slots=True)
class Signal:
    """One recorded signal, as the trace header describes it.

    Attributes:
        name: Variable name (``tank.level``) or timing signal (``task:main.exec_time``).
        type: IEC type name (``REAL``, ``BOOL``, ``TIME``, ...).
        dtype: NumPy type string of its column (``<f4``, ``|b1``; TIME is ``<i8`` ns).
        unit: Unit text, possibly empty.
        address: Direct address (``%ID4``), or None for timing signals.
        kind: ``input``, ``output``, ``memory`` or ``timing``.
        task: For timing signals, the task they describe.
        column: Index of the column in a block (0 and 1 are cycle and time).
        labels: For a variable of an enumeration type, the name of each value.
    """

    name: str
    type: str
    dtype: str
    unit: str
    address: str | None
    kind: str
    task: str | None
    column: int
    labels: dict[int, str] | None = None

    @property
    def is_bool(self) -> bool:
        """True for BOOL."""
        return self.type == "BOOL"

    @property
    def is_float(self) -> bool:
        """True for REAL and LREAL."""
        return self.type in ("REAL", "LREAL")

    @property
    def is_string(self) -> bool:
        """True for a STRING (its column reads as text: see :func:`decode_strings`)."""
        return self.type.startswith("STRING")

    @property
    def is_time(self) -> bool:
        """True for TIME (values in nanoseconds)."""
        return self.type == "TIME"

    def as_dict(self) -> dict[str, Any]:
        """The header entry as a dict."""
        return {
            "name": self.name,
            "type": self.type,
            "dtype": self.dtype,
            "unit": self.unit,
            "address": self.address,
            "kind": self.kind,
            "task": self.task,
            **({"labels": {str(k): v for k, v in self.labels.items()}} if self.labels else {}),
        }


def decode_strings(raw: np.ndarray, cap: int) -> np.ndarray:
    """A STRING column as text: each record is a length byte then ``cap`` bytes of
    single-byte (Latin-1) characters, as the process image holds it; the result is a
    NumPy array of ``str`` (dtype ``<U{cap}``).

    Example:
        >>> decode_strings(np.frombuffer(b"\\x02ab\\x00", dtype="|V4"), 3).tolist()
        ['ab']
    """
    rows = np.frombuffer(raw.tobytes(), dtype=np.uint8).reshape(-1, cap + 1)
    return np.array(
        [bytes(r[1 : 1 + min(int(r[0]), cap)]).decode("latin-1") for r in rows],
        dtype=f"<U{cap}",
    )


def glob_match(pattern: str, name: str) -> bool:
    """Shell-style match as the recorder does it: ``*`` any run of characters (dots
    included), ``?`` one character, everything else literally.

    Example:
        >>> glob_match("tank.*", "tank.in.flow"), glob_match("t?nk", "tnk")
        (True, False)
    """
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, name, re.DOTALL) is not None


def split_patterns(patterns: str | Iterable[str] | None) -> list[str]:
    """Flattens ``"a,b"`` / ``["a,b", "c"]`` into ``["a", "b", "c"]``.

    Example:
        >>> split_patterns(["tank.*,pump", "valve"])
        ['tank.*', 'pump', 'valve']
    """
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    out: list[str] = []
    for p in patterns:
        out.extend(x.strip() for x in str(p).split(",") if x.strip())
    return out


class Trace:
    """A trace file loaded for reading. Build it with :func:`load`.

    Columns are read on first use. A column that lives in one block is a read-only view
    of the file (no copy); a column spread over several blocks is concatenated once.

    Example:
        >>> import numpy as np, softplc.trace as st, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "doc.trace")
        >>> _ = st.record_arrays(path, {"level": ("REAL", np.arange(4))}, timing=False)
        >>> tr = st.load(path)
        >>> tr["level"].tolist(), tr.rows, tr.t.tolist()
        ([0.0, 1.0, 2.0, 3.0], 4, [0.0, 0.001, 0.002, 0.003])
    """

    def __init__(self, path: str, buf: Any, layout: Layout) -> None:
        self.path = path
        self._buf = buf
        self._layout = layout
        self.header: dict[str, Any] = layout.header
        self.warnings: list[str] = []
        labels = self._enum_labels()
        self.signals: list[Signal] = [
            Signal(
                name=str(s["name"]),
                type=str(s["type"]),
                dtype=str(s["dtype"]),
                unit=str(s.get("unit") or ""),
                address=s.get("address"),
                kind=str(s.get("kind") or ""),
                task=s.get("task"),
                column=2 + i,
                labels=labels.get(str(s["name"])),
            )
            for i, s in enumerate(layout.header.get("signals", []))
        ]
        self._by_name = {s.name: s for s in self.signals}
        self._cols: dict[int, np.ndarray] = {}
        self._dtypes = [str(c["dtype"]) for c in layout.header.get("columns", [])] + [
            s.dtype for s in self.signals
        ]
        self.complete: bool = layout.complete
        recs = layout.records
        evs = [e for r in recs if r.get("type") == "events" for e in r.get("events", [])]
        self.events: list[dict[str, Any]] = sorted(evs, key=lambda e: int(e.get("t_ns", 0)))
        self.gaps: list[dict[str, Any]] = [r for r in recs if r.get("type") == "gap"]
        self.triggers: list[dict[str, Any]] = [r for r in recs if r.get("type") == "trigger"]
        self.summary: dict[str, Any] | None = layout.summary
        # Where each block's rows start, and its last time: for reading windows through
        # the index instead of whole columns.
        # Row counts were checked against the frames holding them, so the sum is below
        # the file's size.
        blocks = layout.blocks
        self._row_starts = np.zeros(len(blocks) + 1, dtype=np.int64)
        if blocks:
            np.cumsum(np.array([b.rows for b in blocks], dtype=np.int64), out=self._row_starts[1:])
        self._rows = int(self._row_starts[-1])
        self._t_lasts = np.array([b.t_last_ns for b in blocks], dtype=np.uint64)

    def _enum_labels(self) -> dict[str, dict[int, str]]:
        """The value names of enumeration signals from the header's meta entry; a
        malformed entry is ignored with a warning (the numbers stay readable)."""
        meta = self.header.get("meta")
        text = meta.get(ENUMS_META) if isinstance(meta, dict) else None
        if text is None:
            return {}
        try:
            raw = json.loads(str(text))
            out = {
                str(sig): {int(k): str(v) for k, v in names.items()} for sig, names in raw.items()
            }
        except (ValueError, AttributeError, TypeError):
            self.warnings.append(
                f"header meta {ENUMS_META!r} is malformed; values shown as numbers"
            )
            return {}
        return out

    # -- shape -------------------------------------------------------------------------

    @property
    def blocks(self) -> list[BlockRef]:
        """The blocks read (position, rows, cycles and times of each)."""
        return list(self._layout.blocks)

    @property
    def rows(self) -> int:
        """Number of rows (sampled cycles) in the readable blocks."""
        return self._rows

    @property
    def names(self) -> list[str]:
        """Signal names in header order."""
        return [s.name for s in self.signals]

    @property
    def mode(self) -> str:
        """``continuous`` or ``triggered``."""
        return str(self.header.get("mode", "continuous"))

    @property
    def cycle_period_ns(self) -> int:
        """Period of the trace task (ns)."""
        return int(self.header.get("cycle_period_ns") or 0)

    @property
    def sample_period_ns(self) -> int:
        """Time between rows when nothing is dropped (period times decimation)."""
        return int(self.header.get("sample_period_ns") or 0)

    @property
    def t0_ns(self) -> int:
        """Engine-clock time of the first row (0 for an empty trace)."""
        blocks = self._layout.blocks
        return blocks[0].t_first_ns if blocks else 0

    @property
    def duration_ns(self) -> int:
        """Time from the first row to the last."""
        blocks = self._layout.blocks
        return blocks[-1].t_last_ns - blocks[0].t_first_ns if blocks else 0

    @property
    def dropped_blocks(self) -> int:
        """Blocks the recorder dropped because the disk did not keep up."""
        return sum(int(g.get("blocks", 0)) for g in self.gaps)

    @property
    def dropped_rows(self) -> int:
        """Rows in dropped blocks."""
        return sum(int(g.get("rows", 0)) for g in self.gaps)

    @property
    def version(self) -> tuple[int, int]:
        """Format version of the file, ``(major, minor)``."""
        v = self.header.get("version") or [1, 0]
        return int(v[0]), int(v[1])

    @property
    def events_lost(self) -> int | None:
        """Engine events lost before the recorder wrote them (the engine's queue was
        full, or its log overwrote them). From the index of a closed file, else from the
        events frames read (format 1.1); None when the file cannot say."""
        if self.summary is not None and "events_lost" in self.summary:
            return int(self.summary["events_lost"] or 0)
        counts = [
            int(r["lost"])
            for r in self._layout.records
            if r.get("type") == "events" and r.get("lost") is not None
        ]
        if counts or self.version >= (1, 1):
            return sum(counts)
        return None

    @property
    def incomplete_captures(self) -> int:
        """Captures the recording stopped before all post-trigger rows were taken."""
        return sum(1 for t in self.triggers if t.get("complete") is False)

    @property
    def engine_state(self) -> str | None:
        """Engine state when the trace started (``RUN``, ``STOP``, ...; format 1.1)."""
        v = self.header.get("engine_state")
        return None if v is None else str(v)

    @property
    def clock_ref(self) -> dict[str, Any] | None:
        """The engine clock and the wall clock read at the same moment when the trace
        started: ``{"clock": "monotonic" | "virtual", "engine_ns": ..., "unix_ns": ...}``
        (format 1.1), or None."""
        ref = self.header.get("clock_ref")
        if not isinstance(ref, dict) or "engine_ns" not in ref or "unix_ns" not in ref:
            return None
        return dict(ref)

    def unix_ns(self, t_ns: np.ndarray | int | None = None) -> np.ndarray:
        """Wall-clock times (int64 ns since 1970-01-01 UTC) of engine-clock times
        (``t_ns``; default: every row), from :attr:`clock_ref`. In virtual time the
        engine does not run at wall-clock speed: only the start maps exactly.

        Raises TraceError when the file has no clock reference (format 1.0).

        Example:
            >>> import os, tempfile, softplc.trace as st
            >>> p = os.path.join(tempfile.mkdtemp(), "w.trace")
            >>> _ = st.record_arrays(p, {"x": ("INT", [1, 2])})
            >>> tr = st.load(p)
            >>> w = tr.unix_ns()
            >>> int(w[1] - w[0]), int(w[0]) == tr.clock_ref["unix_ns"]
            (1000000, True)
        """
        ref = self.clock_ref
        if ref is None:
            raise TraceError(
                f"{self.path}: the trace has no clock reference (written before format 1.1)"
            )
        t = self.t_ns if t_ns is None else np.asarray(t_ns)
        off = int(ref["unix_ns"]) - int(ref["engine_ns"])
        return t.astype(np.int64) + np.int64(off)

    # -- columns -----------------------------------------------------------------------

    def _column(self, c: int) -> np.ndarray:
        arr = self._cols.get(c)
        if arr is not None:
            return arr
        arr = self._read(c, 0, self.rows)
        self._cols[c] = arr
        return arr

    def _read(self, c: int, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of column ``c``, reading only the blocks that hold them (a
        view of the file when they lie in one block)."""
        cached = self._cols.get(c)
        if cached is not None:
            return cached[start:stop]
        dtype = np.dtype(self._dtypes[c])
        blocks = self._layout.blocks
        starts = self._row_starts
        parts = []
        if stop > start:
            bi = int(np.searchsorted(starts, start, "right")) - 1
            while bi < len(blocks) and starts[bi] < stop:
                b = blocks[bi]
                lo = max(start - int(starts[bi]), 0)
                hi = min(stop - int(starts[bi]), b.rows)
                pos = column_positions(self._buf, b, self._layout)[c]
                parts.append(
                    np.frombuffer(
                        self._buf, dtype=dtype, count=hi - lo, offset=pos + lo * dtype.itemsize
                    )
                )
                bi += 1
        if not parts:
            raw = np.empty(0, dtype=dtype)
        elif len(parts) == 1:
            raw = parts[0]
        else:
            raw = np.concatenate(parts)
        if c >= 2 and self.signals[c - 2].is_string:
            return decode_strings(raw, dtype.itemsize - 1)
        return raw

    def _rows_of(self, c: int, sl: slice) -> np.ndarray:
        start, stop, step = sl.indices(self.rows)
        if step != 1:
            return self._column(c)[sl]
        return self._read(c, start, max(start, stop))

    def read(self, signal: Signal | str, sl: slice = slice(None)) -> np.ndarray:
        """The values of a signal (a :class:`Signal`, or a name as :meth:`signal` takes
        it) in the rows ``sl``, reading only the blocks that hold them.

        Example:
            >>> import os, tempfile, softplc.trace as st
            >>> p = os.path.join(tempfile.mkdtemp(), "r.trace")
            >>> _ = st.record_arrays(p, {"x": ("INT", range(100))}, block_rows=16)
            >>> st.load(p).read("x", slice(30, 34)).tolist()
            [30, 31, 32, 33]
        """
        sig = signal if isinstance(signal, Signal) else self.signal(signal)
        return self._rows_of(sig.column, sl)

    def cycles(self, sl: slice = slice(None)) -> np.ndarray:
        """The cycle numbers of the rows ``sl`` (:attr:`cycle`, read in part)."""
        return self._rows_of(0, sl)

    def times_ns(self, sl: slice = slice(None)) -> np.ndarray:
        """The engine-clock times of the rows ``sl`` (:attr:`t_ns`, read in part)."""
        return self._rows_of(1, sl)

    def gap_before(self, sl: slice = slice(None)) -> np.ndarray:
        """True for each row of ``sl`` that follows rows the recording lost or did not
        take: its cycle is more than ``decimate`` cycles after the previous row's (blocks
        dropped because the disk fell behind, or the space between two captures). The
        first row of the trace has nothing before it: False.

        Example:
            >>> import os, tempfile, softplc.trace as st
            >>> p = os.path.join(tempfile.mkdtemp(), "g.trace")
            >>> _ = st.record_arrays(p, {"on": ("BOOL", [0] * 6 + [1] * 4 + [0] * 10)},
            ...     trigger="rising:on", pre=1, post=1, captures=2, force_trigger_at=[15])
            >>> tr = st.load(p)
            >>> tr.cycle.tolist(), tr.gap_before().tolist()
            ([5, 6, 7, 14, 15, 16], [False, False, False, True, False, False])
        """
        start, stop, _ = sl.indices(self.rows)
        stop = max(start, stop)
        if stop == start:
            return np.zeros(0, dtype=bool)
        lo = max(start - 1, 0)
        cyc = self._read(0, lo, stop).astype(np.int64)
        step = max(int(self.header.get("decimate") or 1), 1)
        jumps = np.diff(cyc) > step
        if start == 0:
            return np.concatenate([np.zeros(1, dtype=bool), jumps])
        out: np.ndarray = jumps
        return out

    @property
    def cycle(self) -> np.ndarray:
        """Cycle number of the trace task for every row (uint64)."""
        return self._column(0)

    @property
    def t_ns(self) -> np.ndarray:
        """Scheduled start of every row's cycle, engine clock (uint64 ns)."""
        return self._column(1)

    @property
    def t(self) -> np.ndarray:
        """Seconds from the first row (float64)."""
        return (self.t_ns - np.uint64(self.t0_ns)).astype(np.float64) / 1e9

    def signal(self, name: str) -> Signal:
        """The signal called ``name``: its full name, its address (``%ID4``), or a unique
        last part (``level`` for ``tank.level``). Raises TraceError with suggestions."""
        s = self._by_name.get(name)
        if s is not None:
            return s
        for s in self.signals:
            if s.address is not None and s.address.upper() == name.upper():
                return s
        hits = [s for s in self.signals if s.name.endswith("." + name)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise TraceError(
                f"signal name {name!r} is ambiguous in {self.path}: "
                + ", ".join(h.name for h in hits[:5])
            )
        close = difflib.get_close_matches(name, self.names, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise TraceError(f"no signal {name!r} in {self.path}{hint}")

    def __getitem__(self, name: str) -> np.ndarray:
        return self._column(self.signal(name).column)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.signal(name)
        except TraceError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return self.rows

    def select(
        self, patterns: str | Iterable[str] | None = None, *, timing: bool = True
    ) -> list[Signal]:
        """Signals matching names or globs, in pattern order (all when None).

        Raises TraceError for a name or pattern that matches nothing. ``timing=False``
        leaves the per-task timing signals out of an unfiltered selection.
        """
        pats = split_patterns(patterns)
        if not pats:
            return [s for s in self.signals if timing or s.kind != "timing"]
        out: list[Signal] = []
        seen: set[str] = set()
        for p in pats:
            if any(c in p for c in "*?"):
                hits = [s for s in self.signals if glob_match(p, s.name)]
                if not hits:
                    raise TraceError(f"signal pattern {p!r} matches nothing in {self.path}")
            else:
                hits = [self.signal(p)]
            for s in hits:
                if s.name not in seen:
                    seen.add(s.name)
                    out.append(s)
        return out

    def to_dict(self, patterns: str | Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """``{name: array}`` of the selected signals (all by default)."""
        return {s.name: self._column(s.column) for s in self.select(patterns)}

    def _first_row_at(self, t_abs: int, side: Literal["left", "right"]) -> int:
        """Index of the first row whose time is >= ``t_abs`` (side ``left``) or > it
        (``right``), found through the index: only one block's time column is read."""
        blocks = self._layout.blocks
        if not blocks:
            return 0
        if t_abs < 0:
            return 0
        if t_abs >= 1 << 64:
            return self.rows
        bi = int(np.searchsorted(self._t_lasts, np.uint64(t_abs), side))
        if bi >= len(blocks):
            return self.rows
        start = int(self._row_starts[bi])
        t = self._read(1, start, start + blocks[bi].rows)
        return start + int(np.searchsorted(t, np.uint64(t_abs), side))

    def window(self, t_from_ns: int | None = None, t_to_ns: int | None = None) -> slice:
        """Row slice whose times (ns from the first row) are in ``[t_from, t_to]``.

        Found through the block index: only the time columns of the (at most two) blocks
        at the ends of the window are read.

        Example:
            >>> import os, tempfile, softplc.trace as st
            >>> p = os.path.join(tempfile.mkdtemp(), "w.trace")
            >>> _ = st.record_arrays(p, {"x": ("INT", range(100))}, block_rows=16)
            >>> st.load(p).window(20_000_000, 25_000_000)
            slice(20, 26, None)
        """
        if not self.rows:
            return slice(0, 0)
        t0 = self.t0_ns
        lo = 0 if t_from_ns is None else self._first_row_at(t0 + max(t_from_ns, 0), "left")
        if t_to_ns is None:
            hi = self.rows
        elif t_to_ns < 0:
            hi = 0
        else:
            hi = self._first_row_at(t0 + t_to_ns, "right")
        return slice(lo, max(lo, hi))

    @property
    def verified(self) -> bool:
        """True when every frame's checksum was checked (:func:`load` does so by
        default; a file without an index is always checked as it is walked)."""
        return self._layout.verified

    def verify(self) -> None:
        """Checks what ``load(..., verify=False)`` skipped: every frame's checksum, and
        the index against the frames it lists. Raises TraceError naming the first frame
        that is damaged or does not match."""
        if not self._layout.verified:
            verify_layout(self._buf, self._layout)

    def close(self) -> None:
        """Releases the file mapping when no array still uses it (else the garbage
        collector does, once the arrays are gone)."""
        self._cols.clear()
        close = getattr(self._buf, "close", None)
        if close is not None:
            with contextlib.suppress(BufferError):
                close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Trace {self.path!r}: {len(self.signals)} signals, {self.rows} rows>"


def load(path: str | os.PathLike[str], *, verify: bool = True) -> Trace:
    """Opens a trace file.

    A file cut short (a crash, a power loss, or a recording still running) loads up to
    its last whole block, with a :class:`TraceWarning`; a missing, empty, damaged,
    malformed or foreign file raises :class:`TraceError` with one line naming the file,
    the frame and what is wrong. Every count, length and offset in the file is checked
    against its size before it is used.

    Args:
        path: the trace file.
        verify: check the checksum of every frame of a cleanly closed file, and its
            index against the frames (the default). ``verify=False`` reads only the
            header and the index up front, which is faster for large files, and trusts
            the data; :meth:`Trace.verify` checks later. A file without an index is
            always checked as it is read.

    Example:
        >>> import softplc.trace as st
        >>> try:
        ...     st.load("/nonexistent.trace")
        ... except st.TraceError as e:
        ...     print(e)
        /nonexistent.trace: no such file
    """
    name = os.fspath(path)
    buf, size = open_buffer(name)
    try:
        layout = scan_file(buf, size, name, verify=verify)
    except BaseException:
        close = getattr(buf, "close", None)
        if close is not None:
            close()
        raise
    tr = Trace(name, buf, layout)
    if not layout.complete:
        msg = (
            f"{name}: the trace is incomplete ({layout.problem}); read {len(layout.blocks)} "
            f"whole blocks ({tr.rows} rows), up to byte {layout.good_bytes} of {size}"
        )
        tr.warnings.append(msg)
        warnings.warn(TraceWarning(msg), stacklevel=2)
    return tr
