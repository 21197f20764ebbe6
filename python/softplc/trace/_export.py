"""Exporting traces: CSV, VCD (with a GTKWave save file), Parquet."""

from __future__ import annotations

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

__all__ = ["CHUNK_ROWS", "FORMATS", "export_csv", "export_parquet", "export_vcd"]

FORMATS = ("csv", "vcd", "parquet")
#: Rows converted at a time (bounds memory, paces the progress bar).
CHUNK_ROWS = 65536

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


def export_csv(
    tr: Trace,
    signals: list[Signal],
    out: str,
    sl: slice = slice(None),
    progress: Progress | None = None,
) -> int:
    """Writes a header row, then one row per sampled cycle: ``cycle``, ``t`` (seconds from
    the first row), and one column per signal by name; BOOL as 0/1, TIME in
    milliseconds. Returns the rows written."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]

    rows = _rows(tr, sl)
    names = ["cycle", "t"] + [s.name for s in signals]
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(names)
    with _open_out(out, "wb") as f:
        f.write(head.getvalue().encode())
        cycle, t_ns = tr.cycle, tr.t_ns
        cols = [tr[s.name] for s in signals]
        t0 = np.uint64(tr.t0_ns)
        writer = None
        for lo in range(rows.start, rows.stop, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, rows.stop)
            arrays = [
                pa.array(cycle[lo:hi]),
                pa.array((t_ns[lo:hi] - t0).astype(np.float64) / 1e9),
            ]
            for s, c in zip(signals, cols):
                v = c[lo:hi]
                if s.is_bool:
                    v = v.astype(np.uint8)
                elif s.is_time:
                    v = v.astype(np.float64) / 1e6
                arrays.append(pa.array(v))
            table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
            if writer is None:
                opts = pacsv.WriteOptions(include_header=False)
                writer = pacsv.CSVWriter(f, table.schema, write_options=opts)
            writer.write_table(table)
            if progress:
                progress(hi - rows.start, len(rows))
        if writer is not None:
            writer.close()
    return len(rows)


def export_parquet(
    tr: Trace,
    signals: list[Signal],
    out: str,
    sl: slice = slice(None),
    progress: Progress | None = None,
) -> int:
    """Writes a Parquet file: ``cycle`` (uint64), ``t`` (float64 seconds from the first
    row), one column per signal in its own type (BOOL as bool, TIME as int64 ns; field
    metadata gives the IEC type, unit and address); the trace header is in the schema
    metadata under ``softplc.trace.header``."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    rows = _rows(tr, sl)
    fields = [
        pa.field("cycle", pa.uint64()),
        pa.field("t", pa.float64(), metadata={"unit": "s"}),
    ]
    for s in signals:
        meta = {"iec_type": s.type, "unit": "ns" if s.is_time else s.unit}
        if s.address:
            meta["address"] = s.address
        fields.append(pa.field(s.name, pa.from_numpy_dtype(np.dtype(s.dtype)), metadata=meta))
    schema = pa.schema(
        fields, metadata={"softplc.trace.header": json.dumps(tr.header, default=str)}
    )
    cycle, t_ns = tr.cycle, tr.t_ns
    cols = [tr[s.name] for s in signals]
    t0 = np.uint64(tr.t0_ns)
    # Dictionary pages pay off for switches and small counters, not for measurements
    # (every float distinct): they would make the file larger and the export slower.
    small = ("BOOL", "SINT", "INT", "DINT", "USINT", "UINT", "UDINT")
    dictionary = [s.name for s in signals if s.type in small]
    try:
        writer = pq.ParquetWriter(out, schema, use_dictionary=dictionary)
    except OSError as e:
        raise TraceError(f"cannot write {out}: {e}") from None
    with writer:
        for lo in range(rows.start, max(rows.stop, rows.start + 1), CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, rows.stop)
            arrays = [
                pa.array(cycle[lo:hi]),
                pa.array((t_ns[lo:hi] - t0).astype(np.float64) / 1e9),
            ] + [pa.array(c[lo:hi]) for c in cols]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            if progress:
                progress(hi - rows.start, len(rows))
    return len(rows)


_UNSAFE = re.compile(r"[^A-Za-z0-9_$]")


def _vcd_names(signals: list[Signal]) -> list[tuple[tuple[str, ...], str]]:
    """(scope path, variable name) for each signal: the name split at dots, each part
    made safe for VCD readers (anything but letters, digits, ``_`` and ``$`` becomes
    ``_``), clashes resolved with a suffix."""
    out: list[tuple[tuple[str, ...], str]] = []
    used: set[tuple[tuple[str, ...], str]] = set()
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


def export_vcd(
    tr: Trace,
    signals: list[Signal],
    out: str,
    sl: slice = slice(None),
    progress: Progress | None = None,
) -> tuple[int, str]:
    """Writes a Value Change Dump (time unit 1 ns, times from the first row) and a
    GTKWave save file beside it (same name, ``.gtkw``) showing every signal. BOOL are
    1-bit wires, integers and TIME (ns) integer vectors, REAL/LREAL reals. Returns the
    number of value changes and the save file's path."""
    from vcd import VCDWriter
    from vcd.gtkw import GTKWFlag, GTKWSave

    rows = _rows(tr, sl)
    names = _vcd_names(signals)
    t_rel = (tr.t_ns[rows.start : rows.stop] - np.uint64(tr.t0_ns)).astype(np.int64)
    cols = [tr[s.name][rows.start : rows.stop] for s in signals]
    # Every (row, signal) where the value changes, in time order.
    idx_rows, idx_sig = [], []
    for k, c in enumerate(cols):
        r = np.flatnonzero(changes_mask(c))
        idx_rows.append(r)
        idx_sig.append(np.full(len(r), k, dtype=np.int32))
    all_rows = np.concatenate(idx_rows) if idx_rows else np.zeros(0, np.int64)
    all_sig = np.concatenate(idx_sig) if idx_sig else np.zeros(0, np.int32)
    order = np.argsort(all_rows, kind="stable")
    all_rows, all_sig = all_rows[order], all_sig[order]
    total = len(all_rows)
    f = _open_out(out, "w")
    with f:
        w = VCDWriter(
            f,
            timescale="1 ns",
            date="",
            comment=f"softplc trace {os.path.basename(tr.path)}",
            version="softplc",
        )
        vars_ = []
        for s, (scope, var) in zip(signals, names):
            if s.is_bool:
                vars_.append(w.register_var(".".join(scope), var, "wire", size=1))
            elif s.is_float:
                vars_.append(w.register_var(".".join(scope), var, "real"))
            else:
                bits = np.dtype(s.dtype).itemsize * 8
                vars_.append(w.register_var(".".join(scope), var, "integer", size=bits))
        pylists = [c.tolist() for c in cols]
        floats = [s.is_float for s in signals]
        bools = [s.is_bool for s in signals]
        step = max(1, total // 200)
        for n, (r, k) in enumerate(zip(all_rows.tolist(), all_sig.tolist())):
            v = pylists[k][r]
            if bools[k]:
                v = int(v)
            elif floats[k]:
                v = float(v)
            w.change(vars_[k], int(t_rel[r]), v)
            if progress and n % step == 0:
                progress(n, total)
        w.close(int(t_rel[-1]) if len(t_rel) else 0)
    if progress:
        progress(total, total)
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
        for s, (scope, var) in zip(signals, names):
            full = ".".join((*scope, var))
            if s.is_bool:
                save.trace(full, datafmt="bin")
            elif s.is_float:
                save.trace(full, datafmt="real", extraflags=GTKWFlag.analog_step)
            elif s.type in ("SINT", "INT", "DINT", "LINT", "TIME"):
                save.trace(full, datafmt="signed")
            else:
                save.trace(full, datafmt="dec")
    return total, gtkw
