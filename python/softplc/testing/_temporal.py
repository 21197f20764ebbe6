"""Temporal assertions over a recorded run, evaluated on whole trace columns with NumPy.

Each assertion takes the run first: a :class:`~softplc.testing.Bench` (its recording so
far), a :class:`~softplc.testing.Recording`, a loaded :class:`softplc.trace.Trace`, or
the path of a trace file. Conditions are strings over signal names in the language of
:mod:`softplc.testing._expr` (``"pump and not alarm"``, ``"rose(start)"``,
``"30 < level < 70"``), or callables that take the columns (a mapping from names to
arrays) and return one truth value per row.

Time is the engine time of the rows (the scheduled start of each recorded cycle);
``within`` and the other durations are ``"2s"``, int ns, or ``timedelta``. ``after`` and
``before`` restrict an assertion to a stretch of the run, counted from its first row.

A failure raises :class:`TemporalAssertionError`, an ``AssertionError`` that names the
assertion, the first violating cycle and time, and shows the signals involved in a
small table around that row; a bench's traces are then kept, and their paths are in
the message.

Semantics, on rows ``i`` with times ``t[i]`` (discrete time, as in signal temporal
logic over sampled signals):

* ``always(p)``: ``p[i]`` at every row. ``never(p)`` is ``always(not p)``.
* ``eventually(p, within=W)``: some row ``i`` with ``t[i] - t0 <= W`` has ``p[i]``
  (``t0``: the first row considered). Without ``within``: any row. A recording that
  ends before ``W`` without ``p`` fails (the test did not run long enough to tell).
* ``responds(q, r, within=W)``: every row ``i`` with ``q[i]`` is followed by a row ``j
  >= i`` with ``r[j]`` and ``t[j] - t[i] <= W``. A trigger whose deadline is after the
  end of the recording is not judged.
* ``stable_for(x, D)``: after each change of ``x`` (``x[i] != x[i-1]``; with
  ``value=v`` only changes to ``v``), ``x`` does not change again for less than ``D``.
* ``mutually_exclusive(p, q, ...)``: at most one holds at any row.
* ``rose(p)`` / ``fell(p)``: the rows where ``p`` becomes true / false. Before the first
  row of a recording ``p`` counts as false (the engine had just started, as R_TRIG
  sees it at the first scan), so ``rose`` includes the first row when ``p`` holds there.
  ``stable_for`` only counts changes between rows.

Example:
    >>> import os, tempfile, softplc.trace as st
    >>> p = os.path.join(tempfile.mkdtemp(), "run.trace")
    >>> _ = st.record_arrays(p, {"start": ("BOOL", [0, 1, 0, 0, 0, 0]),
    ...                          "pump": ("BOOL", [0, 0, 0, 1, 1, 1])}, timing=False)
    >>> responds(p, "rose(start)", "pump", within="2ms")
    >>> always(p, "pump", after="3ms")
    >>> rose(p, "pump").cycles
    [3]
    >>> responds(p, "rose(start)", "pump", within="1ms")
    Traceback (most recent call last):
    ...
    softplc...TemporalAssertionError: responds(...) failed at cycle 1 (t = 0.001 s): ...
         cycle  t [s]  start  pump
         0      0.000  0      0
      >  1      0.001  1      0
         2      0.002  0      0
         3      0.003  0      1
         4      0.004  0      1
         5      0.005  0      1
    trace: ...
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

from softplc import trace as st
from softplc.engine import Duration
from softplc.errors import ConfigError
from softplc.testing._bench import Bench
from softplc.testing._errors import TemporalAssertionError
from softplc.testing._expr import Expr, evaluate_columns
from softplc.testing._recording import Recording
from softplc.timefmt import format_duration, parse_duration

__all__ = [
    "Columns",
    "Edges",
    "always",
    "eventually",
    "fell",
    "mutually_exclusive",
    "never",
    "responds",
    "rose",
    "stable_for",
]

Run = Bench | Recording | st.Trace | str | os.PathLike[str]
Condition = str | Callable[["Columns"], Any]

#: Rows shown on each side of a violation.
WINDOW = 5


class Columns(Mapping[str, np.ndarray]):
    """The columns of a recording by name, for condition callables; remembers which
    signals the callable read (they are shown when the assertion fails)."""

    def __init__(self, rec: Recording) -> None:
        self._rec = rec
        self.read: list[str] = []

    def __getitem__(self, name: str) -> np.ndarray:
        full = self._rec.resolve(name)
        if full not in self.read:
            self.read.append(full)
        return self._rec.column(full)

    def __iter__(self) -> Iterator[str]:
        return iter(self._rec.names)

    def __len__(self) -> int:
        return len(self._rec.names)

    @property
    def t(self) -> np.ndarray:
        """Seconds from the first row."""
        return self._rec.t

    @property
    def cycle(self) -> np.ndarray:
        """Cycle number of each row."""
        return self._rec.cycle


@dataclass
class _Subject:
    """What an assertion runs on: the recording, the bench it came from (if any) and
    the rows considered."""

    rec: Recording
    bench: Bench | None
    lo: int
    hi: int
    t_ns: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.t_ns = self.rec.t_ns


def _subject(run: Run, after: Duration | None, before: Duration | None) -> _Subject:
    bench = None
    if isinstance(run, Bench):
        bench = run
        rec = run.recorded()
    elif isinstance(run, Recording):
        rec = run
    elif isinstance(run, st.Trace):
        rec = Recording([run])
    elif isinstance(run, (str, os.PathLike)):
        rec = Recording.load(run)
    else:
        raise ConfigError(
            f"an assertion runs on a Bench, a Recording, a Trace or a trace file (got "
            f"{type(run).__name__})"
        )
    t = rec.t_ns
    n = len(t)
    t0 = int(t[0]) if n else 0
    lo, hi = 0, n
    if after is not None:
        lo = int(np.searchsorted(t, t0 + parse_duration(after, what="after"), "left"))
    if before is not None:
        hi = int(np.searchsorted(t, t0 + parse_duration(before, what="before"), "right"))
    if hi <= lo:
        raise ConfigError(
            f"no rows to check: the recording has {n} rows"
            + (f" from 0 to {(int(t[-1]) - t0) / 1e9:.3f} s" if n else "")
            + (f", after={after!r}" if after is not None else "")
            + (f", before={before!r}" if before is not None else "")
        )
    return _Subject(rec, bench, lo, hi)


@dataclass
class _Evaluated:
    text: str
    values: np.ndarray  # over all rows of the recording
    names: list[str]


def _evaluate(s: _Subject, cond: Condition) -> _Evaluated:
    if isinstance(cond, str):
        expr = Expr.parse(cond)
        full = {n: s.rec.resolve(n) for n in expr.names}
        cols = {n: s.rec.column(f) for n, f in full.items()}
        return _Evaluated(
            expr.text, evaluate_columns(expr, cols), list(dict.fromkeys(full.values()))
        )
    if callable(cond):
        columns = Columns(s.rec)
        values = np.asarray(cond(columns))
        if values.shape != (s.rec.rows,):
            raise ConfigError(
                f"condition {getattr(cond, '__name__', cond)!r} returned shape {values.shape}; "
                f"expected one value per row ({s.rec.rows},)"
            )
        return _Evaluated(getattr(cond, "__name__", repr(cond)), values, columns.read)
    raise ConfigError(
        f"a condition is a string such as 'pump and not alarm', or a callable taking the "
        f"columns (got {cond!r})"
    )


def _truth(v: np.ndarray) -> np.ndarray:
    return v if v.dtype == np.bool_ else v != 0


def _fmt(v: Any, type_name: str | None) -> str:
    if type_name == "BOOL" or isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (float, np.floating)):
        text = f"{float(v):.6g}"
        # 45.0 shows as 45.0, not as the integer 45.
        return text if any(c in text for c in ".ein") else text + ".0"
    return str(v)


def _table(s: _Subject, row: int, names: list[str]) -> str:
    rec = s.rec
    lo, hi = max(row - WINDOW, 0), min(row + WINDOW + 1, rec.rows)
    t0 = int(s.t_ns[0])
    header = ["", "cycle", "t [s]", *names]
    rows = []
    for i in range(lo, hi):
        cells = [
            ">" if i == row else "",
            str(int(rec.cycle[i])),
            f"{(int(s.t_ns[i]) - t0) / 1e9:.3f}",
        ]
        cells += [_fmt(rec.column(n)[i], rec.type_of(n)) for n in names]
        rows.append(cells)
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    lines = []
    for r in [header, *rows]:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _fail(s: _Subject, assertion: str, row: int, names: list[str], why: str) -> NoReturn:
    __tracebackhide__ = True  # pytest shows the caller's line
    traces = s.bench.keep_traces() if s.bench is not None else s.rec.paths
    t_ns = int(s.t_ns[row])
    t_rel = t_ns - int(s.t_ns[0])
    cycle = int(s.rec.cycle[row])
    names = list(dict.fromkeys(names))
    msg = (
        f"{assertion} failed at cycle {cycle} (t = {t_rel / 1e9:.3f} s): {why}\n"
        f"{_table(s, row, names)}\ntrace: {', '.join(traces)}"
    )
    raise TemporalAssertionError(
        msg, assertion=assertion, row=row, cycle=cycle, t_ns=t_ns, signals=names, traces=traces
    )


def _first(mask: np.ndarray, lo: int) -> int:
    """Index (in the whole recording) of the first True of ``mask`` (a slice from
    ``lo``), or -1."""
    k = int(np.argmax(mask)) if len(mask) else 0
    return lo + k if len(mask) and mask[k] else -1


def _shown(value: Duration) -> str:
    """A duration as the test wrote it (a string), else in compact form."""
    return value if isinstance(value, str) else format_duration(parse_duration(value))


def _window_args(after: Duration | None, before: Duration | None) -> str:
    out = ""
    if after is not None:
        out += f", after={_shown(after)}"
    if before is not None:
        out += f", before={_shown(before)}"
    return out


def _dur(value: Duration, what: str) -> tuple[int, str]:
    d = parse_duration(value, what=what)
    if d < 0:
        raise ConfigError(f"{what} must not be negative (got {value!r})")
    return d, value if isinstance(value, str) else format_duration(d)


def always(
    run: Run, condition: Condition, *, after: Duration | None = None, before: Duration | None = None
) -> None:
    """Asserts that ``condition`` holds at every row.

    Example:
        >>> import os, tempfile, softplc.trace as st
        >>> p = os.path.join(tempfile.mkdtemp(), "a.trace")
        >>> _ = st.record_arrays(p, {"level": ("REAL", [50, 52, 61, 55])}, timing=False)
        >>> always(p, "40 < level < 60", before="1ms")
    """
    __tracebackhide__ = True  # pytest shows the caller's line
    s = _subject(run, after, before)
    ev = _evaluate(s, condition)
    bad = _first(~_truth(ev.values[s.lo : s.hi]), s.lo)
    if bad >= 0:
        _fail(
            s,
            f"always({ev.text}{_window_args(after, before)})",
            bad,
            ev.names,
            "the condition is false",
        )


def never(
    run: Run, condition: Condition, *, after: Duration | None = None, before: Duration | None = None
) -> None:
    """Asserts that ``condition`` holds at no row."""
    __tracebackhide__ = True  # pytest shows the caller's line
    s = _subject(run, after, before)
    ev = _evaluate(s, condition)
    bad = _first(_truth(ev.values[s.lo : s.hi]), s.lo)
    if bad >= 0:
        _fail(
            s,
            f"never({ev.text}{_window_args(after, before)})",
            bad,
            ev.names,
            "the condition is true",
        )


def eventually(
    run: Run,
    condition: Condition,
    *,
    within: Duration | None = None,
    after: Duration | None = None,
    before: Duration | None = None,
) -> int:
    """Asserts that ``condition`` holds at some row, within ``within`` of the first
    row considered; returns the time (ns from that row) of the first row where it
    holds."""
    __tracebackhide__ = True  # pytest shows the caller's line
    s = _subject(run, after, before)
    ev = _evaluate(s, condition)
    text = ev.text
    t = s.t_ns
    hi = s.hi
    if within is not None:
        w, wtext = _dur(within, "within")
        text += f", within={wtext}"
        hi = min(hi, int(np.searchsorted(t, int(t[s.lo]) + w, "right")))
    assertion = f"eventually({text}{_window_args(after, before)})"
    hit = _first(_truth(ev.values[s.lo : hi]), s.lo)
    if hit >= 0:
        return int(t[hit]) - int(t[s.lo])
    last = hi - 1
    if within is not None and int(t[last]) - int(t[s.lo]) < w:
        ends = format_duration(int(t[last]) - int(t[s.lo]))
        why = (
            f"the condition never held, and the recording ends {ends} after the start, "
            "before the deadline"
        )
    else:
        why = "the condition never held" + (" by the deadline" if within is not None else "")
    _fail(s, assertion, last, ev.names, why)


def responds(
    run: Run,
    trigger: Condition,
    response: Condition,
    *,
    within: Duration,
    after: Duration | None = None,
    before: Duration | None = None,
) -> None:
    """Asserts that every row where ``trigger`` holds is followed, within ``within``
    (that row included), by a row where ``response`` holds. Use ``rose(x)`` as the
    trigger to react to edges only. A trigger whose deadline lies past the end of the
    recording is not judged."""
    __tracebackhide__ = True  # pytest shows the caller's line
    s = _subject(run, after, before)
    trig = _evaluate(s, trigger)
    resp = _evaluate(s, response)
    w, wtext = _dur(within, "within")
    t = s.t_ns[s.lo : s.hi]
    q = _truth(trig.values[s.lo : s.hi])
    r = _truth(resp.values[s.lo : s.hi])
    n = len(t)
    # Index of the next row (this one included) where the response holds: n when none.
    idx = np.where(r, np.arange(n), n)
    nxt = np.minimum.accumulate(idx[::-1])[::-1]
    t_next = t[np.minimum(nxt, n - 1)]
    answered = (nxt < n) & (t_next - t <= w)
    decided = t + w <= t[-1]
    bad = _first(q & ~answered & decided, s.lo)
    if bad >= 0:
        _fail(
            s,
            f"responds({trig.text}, {resp.text}, within={wtext}{_window_args(after, before)})",
            bad,
            trig.names + resp.names,
            f"no response within {wtext}",
        )


def stable_for(
    run: Run,
    condition: Condition,
    duration: Duration,
    *,
    value: Any = None,
    after: Duration | None = None,
    before: Duration | None = None,
) -> None:
    """Asserts that after each change (to ``value``, when given) the signal or
    expression keeps its new value for at least ``duration``: no chattering. A change
    near the end of the recording is judged as far as the recording goes."""
    __tracebackhide__ = True  # pytest shows the caller's line
    s = _subject(run, after, before)
    ev = _evaluate(s, condition)
    d, dtext = _dur(duration, "duration")
    v = ev.values[s.lo : s.hi]
    t = s.t_ns[s.lo : s.hi]
    changes = np.flatnonzero(v[1:] != v[:-1]) + 1
    text = f"stable_for({ev.text}, {dtext}" + (f", value={value!r}" if value is not None else "")
    assertion = text + f"{_window_args(after, before)})"
    if len(changes) < 2:
        return
    held = t[changes[1:]] - t[changes[:-1]]
    short = held < d
    if value is not None:
        short &= v[changes[:-1]] == value
    k = _first(short, 0)
    if k >= 0:
        start = changes[k]
        at = (int(t[start]) - int(s.t_ns[0])) / 1e9
        _fail(
            s,
            assertion,
            s.lo + int(changes[k + 1]),
            ev.names,
            f"it changed to {_fmt(v[start], None)} at {at:.3f} s and changed again after "
            f"{format_duration(int(held[k]))} (< {dtext})",
        )


def mutually_exclusive(
    run: Run, *conditions: Condition, after: Duration | None = None, before: Duration | None = None
) -> None:
    """Asserts that at most one of ``conditions`` holds at any row (interlocks: never
    two of star, delta and line; never red and green)."""
    __tracebackhide__ = True  # pytest shows the caller's line
    if len(conditions) < 2:
        raise ConfigError("mutually_exclusive needs at least two conditions")
    s = _subject(run, after, before)
    evs = [_evaluate(s, c) for c in conditions]
    count = np.zeros(s.hi - s.lo, dtype=np.int64)
    for ev in evs:
        count += _truth(ev.values[s.lo : s.hi])
    bad = _first(count > 1, s.lo)
    if bad >= 0:
        both = [ev.text for ev in evs if _truth(ev.values[bad : bad + 1])[0]]
        _fail(
            s,
            f"mutually_exclusive({', '.join(ev.text for ev in evs)}{_window_args(after, before)})",
            bad,
            [n for ev in evs for n in ev.names],
            f"{' and '.join(both)} hold together",
        )


@dataclass(frozen=True)
class Edges:
    """Rows where a condition became true (:func:`rose`) or false (:func:`fell`).

    Attributes:
        cycles: their cycle numbers.
        t_ns: their times, ns from the first row of the recording.
    """

    cycles: list[int]
    t_ns: list[int]

    @property
    def times(self) -> list[float]:
        """Their times in seconds from the first row."""
        return [t / 1e9 for t in self.t_ns]

    def __len__(self) -> int:
        return len(self.cycles)

    def __iter__(self) -> Iterator[float]:
        return iter(self.times)

    def __bool__(self) -> bool:
        return bool(self.cycles)


def _edges(
    kind: str,
    run: Run,
    condition: Condition,
    count: int | None,
    after: Duration | None,
    before: Duration | None,
) -> Edges:
    __tracebackhide__ = True  # pytest shows the caller's line
    s = _subject(run, after, before)
    ev = _evaluate(s, condition)
    full = _truth(ev.values)
    prev = np.concatenate([[False], full[:-1]])  # FALSE before the first row
    edge = full & ~prev if kind == "rose" else ~full & prev
    rows = np.flatnonzero(edge[s.lo : s.hi]) + s.lo
    t0 = int(s.t_ns[0])
    out = Edges([int(c) for c in s.rec.cycle[rows]], [int(s.t_ns[r]) - t0 for r in rows])
    if count is not None and len(out) != count:
        shown = ", ".join(f"{t:.3f} s" for t in out.times[:10]) + (", ..." if len(out) > 10 else "")
        row = int(rows[count]) if len(rows) > count else s.hi - 1
        _fail(
            s,
            f"{kind}({ev.text}, count={count}{_window_args(after, before)})",
            row,
            ev.names,
            f"{len(out)} edges, expected {count}" + (f" (at {shown})" if len(out) else ""),
        )
    return out


def rose(
    run: Run,
    condition: Condition,
    *,
    count: int | None = None,
    after: Duration | None = None,
    before: Duration | None = None,
) -> Edges:
    """The rows where ``condition`` becomes true; with ``count``, asserts how many."""
    __tracebackhide__ = True  # pytest shows the caller's line
    return _edges("rose", run, condition, count, after, before)


def fell(
    run: Run,
    condition: Condition,
    *,
    count: int | None = None,
    after: Duration | None = None,
    before: Duration | None = None,
) -> Edges:
    """The rows where ``condition`` becomes false; with ``count``, asserts how many."""
    __tracebackhide__ = True  # pytest shows the caller's line
    return _edges("fell", run, condition, count, after, before)
