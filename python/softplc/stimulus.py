"""CSV stimulus files for ``softplc run PROGRAM.py --virtual --cycles N --stimulus in.csv``.

Format: a header row of input names (full engine names such as ``tank.level``, or a
bare name that is unique), then one row per cycle: row k sets the inputs for cycle k
(counting from 0). After the last row the last values hold. An empty cell keeps the
previous value. Values:

* BOOL: ``0``/``1`` or ``true``/``false`` (any case);
* integers: decimal (``-12``); REAL/LREAL: decimal (``3.5``, ``1e-3``), finite in the
  variable's type (``1e39`` is out of range for REAL);
* TIME: a decimal integer of milliseconds (``1500``) or an IEC literal (``T#1s500ms``),
  within the 64-bit nanosecond range of TIME.

Numbers are plain decimal: ``1_000``, ``0x10``, ``inf`` and ``nan`` are errors.

Lines starting with ``#`` are comments. Every error names the file, the row (line
number in the file) and the column.

API used by the ``run`` command::

    stim = load_stimulus("inputs.csv")   # parses; ConfigError on malformed files
    stim.bind(engine)                    # after engine.start(): checks names and values
    for k in range(cycles):
        stim.apply(engine, k)            # writes row k (nothing after the last row)
        engine.run_cycles(1)

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "in.csv"
    >>> _ = p.write_text("start,level\\n1,20.5\\n0,\\n")
    >>> s = load_stimulus(p)
    >>> s.columns, len(s)
    (['start', 'level'], 2)
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from softplc.errors import ConfigError, UnknownVariable
from softplc.iectypes import INT_BITS, f32, fits
from softplc.timefmt import parse_duration

__all__ = ["Stimulus", "load_stimulus", "parse_value"]


_DECIMAL_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIME_NS = (-(1 << 63), (1 << 63) - 1)  # TIME is a signed 64-bit count of nanoseconds


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


@dataclass
class Stimulus:
    """A parsed stimulus file: column names and the raw cells of each row."""

    path: str
    columns: list[str]
    rows: list[tuple[int, list[str]]]  # (line number, cells)
    names: list[str] = field(default_factory=list)
    values: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def bind(self, engine: Any) -> None:
        """Resolves the columns against the engine's variables (inputs only) and parses
        every cell. Raises :class:`ConfigError` naming file, row and column
        (:class:`UnknownVariable` for a column that names no variable)."""
        variables = {v["name"]: v for v in engine.variables}
        names = []
        for col, c in enumerate(self.columns, start=1):
            v = variables.get(c)
            if v is None:
                hits = [n for n in variables if n.endswith("." + c)]
                if len(hits) == 1:
                    v = variables[hits[0]]
                elif hits:
                    raise UnknownVariable(
                        f"{self.path}: row 1, column {col} ({c!r}): ambiguous name, "
                        f"matches {', '.join(hits)} (use the full name)"
                    )
                else:
                    known = ", ".join(n for n, x in variables.items() if x["area"] == "input")
                    raise UnknownVariable(
                        f"{self.path}: row 1, column {col} ({c!r}): no such variable "
                        f"(inputs: {known or 'none'})"
                    )
            if v["area"] != "input":
                raise ConfigError(
                    f"{self.path}: row 1, column {col} ({c!r}): {v['name']} is an "
                    f"{v['area']} variable; a stimulus drives inputs"
                )
            names.append(v["name"])
        labels: dict[str, dict[int, str]] = dict(getattr(engine, "enum_labels", {}) or {})
        values: list[dict[str, Any]] = []
        for line, cells in self.rows:
            row: dict[str, Any] = {}
            for col, (name, cell) in enumerate(zip(names, cells, strict=True), start=1):
                if cell.strip() == "":
                    continue
                try:
                    if name in labels:
                        row[name] = parse_member(cell, labels[name])
                        continue
                    row[name] = parse_value(cell, variables[name]["type"])
                except ValueError as e:
                    raise ConfigError(
                        f"{self.path}: row {line}, column {col} ({self.columns[col - 1]!r}, "
                        f"{variables[name]['type']}): {e}"
                    ) from None
            values.append(row)
        self.names = names
        self.values = values

    def apply(self, engine: Any, cycle: int) -> None:
        """Writes the inputs of row ``cycle`` (nothing after the last row: the last
        values hold)."""
        if not self.names and self.columns:
            self.bind(engine)
        if 0 <= cycle < len(self.values):
            for name, value in self.values[cycle].items():
                engine.write(name, value)

    def row(self, cycle: int) -> dict[str, Any]:
        """The values row ``cycle`` writes (after :meth:`bind`)."""
        return dict(self.values[cycle]) if 0 <= cycle < len(self.values) else {}


def load_stimulus(path: str | Path) -> Stimulus:
    """Reads a stimulus CSV file. Raises :class:`ConfigError` for a missing file, an
    empty or duplicate header, or a row with the wrong number of cells."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"stimulus file {str(path)!r} does not exist")
    with p.open(newline="", encoding="utf-8") as f:
        lines = [(i, row) for i, row in enumerate(csv.reader(f), start=1)]
    lines = [(i, r) for i, r in lines if r and not r[0].lstrip().startswith("#")]
    if not lines:
        raise ConfigError(f"{p}: empty stimulus file (expected a header row of input names)")
    hline, header = lines[0]
    header = [h.strip() for h in header]
    for col, h in enumerate(header, start=1):
        if not h:
            raise ConfigError(f"{p}: row {hline}, column {col}: empty column name")
        if header.index(h) != col - 1:
            raise ConfigError(f"{p}: row {hline}, column {col} ({h!r}): duplicate column")
    rows = []
    for line, cells in lines[1:]:
        if len(cells) != len(header):
            raise ConfigError(
                f"{p}: row {line}: {len(cells)} cells, expected {len(header)} ({', '.join(header)})"
            )
        rows.append((line, cells))
    return Stimulus(str(p), header, rows)
