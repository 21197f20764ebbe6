"""Exporting traces: CSV, VCD (with a GTKWave save file), Parquet."""

from __future__ import annotations

import collections
import csv
import io
import json
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from softplc.trace._analysis import changes_mask
from softplc.trace._errors import TraceError
from softplc.trace._reader import Signal, Trace

__all__ = [
    "CHUNK_ROWS",
    "FORMATS",
    "PARQUET_MAX_SIGNALS",
    "VCD_GAP_MARKER",
    "column_names",
    "export_csv",
    "export_parquet",
    "export_vcd",
]

FORMATS = ("csv", "vcd", "parquet")
#: Rows converted at a time (bounds memory, paces the progress bar).
CHUNK_ROWS = 65536
#: Most signals a Parquet export takes. Arrow's Parquet writer keeps several kilobytes
#: for every column (about 6 KB measured with pyarrow 26), whatever the rows: a header
#: listing 200,000 signals would need over a gigabyte for an empty file.
PARQUET_MAX_SIGNALS = 10_000

Progress = Callable[[int, int], None]


def _open_out(path: str, mode: str) -> Any:
    try:
        if "b" in mode:
            return open(path, mode)
        return open(path, mode, encoding="utf-8", newline="")
    except OSError as e:
        raise TraceError(f"cannot write {path}: {e.strerror or e}") from None


def _rows(tr: Trace, sl: slice) -> range:
    return range(*sl.indices(tr.rows))


def column_names(signals: list[Signal], fixed: tuple[str, ...]) -> list[str]:
    """The exported column names of ``signals`` after the ``fixed`` columns: each
    signal's own name, unless an earlier column already has it (a variable called ``t``
    or ``cycle``): then ``NAME_2``, or ``NAME_3``, ..., the first that is neither an
    earlier column nor the name of another signal.

    Example:
        >>> from softplc.trace import Signal
        >>> sig = lambda n: Signal(n, "INT", "<i2", "", None, "memory", None, 0)
        >>> column_names([sig("t"), sig("level"), sig("t_2")], ("cycle", "t"))
        ['t_3', 'level', 't_2']
    """
    taken = set(fixed)
    names = {s.name for s in signals}
    out = []
    for s in signals:
        name = s.name
        if name in taken:
            k = 2
            while f"{s.name}_{k}" in taken or f"{s.name}_{k}" in names:
                k += 1
            name = f"{s.name}_{k}"
        taken.add(name)
        out.append(name)
    return out


def _write_with_gaps(f: Any, body: bytes, gaps: np.ndarray) -> None:
    """Writes CSV rows (one line each: every value is a number) with an empty line
    before each row that follows a gap. One pass over the bytes, however many gaps."""
    at = np.flatnonzero(gaps)
    if len(at) == 0:
        f.write(body)
        return
    newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 0x0A)
    starts = np.concatenate([[0], newlines + 1])
    view = memoryview(body)
    prev = 0
    for row in at.tolist():
        cut = int(starts[row])
        f.write(view[prev:cut])
        f.write(b"\n")
        prev = cut
    f.write(view[prev:])


def export_csv(
    tr: Trace,
    signals: list[Signal],
    out: str,
    sl: slice = slice(None),
    progress: Progress | None = None,
) -> int:
    """Writes a header row, then one row per sampled cycle: ``cycle``, ``t`` (seconds from
    the first row), and one column per signal by name (made unique by
    :func:`column_names`); BOOL as 0/1, TIME in milliseconds. Where the recording lost
    rows (or between two captures), an empty line separates the rows before and after
    (most CSV readers, pandas included, skip empty lines). Returns the rows written."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]

    rows = _rows(tr, sl)
    names = ["cycle", "t", *column_names(signals, ("cycle", "t"))]
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(names)
    t0 = np.uint64(tr.t0_ns)
    opts = pacsv.WriteOptions(include_header=False)
    with _open_out(out, "wb") as f:
        f.write(head.getvalue().encode())
        for lo in range(rows.start, rows.stop, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, rows.stop)
            chunk = slice(lo, hi)
            arrays = [
                tr.cycles(chunk),
                (tr.times_ns(chunk) - t0).astype(np.float64) / 1e9,
            ]
            for s in signals:
                v = tr.read(s, chunk)
                if s.is_bool:
                    v = v.astype(np.uint8)
                elif s.is_time:
                    v = v.astype(np.float64) / 1e6
                arrays.append(v)
            gaps = tr.gap_before(chunk)
            if lo == rows.start and len(gaps):
                gaps[0] = False  # nothing before the first row written
            table = pa.Table.from_arrays(
                [pa.array(x) for x in arrays], names=[f"c{i}" for i in range(len(arrays))]
            )
            buf = pa.BufferOutputStream()
            pacsv.write_csv(table, buf, write_options=opts)
            _write_with_gaps(f, buf.getvalue().to_pybytes(), gaps)
            if progress:
                progress(hi - rows.start, len(rows))
    return len(rows)


def export_parquet(
    tr: Trace,
    signals: list[Signal],
    out: str,
    sl: slice = slice(None),
    progress: Progress | None = None,
) -> int:
    """Writes a Parquet file: ``cycle`` (uint64), ``t`` (float64 seconds from the first
    row), ``gap_before`` (bool: rows were lost, or not taken, just before this one; see
    :meth:`Trace.gap_before`), then one column per signal in its own type (BOOL as bool,
    TIME as int64 ns; names made unique by :func:`column_names`; field metadata gives
    the signal's name, IEC type, unit and address); the trace header is in the schema
    metadata under ``softplc.trace.header``."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    if len(signals) > PARQUET_MAX_SIGNALS:
        raise TraceError(
            f"{tr.path}: a Parquet export takes at most {PARQUET_MAX_SIGNALS} signals, "
            f"{len(signals)} are selected (the writer needs kilobytes of memory per "
            "column); select fewer with -s, or export CSV"
        )
    rows = _rows(tr, sl)
    fixed = ("cycle", "t", "gap_before")
    names = column_names(signals, fixed)
    fields = [
        pa.field("cycle", pa.uint64()),
        pa.field("t", pa.float64(), metadata={"unit": "s"}),
        pa.field("gap_before", pa.bool_()),
    ]
    for s, name in zip(signals, names, strict=False):
        meta = {"signal": s.name, "iec_type": s.type, "unit": "ns" if s.is_time else s.unit}
        if s.address:
            meta["address"] = s.address
        kind = pa.string() if s.is_string else pa.from_numpy_dtype(np.dtype(s.dtype))
        fields.append(pa.field(name, kind, metadata=meta))
    schema = pa.schema(
        fields, metadata={"softplc.trace.header": json.dumps(tr.header, default=str)}
    )
    t0 = np.uint64(tr.t0_ns)
    # Dictionary pages pay off for switches and small counters, not for measurements
    # (every float distinct): they would make the file larger and the export slower.
    small = ("BOOL", "SINT", "INT", "DINT", "USINT", "UINT", "UDINT")
    dictionary = [n for s, n in zip(signals, names, strict=False) if s.type in small]
    try:
        writer = pq.ParquetWriter(out, schema, use_dictionary=dictionary)
    except OSError as e:
        raise TraceError(f"cannot write {out}: {e}") from None
    with writer:
        for lo in range(rows.start, max(rows.stop, rows.start + 1), CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, rows.stop)
            chunk = slice(lo, hi)
            gaps = tr.gap_before(chunk)
            if lo == rows.start and len(gaps):
                gaps[0] = False
            arrays = [
                pa.array(tr.cycles(chunk)),
                pa.array((tr.times_ns(chunk) - t0).astype(np.float64) / 1e9),
                pa.array(gaps),
            ] + [
                pa.array(tr.read(s, chunk).tolist() if s.is_string else tr.read(s, chunk))
                for s in signals
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            if progress:
                progress(hi - rows.start, len(rows))
    return len(rows)


_UNSAFE = re.compile(r"[^A-Za-z0-9_$]")

#: The VCD wire that marks lost rows: 1 from just after the last row before a gap until
#: the first row after it, else 0.
VCD_GAP_MARKER = ("top", "trace_gap")


def _vcd_names(signals: list[Signal]) -> list[tuple[tuple[str, ...], str]]:
    """(scope path, variable name) for each signal: the name split at dots, each part
    made safe for VCD readers (anything but letters, digits, ``_`` and ``$`` becomes
    ``_``), clashes (with each other or with the gap marker) resolved with a suffix."""
    out: list[tuple[tuple[str, ...], str]] = []
    used: set[tuple[tuple[str, ...], str]] = {((VCD_GAP_MARKER[0],), VCD_GAP_MARKER[1])}
    for s in signals:
        parts = [_UNSAFE.sub("_", p) or "_" for p in s.name.split(".")]
        scope, var = ("top", *parts[:-1]), parts[-1]
        key, k = (scope, var), 1
        while key in used:
            k += 1
            key = (scope, f"{var}_{k}")
        used.add(key)
        out.append(key)
    return out


def _mark_gaps(
    w: Any,
    marker: Any,
    pending: collections.deque[int],
    row: int,
    times: list[int],
    before_chunk: int | None,
    period: int,
) -> None:
    """Writes the gap marker of every gap before ``row`` of a chunk (``pending``: the
    chunk's rows that follow a gap), in time order with the value changes: 1 from one
    sample period after the row before the gap (``before_chunk`` when that row is in
    the previous chunk), or 1 ns after it when closer, until the row after the gap."""
    while pending and pending[0] <= row:
        g = pending.popleft()
        before = times[g - 1] if g else before_chunk
        after = times[g]
        if before is not None and after - before > 1:
            w.change(marker, min(before + period, after - 1), 1)
            w.change(marker, after, 0)


def _check_time_order(tr: Trace, t_rel: np.ndarray, before: int | None, first_row: int) -> None:
    """A VCD file is in time order; a recording always is, a damaged one may not be."""
    if not len(t_rel):
        return
    back = np.flatnonzero(t_rel[1:] < t_rel[:-1])
    start = t_rel[0] < (0 if before is None else before)
    if start or len(back):
        row = first_row + (0 if start else int(back[0]) + 1)
        raise TraceError(
            f"{tr.path}: row {row} is earlier than the row before it (or than the first "
            "row): a VCD file must be in time order"
        )


def export_vcd(
    tr: Trace,
    signals: list[Signal],
    out: str,
    sl: slice = slice(None),
    progress: Progress | None = None,
) -> tuple[int, str]:
    """Writes a Value Change Dump (time unit 1 ns, times from the first row) and a
    GTKWave save file beside it (same name, ``.gtkw``) showing every signal. BOOL are
    1-bit wires, integers and TIME (ns) integer vectors, REAL/LREAL reals. The 1-bit
    wire ``top.trace_gap`` marks lost rows: it is 1 from one sample period after the
    last row before a gap (or 1 ns after it, when closer) until the first row after
    it. Returns the number of value changes and the save file's path."""
    from vcd import VCDWriter
    from vcd.gtkw import GTKWFlag, GTKWSave

    names = _vcd_names(signals)
    rows = _rows(tr, sl)
    period = max(tr.sample_period_ns, 1)
    t0 = np.uint64(tr.t0_ns)
    total = 0
    f = _open_out(out, "w")
    with f:
        w = VCDWriter(
            f,
            timescale="1 ns",
            date="",
            comment=f"softplc trace {os.path.basename(tr.path)}",
            version="softplc",
        )
        marker = w.register_var(VCD_GAP_MARKER[0], VCD_GAP_MARKER[1], "wire", size=1, init=0)
        vars_ = []
        for s, (scope, var) in zip(signals, names, strict=False):
            if s.is_bool:
                vars_.append(w.register_var(".".join(scope), var, "wire", size=1))
            elif s.is_float:
                vars_.append(w.register_var(".".join(scope), var, "real"))
            elif s.is_string:
                vars_.append(w.register_var(".".join(scope), var, "string"))
            else:
                bits = np.dtype(s.dtype).itemsize * 8
                vars_.append(w.register_var(".".join(scope), var, "integer", size=bits))
        floats = [s.is_float for s in signals]
        bools = [s.is_bool for s in signals]
        # Chunk by chunk (memory bounded by the chunk, not the trace), carrying across
        # chunks each signal's last value and the last row's time.
        last: list[np.ndarray | None] = [None] * len(signals)
        last_t: int | None = None
        for lo in range(rows.start, rows.stop, CHUNK_ROWS):
            chunk = slice(lo, min(lo + CHUNK_ROWS, rows.stop))
            t_rel = (tr.times_ns(chunk) - t0).astype(np.int64)
            _check_time_order(tr, t_rel, last_t, lo)
            # Every (row, signal) where the value changes, in time order.
            idx_rows, idx_sig, cols = [], [], []
            for k, s in enumerate(signals):
                c = tr.read(s, chunk)
                prev = last[k]
                mask = changes_mask(c if prev is None else np.concatenate([prev, c]))
                r = np.flatnonzero(mask if prev is None else mask[1:])
                idx_rows.append(r)
                idx_sig.append(np.full(len(r), k, dtype=np.int32))
                cols.append(c.tolist())
                last[k] = c[-1:]
            all_rows = np.concatenate(idx_rows) if idx_rows else np.zeros(0, np.int64)
            all_sig = np.concatenate(idx_sig) if idx_sig else np.zeros(0, np.int32)
            order = np.argsort(all_rows, kind="stable")
            times = t_rel.tolist()
            # Rows after a gap (never the first row exported: nothing is before it).
            gaps = tr.gap_before(chunk)
            if lo == rows.start and len(gaps):
                gaps[0] = False
            pending = collections.deque(np.flatnonzero(gaps).tolist())

            for r, k in zip(all_rows[order].tolist(), all_sig[order].tolist(), strict=False):
                _mark_gaps(w, marker, pending, r, times, last_t, period)
                v = cols[k][r]
                if bools[k]:
                    v = int(v)
                elif floats[k]:
                    v = float(v)
                w.change(vars_[k], times[r], v)
            _mark_gaps(w, marker, pending, len(times), times, last_t, period)
            total += len(all_rows)
            last_t = times[-1] if times else last_t
            if progress:
                progress(chunk.stop - rows.start, len(rows))
        w.close(last_t if last_t is not None else 0)
    gtkw = os.path.splitext(out)[0] + ".gtkw"
    g = _open_out(gtkw, "w")
    with g:
        save = GTKWSave(g)
        save.comment(f"GTKWave save file for {os.path.basename(out)} (written by softplc)")
        save.dumpfile(os.path.abspath(out))
        save.savefile(os.path.abspath(gtkw))
        save.zoom_markers(0.0)
        save.signals_width(260)
        save.sst_expanded(True)
        save.trace(".".join(VCD_GAP_MARKER), datafmt="bin")
        for s, (scope, var) in zip(signals, names, strict=False):
            full = ".".join((*scope, var))
            if s.is_bool:
                save.trace(full, datafmt="bin")
            elif s.is_float:
                save.trace(full, datafmt="real", extraflags=GTKWFlag.analog_step)
            elif s.is_string:
                save.trace(full, datafmt="ascii")
            elif s.type in ("SINT", "INT", "DINT", "LINT", "TIME"):
                save.trace(full, datafmt="signed")
            else:
                save.trace(full, datafmt="dec")
    return total, gtkw
