"""Stimulus files: values of inputs and setpoints over time, for
``softplc run PROGRAM.py --virtual --cycles N --stimulus in.csv`` and for test benches
(``bench.play("in.csv")``), which use the same code.

Two forms, told apart by the first column of the header:

**Timed** (written by hand): the first column is ``time``; each row gives the time
(from the start of the stimulus) at which its values take effect, in any duration
form softplc reads (``0ms``, ``1.5s``, ``250us``, IEC ``T#2s``; ``0`` alone is also
accepted). Rows are sparse: an empty cell keeps the value, and a value holds until a
later row changes it. Times must increase from row to row. A row whose cells are all
empty only marks the end of the stimulus::

    time,   start, stop, low_limit
    0ms,    0,     0,    40.0
    500ms,  1,      ,
    600ms,  0,      ,
    T#2s,    ,      ,    30.0
    5s,      ,      ,

A value lands at the first cycle that starts at or after its time.

**Dense** (written by programs): a header of names, then one row per cycle of the
first task: row k sets the values of cycle k (counting from 0). An empty cell keeps
the previous value.

In both forms the columns name inputs or memory variables (setpoints): full engine
names such as ``tank.level``, or a last part that only one variable has. After the
last row the last values hold. Only changes are written (and so logged as write
events): a value equal to the one written before for that variable is not written
again. Values:

* BOOL: ``0``/``1`` or ``true``/``false`` (any case);
* integers: decimal (``-12``); REAL/LREAL: decimal (``3.5``, ``1e-3``), finite in the
  variable's type (``1e39`` is out of range for REAL);
* TIME: a decimal integer of milliseconds (``1500``) or an IEC literal (``T#1s500ms``),
  within the 64-bit nanosecond range of TIME.

Numbers are plain decimal: ``1_000``, ``0x10``, ``inf`` and ``nan`` are errors.
Lines starting with ``#`` are comments. Every error names the file, the row (line
number in the file) and the column.

API::

    stim = load_stimulus("inputs.csv")   # parses; ConfigError on malformed files
    stim.bind(engine)                    # after engine.start(): names and values
    player = stim.player(engine)         # starts now
    player.advance(duration_ns)          # runs the engine, writing each change in time

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "in.csv"
    >>> _ = p.write_text("time,start,level\\n0ms,1,20.5\\n1.5s,0,\\n")
    >>> s = load_stimulus(p)
    >>> s.columns, len(s), s.timed, s.times_ns
    (['start', 'level'], 2, True, [0, 1500000000])
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from softplc._names import NameIndex, NameLookupError
from softplc.errors import ConfigError, UnknownVariable
from softplc.iectypes import INT_BITS, f32, fits
from softplc.timefmt import format_duration, parse_duration

__all__ = [
    "DRIVABLE_AREAS",
    "Player",
    "Schedule",
    "Stimulus",
    "load_stimulus",
    "parse_value",
]

#: The areas a stimulus (or a test bench) may write: inputs, and memory such as
#: setpoints. Outputs are the programs' to write.
DRIVABLE_AREAS = ("input", "memory")

_DECIMAL_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIME_NS = (-(1 << 63), (1 << 63) - 1)  # TIME is a signed 64-bit count of nanoseconds
_TIME_COLUMN = "time"


def parse_member(text: str, labels: dict[int, str]) -> int:
    """Parses one cell for a variable of an enumeration: a member's name or value
    (anything else raises ValueError naming the members)."""
    t = text.strip()
    by_name = {n: v for v, n in labels.items()}
    if t in by_name:
        return by_name[t]
    try:
        v = int(t)
    except ValueError:
        v = None
    if v is None or v not in labels:
        names = ", ".join(labels.values())
        raise ValueError(f"{t!r} is not a member of the enumeration (members: {names})")
    return v


def parse_value(text: str, type_name: str) -> Any:
    """Parses one cell for a variable of ``type_name``; raises ValueError with a
    reason.

    Numbers are plain decimal as the format says: Python's other spellings (``1_000``,
    ``0x10``, ``inf``, ``nan``) are rejected, and so is a value the variable cannot
    hold (an integer out of range, a REAL that would round to infinity, a TIME past
    the 64-bit nanosecond range).

    Example:
        >>> parse_value("true", "BOOL"), parse_value("T#1s", "TIME"), parse_value("-3", "INT")
        (True, 1000000000, -3)
    """
    t = text.strip()
    if type_name == "BOOL":
        low = t.lower()
        if low in ("1", "true"):
            return True
        if low in ("0", "false"):
            return False
        raise ValueError(f"{t!r} is not a BOOL (use 0/1 or true/false)")
    if type_name in ("REAL", "LREAL"):
        if not _DECIMAL_REAL.fullmatch(t):
            raise ValueError(f"{t!r} is not a decimal number (like -12, 3.5 or 1e-3)")
        v = float(t)
        if not math.isfinite(v if type_name == "LREAL" else f32(v)):
            limit = "3.4028235e38" if type_name == "REAL" else "1.7976931348623157e308"
            raise ValueError(f"{t} is out of range for {type_name} (largest magnitude {limit})")
        return v
    if type_name == "TIME":
        if t.upper().startswith(("T#", "TIME#", "LT#", "LTIME#")):
            try:
                v = parse_duration(t)
            except ConfigError as e:
                raise ValueError(str(e)) from None
        elif _DECIMAL_INT.fullmatch(t):
            v = int(t) * 1_000_000
        else:
            raise ValueError(
                f"{t!r} is not a TIME (a decimal integer of milliseconds or an IEC literal "
                "like T#1s500ms)"
            )
        if not _TIME_NS[0] <= v <= _TIME_NS[1]:
            raise ValueError(
                f"{t} is out of range for TIME (at most {_TIME_NS[1] // 1_000_000} ms, "
                "about 292 years)"
            )
        return v
    if type_name in INT_BITS:
        if not _DECIMAL_INT.fullmatch(t):
            raise ValueError(f"{t!r} is not a decimal integer")
        v = int(t, 10)
        if not fits(v, type_name):
            bits, signed = INT_BITS[type_name]
            lo = -(1 << (bits - 1)) if signed else 0
            hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
            raise ValueError(f"{v} is out of range {lo}..{hi}")
        return v
    raise ValueError(f"unknown type {type_name}")


@dataclass(frozen=True)
class Schedule:
    """Writes to make at times: ``events`` are ``(t_ns, {name: value})`` with ``t_ns``
    counted from the start of the schedule, in increasing order; ``end_ns`` is where the
    schedule ends (its last values hold afterwards).

    Stimulus files and Hypothesis timelines both become a schedule, and a
    :class:`Player` plays one on an engine.

    Example:
        >>> Schedule([(0, {"a.x": 1}), (10_000_000, {"a.x": 2})], end_ns=20_000_000).names
        ['a.x']
    """

    events: list[tuple[int, dict[str, Any]]]
    end_ns: int

    def __post_init__(self) -> None:
        last = -1
        for t, _ in self.events:
            if t < 0 or t < last:
                raise ConfigError(f"schedule times must be >= 0 and increasing (got {t} ns)")
            last = t

    @property
    def names(self) -> list[str]:
        """The variables the schedule writes, in order of first write."""
        seen: dict[str, None] = {}
        for _, values in self.events:
            seen.update(dict.fromkeys(values))
        return list(seen)

    @property
    def writes(self) -> int:
        """How many single writes the schedule makes."""
        return sum(len(v) for _, v in self.events)


class Player:
    """Plays a :class:`Schedule` on a started virtual-time engine, from the engine's
    next cycle on.

    :meth:`advance` runs the engine in slices that end at the schedule's times and
    writes each change just before the first cycle that starts at or after its time (a
    write lands at the start of the next cycle). A value equal to the one this player
    wrote last for the variable is not written again, so only changes become write
    events.

    Args:
        engine: a started :class:`softplc.Engine` in virtual time.
        schedule: what to write when.
        should_stop: called after each slice; True ends :meth:`advance` early (a test
            bench stops at a fault).
        max_slice_ns: longest slice the engine runs without calling ``should_stop``
            (default: 1000 periods of the first task).
    """

    def __init__(
        self,
        engine: Any,
        schedule: Schedule,
        *,
        should_stop: Callable[[], bool] | None = None,
        max_slice_ns: int | None = None,
    ) -> None:
        if engine.clock != "virtual":
            raise ConfigError("a stimulus plays in virtual time only (clock='virtual')")
        self.engine = engine
        self.schedule = schedule
        self.should_stop = should_stop
        period = int(engine.stats()[0]["period_ns"])
        self.max_slice_ns = max_slice_ns if max_slice_ns is not None else 1000 * period
        if self.max_slice_ns <= 0:
            raise ConfigError(f"max_slice_ns must be positive (got {self.max_slice_ns})")
        self._t0 = self._now()
        self._next = 0
        self._last: dict[str, Any] = {}
        #: Single writes made so far.
        self.writes = 0

    def _now(self) -> int:
        t = self.engine.native.virtual_now()
        return int(t) if t is not None else 0

    @property
    def elapsed_ns(self) -> int:
        """Virtual time since the player started (the start of the next cycle)."""
        return self._now() - self._t0

    @property
    def done(self) -> bool:
        """True once the schedule's end is reached."""
        return self.elapsed_ns >= self.schedule.end_ns

    def _write_due(self, elapsed: int) -> None:
        events = self.schedule.events
        while self._next < len(events) and events[self._next][0] <= elapsed:
            for name, value in events[self._next][1].items():
                if name in self._last and _same(self._last[name], value):
                    continue
                self.engine.write(name, value)
                self._last[name] = value
                self.writes += 1
            self._next += 1

    def advance(self, duration_ns: int) -> bool:
        """Runs the engine for ``duration_ns`` of virtual time (whole cycles: every
        cycle that starts within it), writing the changes that fall due. Returns False
        when ``should_stop`` ended it early."""
        if duration_ns < 0:
            raise ConfigError(f"duration must not be negative (got {duration_ns} ns)")
        events = self.schedule.events
        elapsed = self.elapsed_ns
        target = elapsed + duration_ns
        while True:
            self._write_due(elapsed)
            if elapsed >= target:
                return True
            stop_at = min(target, elapsed + self.max_slice_ns)
            if self._next < len(events):
                stop_at = min(stop_at, events[self._next][0])
            # At least one cycle starts in [elapsed, stop_at): elapsed is the start of
            # the next cycle, so every slice makes progress.
            self.engine.run_for(stop_at - elapsed)
            elapsed = self.elapsed_ns
            if self.should_stop is not None and self.should_stop():
                return False

    def play(self) -> bool:
        """Runs to the schedule's end; False when ``should_stop`` ended it early."""
        return self.advance(max(self.schedule.end_ns - self.elapsed_ns, 0))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and bool(a == b)


@dataclass
class Stimulus:
    """A parsed stimulus file: its value columns, the raw cells of each row and, in
    the timed form, each row's time.

    After :meth:`bind`, ``names`` holds the full variable name of each column and
    ``values`` the parsed values of each row (empty cells left out).
    """

    path: str
    columns: list[str]
    rows: list[tuple[int, list[str]]]  # (line number, cells)
    times_ns: list[int] | None = None
    header_line: int = 1
    names: list[str] = field(default_factory=list)
    values: list[dict[str, Any]] = field(default_factory=list)
    _changes: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def timed(self) -> bool:
        """True for the timed form (a ``time`` column)."""
        return self.times_ns is not None

    def _col(self, k: int) -> int:
        """The file's column number (from 1) of value column ``k`` (from 0)."""
        return k + 2 if self.timed else k + 1

    def bind(self, engine: Any) -> None:
        """Resolves the columns against the engine's variables (inputs and memory) and
        parses every cell. Raises :class:`ConfigError` naming file, row and column
        (:class:`UnknownVariable` for a column that names no variable or several)."""
        variables = {v["name"]: v for v in engine.variables}
        index = NameIndex(variables)
        names: list[str] = []
        for k, c in enumerate(self.columns):
            where = f"{self.path}: row {self.header_line}, column {self._col(k)} ({c!r})"
            try:
                full = index.resolve(c)
            except NameLookupError as e:
                if "ambiguous" in str(e):
                    raise UnknownVariable(f"{where}: {e}") from None
                raise UnknownVariable(f"{where}: no such variable{index.hint(c)}") from None
            v = variables[full]
            if v["area"] not in DRIVABLE_AREAS:
                raise ConfigError(
                    f"{where}: {full} is an {v['area']} variable; a stimulus drives inputs "
                    "and memory (outputs are written by the programs)"
                )
            if full in names:
                raise ConfigError(
                    f"{where}: {full} has a column already (column {self._col(names.index(full))})"
                )
            names.append(full)
        labels: dict[str, dict[int, str]] = dict(getattr(engine, "enum_labels", {}) or {})
        values: list[dict[str, Any]] = []
        for line, cells in self.rows:
            row: dict[str, Any] = {}
            for k, (name, cell) in enumerate(zip(names, cells, strict=True)):
                if cell.strip() == "":
                    continue
                try:
                    if name in labels:
                        row[name] = parse_member(cell, labels[name])
                        continue
                    row[name] = parse_value(cell, variables[name]["type"])
                except ValueError as e:
                    raise ConfigError(
                        f"{self.path}: row {line}, column {self._col(k)} "
                        f"({self.columns[k]!r}, {variables[name]['type']}): {e}"
                    ) from None
            values.append(row)
        self.names = names
        self.values = values
        self._changes = _changes_only(values)

    def _bound(self) -> None:
        if self.columns and not self.names:
            raise ConfigError(f"{self.path}: bind(engine) the stimulus first")

    def schedule(self, period_ns: int) -> Schedule:
        """The changes as a :class:`Schedule`: row k of the dense form at
        ``k * period_ns``, a row of the timed form at its time. It ends one period
        after the last row's time, once the last row has had its cycle."""
        self._bound()
        if period_ns <= 0:
            raise ConfigError(f"period must be positive (got {period_ns} ns)")
        times = self.times_ns if self.times_ns is not None else [
            k * period_ns for k in range(len(self.rows))
        ]  # fmt: skip
        events = [(t, ch) for t, ch in zip(times, self._changes, strict=True) if ch]
        end = (times[-1] + period_ns) if times else 0
        return Schedule(events, end)

    def player(self, engine: Any, *, should_stop: Callable[[], bool] | None = None) -> Player:
        """A :class:`Player` of this stimulus on ``engine``, starting at its next cycle
        (binds first when needed). The dense form's rows follow the first task's
        period."""
        if self.columns and not self.names:
            self.bind(engine)
        period = int(engine.stats()[0]["period_ns"])
        return Player(engine, self.schedule(period), should_stop=should_stop)

    def apply(self, engine: Any, cycle: int) -> None:
        """Dense form, cycle by cycle: writes the changes of row ``cycle`` (nothing
        after the last row: the last values hold). Rows must be applied in order, since
        only the cells that differ from the previous rows are written."""
        if self.timed:
            raise ConfigError(f"{self.path}: a timed stimulus is played with player(engine)")
        if self.columns and not self.names:
            self.bind(engine)
        if 0 <= cycle < len(self._changes):
            for name, value in self._changes[cycle].items():
                engine.write(name, value)

    def row(self, cycle: int) -> dict[str, Any]:
        """The values row ``cycle`` sets (after :meth:`bind`), written or not."""
        return dict(self.values[cycle]) if 0 <= cycle < len(self.values) else {}


def _changes_only(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    last: dict[str, Any] = {}
    out = []
    for row in rows:
        ch = {n: v for n, v in row.items() if n not in last or not _same(last[n], v)}
        last.update(ch)
        out.append(ch)
    return out


def _parse_time(text: str) -> int:
    t = text.strip()
    if t == "0":
        return 0
    return parse_duration(t, what="time")


def load_stimulus(path: str | Path) -> Stimulus:
    """Reads a stimulus CSV file (either form). Raises :class:`ConfigError` for a
    missing file, an empty or duplicate header, a row with the wrong number of cells,
    or (timed form) a missing, unreadable, negative or non-increasing time."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"stimulus file {str(path)!r} does not exist")
    with p.open(newline="", encoding="utf-8") as f:
        lines = [(i, row) for i, row in enumerate(csv.reader(f), start=1)]
    lines = [(i, r) for i, r in lines if r and not r[0].lstrip().startswith("#")]
    if not lines:
        raise ConfigError(
            f"{p}: empty stimulus file (expected a header row: 'time' and variable names, "
            "or variable names)"
        )
    hline, header = lines[0]
    header = [h.strip() for h in header]
    for col, h in enumerate(header, start=1):
        if not h:
            raise ConfigError(f"{p}: row {hline}, column {col}: empty column name")
        if header.index(h) != col - 1:
            raise ConfigError(f"{p}: row {hline}, column {col} ({h!r}): duplicate column")
    timed = header[0].lower() == _TIME_COLUMN
    for col, h in enumerate(header[1:], start=2):
        if h.lower() == _TIME_COLUMN:
            raise ConfigError(
                f"{p}: row {hline}, column {col}: the time column must be the first one"
            )
    if timed and len(header) == 1:
        raise ConfigError(f"{p}: row {hline}: a time column but no variable columns")
    rows = []
    times: list[int] = []
    for line, cells in lines[1:]:
        if len(cells) != len(header):
            raise ConfigError(
                f"{p}: row {line}: {len(cells)} cells, expected {len(header)} ({', '.join(header)})"
            )
        if timed:
            cell = cells[0].strip()
            where = f"{p}: row {line}, column 1 ('time')"
            if not cell:
                raise ConfigError(f"{where}: empty time (every row of a timed stimulus has one)")
            try:
                t = _parse_time(cell)
            except ConfigError:
                raise ConfigError(
                    f"{where}: cannot read {cell!r} as a time (examples: 0ms, 1.5s, T#2s)"
                ) from None
            if t < 0:
                raise ConfigError(f"{where}: negative time {cell!r}")
            if times and t <= times[-1]:
                raise ConfigError(
                    f"{where}: {cell} is not after the previous row's time "
                    f"({format_duration(times[-1])}); times must increase"
                )
            times.append(t)
            cells = cells[1:]
        rows.append((line, cells))
    columns = header[1:] if timed else header
    return Stimulus(str(p), columns, rows, times if timed else None, hline)
