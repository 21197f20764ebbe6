"""What the trace viewer computes: summaries, statistics, differences, downsampling."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from softplc.trace._errors import TraceError
from softplc.trace._reader import Signal, Trace, split_patterns

__all__ = [
    "MAX_BINS",
    "TIMING_FIELDS",
    "changes_mask",
    "events",
    "histogram",
    "info",
    "json_value",
    "minmax_indices",
    "signal_stats",
    "stats",
    "task_cycles",
    "text_value",
    "timed_tasks",
]

#: Most bins of a histogram (each is a number in the output).
MAX_BINS = 100_000

#: The timing signals of a task ``T``: ``task:T.<field>``.
TIMING_FIELDS = ("scheduled_ns", "start_ns", "exec_time", "overrun")


def json_value(sig: Signal, v: Any) -> Any:
    """A value as JSON: BOOL true/false, numbers as numbers (TIME in ns), non-finite
    floats as the strings ``nan``, ``inf``, ``-inf``; an enumeration's value as its
    name; a STRING's text."""
    if sig.is_string:
        return str(v)
    if sig.labels and not sig.is_bool and not sig.is_float:
        return sig.labels.get(int(v), int(v))
    if sig.is_bool:
        return bool(v)
    if sig.is_float:
        f = float(v)
        if math.isfinite(f):
            return f
        return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")
    return int(v)


def _fmt_ns(v: int) -> str:
    a = abs(v)
    sign = "-" if v < 0 else ""
    for unit, size in (("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)):
        if a >= size:
            return f"{sign}{a / size:g}{unit}"
    return f"{sign}{a}ns"


def text_value(sig: Signal, v: Any) -> str:
    """A value as a person reads it: TRUE/FALSE, T#1.5ms, shortest float form, an
    enumeration's member name, a STRING's text in single quotes (IEC's form)."""
    if sig.is_string:
        return "'" + str(v).replace("'", "$'") + "'"
    if sig.labels and not sig.is_bool and not sig.is_float:
        return sig.labels.get(int(v), str(int(v)))
    if sig.is_bool:
        return "TRUE" if bool(v) else "FALSE"
    if sig.is_time:
        return "T#" + _fmt_ns(int(v))
    if sig.is_float:
        return str(v.item() if sig.type == "LREAL" else np.float32(v))
    return str(int(v))


def changes_mask(a: np.ndarray) -> np.ndarray:
    """True where a value differs from the previous row (row 0: True). Floats compare by
    bit pattern, so NaN equals NaN and -0.0 differs from 0.0."""
    if len(a) == 0:
        return np.zeros(0, dtype=bool)
    bits = a.view(np.dtype(f"u{a.dtype.itemsize}")) if a.dtype.kind in "fb" else a
    out = np.empty(len(a), dtype=bool)
    out[0] = True
    np.not_equal(bits[1:], bits[:-1], out=out[1:])
    return out


def _percentiles(x: np.ndarray) -> dict[str, float] | None:
    if len(x) == 0:
        return None
    with np.errstate(all="ignore"):
        return _percentiles_of(x)


def _percentiles_of(x: np.ndarray) -> dict[str, float]:
    q = np.percentile(x, [50, 90, 99, 99.9])
    return {
        "p50_ns": float(q[0]),
        "p90_ns": float(q[1]),
        "p99_ns": float(q[2]),
        "p999_ns": float(q[3]),
        "max_ns": float(x.max()),
        "mean_ns": float(x.mean()),
        "count": len(x),
    }


def task_cycles(
    tr: Trace, task: str, sl: slice = slice(None)
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(scheduled, start, exec, overrun) of the distinct cycles of ``task`` seen in the
    rows ``sl``. For the trace task every row is one of its cycles. Another task's
    fields in a row repeat its last cycle, so a cycle is kept once, in the first row
    showing it (a cycle already shown by the row before the window is not in it); rows
    taken before the recorder saw any cycle of the task are left out
    (format 1.1 marks them with exec_time -1; in 1.0 files they are all zeros, which a
    real cycle at engine time 0 cannot be told from). ``overrun`` is per row (sticky
    since the previous row), not per cycle.

    Example:
        >>> import os, tempfile, softplc.trace as st
        >>> p = os.path.join(tempfile.mkdtemp(), "c.trace")
        >>> _ = st.record_arrays(p, {"x": ("INT", range(5))})
        >>> [len(a) for a in task_cycles(st.load(p), "main")]
        [5, 5, 5, 5]
    """
    lo, hi, _ = sl.indices(tr.rows)
    hi = max(lo, hi)
    over = tr.read(f"task:{task}.overrun", slice(lo, hi))
    if task == tr.header.get("trace_task"):
        rows = slice(lo, hi)
        return (
            tr.read(f"task:{task}.scheduled_ns", rows),
            tr.read(f"task:{task}.start_ns", rows),
            tr.read(f"task:{task}.exec_time", rows),
            over,
        )
    # One row more in front: a cycle the row before the window shows is not new in it.
    first = max(lo - 1, 0)
    rows = slice(first, hi)
    sched = tr.read(f"task:{task}.scheduled_ns", rows)
    start = tr.read(f"task:{task}.start_ns", rows)
    exe = tr.read(f"task:{task}.exec_time", rows)
    if tr.version >= (1, 1):
        not_seen = exe < 0
    else:
        not_seen = (sched == 0) & (start == 0) & (exe == 0)
    # A new cycle shows as a new scheduled time, or as the first row after "not seen"
    # (a cycle scheduled at 0 has the same scheduled time as the marker rows).
    new = changes_mask(sched) | changes_mask(not_seen.view(np.uint8))
    keep = new & ~not_seen
    keep[: lo - first] = False
    return sched[keep], start[keep], exe[keep], over


def _utc_iso(unix_ns: int) -> str:
    """An int64 nanosecond count since 1970 as ISO 8601 UTC (always in datetime's range:
    int64 nanoseconds span 1677 to 2262)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return (epoch + timedelta(microseconds=int(unix_ns) // 1000)).isoformat()


def timed_tasks(tr: Trace) -> list[str]:
    """The tasks of the header whose four timing signals the trace holds."""
    names = [str(t.get("name")) for t in tr.header.get("tasks", [])]
    return [n for n in names if all(f"task:{n}.{f}" in tr._by_name for f in TIMING_FIELDS)]


def info(tr: Trace) -> dict[str, Any]:
    """Everything ``softplc trace info`` shows, as plain data."""
    h = tr.header
    created = h.get("created_unix_ns")
    created_iso = _utc_iso(created) if created else None
    blocks = tr.blocks
    tasks = [{"name": t.get("name"), "period_ns": t.get("period_ns")} for t in h.get("tasks", [])]
    timing: dict[str, Any] = {}
    for name in timed_tasks(tr):
        sched, start, exe, over = task_cycles(tr, name)
        lat = start.astype(np.int64) - sched.astype(np.int64)
        timing[name] = {
            "cycles_seen": len(sched),
            "wake_latency": _percentiles(lat),
            "exec_time": _percentiles(exe.astype(np.int64)),
            "overrun_rows": int(np.count_nonzero(over)),
        }
    ref = tr.clock_ref
    first_row_utc = None
    if ref is not None and blocks:
        first_row_utc = _utc_iso(int(tr.unix_ns(np.array([tr.t0_ns], dtype=np.uint64))[0]))
    kinds = Counter(str(e.get("kind")) for e in tr.events)
    faults = [str(e.get("text", "")) for e in tr.events if e.get("kind") == "fault"]
    v = h.get("version") or [0, 0]
    return {
        "file": tr.path,
        "size_bytes": tr._layout.size,
        "format_version": f"{v[0]}.{v[1]}",
        "complete": tr.complete,
        "warnings": list(tr.warnings),
        "created": created_iso,
        "engine_state": tr.engine_state,
        "clock_ref": ref,
        "first_row_utc": first_row_utc,
        "engine_version": h.get("engine_version"),
        "program": dict(h.get("program") or {}),
        "meta": dict(h.get("meta") or {}),
        "mode": tr.mode,
        "trigger": h.get("trigger"),
        "decimate": h.get("decimate"),
        "trace_task": h.get("trace_task"),
        "tasks": tasks,
        "cycle_period_ns": tr.cycle_period_ns,
        "sample_period_ns": tr.sample_period_ns,
        "rows": tr.rows,
        "blocks": len(blocks),
        "first_cycle": blocks[0].first_cycle if blocks else None,
        "last_cycle": blocks[-1].last_cycle if blocks else None,
        "duration_ns": tr.duration_ns,
        "signals": [s.as_dict() for s in tr.signals],
        "timing": timing,
        "overrun_events": kinds.get("overrun", 0),
        "dropped_blocks": tr.dropped_blocks,
        "dropped_rows": tr.dropped_rows,
        "gaps": [
            {k: g.get(k) for k in ("blocks", "rows", "first_cycle", "last_cycle", "t_first_ns")}
            for g in tr.gaps
        ],
        "events": len(tr.events),
        "events_lost": tr.events_lost,
        "events_by_kind": dict(sorted(kinds.items())),
        "faults": faults,
        "captures": len(tr.triggers),
        "incomplete_captures": tr.incomplete_captures,
        "triggers": [
            {k: t.get(k) for k in ("capture", "cycle", "t_ns", "pre_rows", "forced", "complete")}
            for t in tr.triggers
        ],
    }


def events(tr: Trace) -> list[dict[str, Any]]:
    """The engine events of a trace in time order, each with ``t`` (seconds from the
    first row; negative before it), ``t_ns`` (engine clock), ``kind``, ``task`` (its
    name, or None), ``a``, ``b`` and ``text``.

    Example:
        >>> import os, tempfile, softplc.trace as st
        >>> p = os.path.join(tempfile.mkdtemp(), "e.trace")
        >>> _ = st.record_arrays(p, {"x": ("INT", [0, 1, 2])},
        ...     events=[{"t_ns": 1_000_000, "kind": "fault", "task": 0, "text": "boom"}])
        >>> [(e["t"], e["kind"], e["task"], e["text"]) for e in events(st.load(p))]
        [(0.001, 'fault', 'main', 'boom')]
    """
    names = [str(t.get("name")) for t in tr.header.get("tasks", [])]
    t0 = tr.t0_ns
    out = []
    for e in tr.events:
        t_ns = int(e.get("t_ns", 0))
        task = int(e.get("task", -1))
        out.append(
            {
                "t": (t_ns - t0) / 1e9,
                "t_ns": t_ns,
                "kind": str(e.get("kind")),
                "task": names[task] if 0 <= task < len(names) else None,
                "a": int(e.get("a", 0)),
                "b": int(e.get("b", 0)),
                "text": str(e.get("text", "")),
            }
        )
    return out


def histogram(x: np.ndarray, bins: int) -> dict[str, Any]:
    """Equal-width histogram: ``edges`` (bins + 1) and ``counts``."""
    if len(x) == 0:
        return {"edges": [], "counts": []}
    lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        return {"edges": [lo, hi], "counts": [len(x)]}
    with np.errstate(all="ignore"):
        counts, edges = np.histogram(x.astype(np.float64), bins=bins, range=(lo, hi))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def stats(
    tr: Trace,
    *,
    signals: str | Iterable[str | Signal] | None = None,
    rows: slice = slice(None),
    bins: int = 10,
) -> dict[str, Any]:
    """Statistics of a trace over the rows ``rows``, as ``softplc trace stats`` shows
    them.

    Args:
        tr: a loaded trace.
        signals: names or globs (``"tank.*"``) or :class:`Signal` objects; by default
            every variable (timing signals only when named: they are summarised by the
            histograms).
        rows: a row slice, such as :meth:`Trace.window` gives.
        bins: bins of each execution-time histogram.

    Returns:
        ``{"file", "signals", "exec_time_histogram_ns", "exec_time_cycles"}``:
        ``signals`` holds per signal ``name``, ``type``, ``unit``, ``rows``, and when
        there are rows ``min``, ``max``, ``changes`` (value changes), ``mean`` and
        ``std`` (numbers; for REAL/LREAL ``nan`` counts NaN rows, left out of the
        others), or for BOOL ``true_fraction``, ``rising`` and ``falling``. Per task
        with timing signals, ``exec_time_histogram_ns`` has ``edges`` and ``counts``
        of its execution times over the distinct cycles seen in the rows, and
        ``exec_time_cycles`` the number of those cycles.

    Raises:
        TraceError: a name or pattern that matches nothing, or ``bins`` below 1.

    Example:
        >>> import os, tempfile, softplc.trace as st
        >>> p = os.path.join(tempfile.mkdtemp(), "s.trace")
        >>> _ = st.record_arrays(p, {"on": ("BOOL", [0, 1, 1, 0, 1])}, exec_ns=[5] * 5)
        >>> s = st.stats(st.load(p))
        >>> s["signals"][0]["rising"], s["exec_time_cycles"]
        (2, {'main': 5})
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise TraceError(f"bins must be from 1 to {MAX_BINS} (got {bins!r})")
    if signals is None or isinstance(signals, str):
        sigs = tr.select(split_patterns(signals), timing=False)
    else:
        sigs = []
        for item in signals:
            if isinstance(item, Signal):
                sigs.append(item)
            elif pats := split_patterns(item):
                sigs.extend(tr.select(pats))
    hist: dict[str, Any] = {}
    cycles: dict[str, int] = {}
    for name in timed_tasks(tr):
        # One count per cycle of the task seen in the rows, not per row: a slow task's
        # cycle shows in many rows, a task without rows yet in none.
        _, _, exe, _ = task_cycles(tr, name, rows)
        hist[name] = histogram(exe.astype(np.int64), bins)
        cycles[name] = len(exe)
    return {
        "file": tr.path,
        "signals": [signal_stats(tr, s, rows) for s in sigs],
        "exec_time_histogram_ns": hist,
        "exec_time_cycles": cycles,
    }


def signal_stats(tr: Trace, sig: Signal, sl: slice = slice(None)) -> dict[str, Any]:
    """min, max, mean, standard deviation and value changes of one signal; for BOOL
    also rising and falling edges and the share of rows TRUE."""
    # Recorded values may be anything their type holds: sums that overflow to inf are
    # results, not errors to warn about.
    with np.errstate(all="ignore"):
        return _signal_stats(tr, sig, sl)


def _signal_stats(tr: Trace, sig: Signal, sl: slice) -> dict[str, Any]:
    a = tr.read(sig, sl)
    out: dict[str, Any] = {"name": sig.name, "type": sig.type, "unit": sig.unit, "rows": len(a)}
    if len(a) == 0:
        return out
    ch = int(np.count_nonzero(changes_mask(a))) - 1
    out["changes"] = ch
    if sig.is_string:
        # Text: how often it changes, and its lengths.
        lengths = np.char.str_len(a)
        out.update(min=None, max=None, mean=None, std=None, max_length=int(lengths.max()))
        return out
    if sig.is_bool:
        b = a.astype(np.int8)
        d = np.diff(b)
        out.update(
            min=bool(a.min()),
            max=bool(a.max()),
            true_fraction=float(b.mean()),
            rising=int(np.count_nonzero(d == 1)),
            falling=int(np.count_nonzero(d == -1)),
        )
        return out
    f = a.astype(np.float64)
    finite = f[np.isfinite(f)]
    if sig.is_float:
        out["nan"] = int(np.count_nonzero(np.isnan(f)))
    if len(finite) == 0:
        out.update(min=None, max=None, mean=None, std=None)
        return out
    out.update(
        min=json_value(sig, a[np.isfinite(f)].min()),
        max=json_value(sig, a[np.isfinite(f)].max()),
        mean=float(finite.mean()),
        std=float(finite.std()),
    )
    return out


def minmax_indices(y: np.ndarray, buckets: int) -> np.ndarray:
    """Row indices that keep, for each of ``buckets`` equal runs of rows, the minimum and
    the maximum (so a one-row spike survives), plus the first and last row.

    Example:
        >>> import numpy as np
        >>> y = np.zeros(1000); y[517] = 5.0
        >>> idx = minmax_indices(y, 10)
        >>> 517 in idx, len(idx) <= 22
        (True, True)
    """
    n = len(y)
    if n <= 2 * buckets or buckets < 1:
        return np.arange(n)
    k = -(-n // buckets)
    m = n // k * k
    yy = y[:m].reshape(-1, k)
    if yy.dtype.kind == "f":
        # NaN would win argmin/argmax everywhere; it is kept only where a bucket is all NaN.
        safe = np.where(np.isnan(yy), np.inf, yy)
        lo = safe.argmin(axis=1)
        hi = np.where(np.isnan(yy), -np.inf, yy).argmax(axis=1)
    else:
        lo = yy.argmin(axis=1)
        hi = yy.argmax(axis=1)
    base = np.arange(0, m, k)
    parts = [base + lo, base + hi, np.array([0, n - 1])]
    if m < n:
        tail = y[m:]
        parts.append(np.array([m + int(np.argmin(tail)), m + int(np.argmax(tail))]))
    return np.unique(np.concatenate(parts))
