"""Input timelines: what each driven signal does over a stretch of virtual time.

A :class:`Timeline` is plain data (the Hypothesis strategies in
:mod:`softplc.testing.strategies` make them, and tests may write them by hand): per
signal an initial value and a list of changes, each a step or a linear ramp. A bench
plays it (``bench.play(timeline)``); :meth:`Timeline.schedule` turns it into the writes
to make, and :meth:`Timeline.to_csv` into a timed stimulus file that replays it
(``softplc run --stimulus`` or ``bench.play``).

Example:
    >>> tl = Timeline(2_000_000_000, (
    ...     SignalTimeline("start", "BOOL", False, (Change(500_000_000, True),
    ...                                             Change(600_000_000, False))),
    ...     SignalTimeline("level", "REAL", 10.0, (Change(1_000_000_000, 50.0, 500_000_000),)),
    ... ))
    >>> tl
    Timeline(2s; start: False, 500ms -> True, 600ms -> False; level: 10.0, 1s -> 50.0 over 500ms)
    >>> tl.value_at("level", 1_250_000_000)
    30.0
    >>> print(tl.to_csv(250_000_000))
    time,start,level
    0ms,0,10.0
    500ms,1,
    600ms,0,
    1250ms,,30.0
    1500ms,,50.0
    2000ms,,
    <BLANKLINE>
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from softplc.iectypes import INT_BITS
from softplc.stimulus import Schedule
from softplc.timefmt import format_duration

__all__ = ["Change", "SignalTimeline", "Timeline"]


@dataclass(frozen=True)
class Change:
    """At ``t_ns`` the signal starts to go to ``value``: at once (``ramp_ns`` 0), or
    linearly over ``ramp_ns`` from the value it has then."""

    t_ns: int
    value: Any
    ramp_ns: int = 0

    def __repr__(self) -> str:
        ramp = f" over {format_duration(self.ramp_ns)}" if self.ramp_ns else ""
        return f"{format_duration(self.t_ns)} -> {self.value!r}{ramp}"


def _cast(type_name: str, v: float) -> Any:
    """A ramp's intermediate value in the signal's type (integers round to nearest)."""
    if type_name in INT_BITS or type_name == "TIME":
        return round(v)
    return float(v)


@dataclass(frozen=True)
class SignalTimeline:
    """One signal's course: its value at the start and its changes, in time order."""

    name: str
    type: str
    initial: Any
    changes: tuple[Change, ...] = ()

    def value_at(self, t_ns: int) -> Any:
        """The value the timeline gives the signal at ``t_ns``."""
        value = self.initial
        for k, c in enumerate(self.changes):
            if c.t_ns > t_ns:
                break
            # The change is followed until the next one starts (or until t_ns).
            nxt = self.changes[k + 1].t_ns if k + 1 < len(self.changes) else None
            upto = t_ns if nxt is None or nxt > t_ns else nxt
            if c.ramp_ns and upto < c.t_ns + c.ramp_ns:
                value = _cast(self.type, value + (c.value - value) * (upto - c.t_ns) / c.ramp_ns)
            else:
                value = c.value
        return value

    def points(self, period_ns: int, end_ns: int) -> list[tuple[int, Any]]:
        """``(t_ns, value)`` to write: the initial value at 0, each step at its time,
        and each ramp as one value per ``period_ns`` along it."""
        out: list[tuple[int, Any]] = [(0, self.initial)]
        for k, c in enumerate(self.changes):
            if c.t_ns >= end_ns:
                break
            if not c.ramp_ns:
                out.append((c.t_ns, c.value))
                continue
            stop = min(c.t_ns + c.ramp_ns, end_ns)
            if k + 1 < len(self.changes):
                stop = min(stop, self.changes[k + 1].t_ns)
            steps = max(1, math.ceil((stop - c.t_ns) / period_ns))
            for i in range(1, steps + 1):
                t = min(c.t_ns + i * period_ns, stop)
                if t == stop and stop < c.t_ns + c.ramp_ns:
                    break  # cut short: the next change (or the end) takes over here
                out.append((t, self.value_at(t)))
        return out

    def __repr__(self) -> str:
        return ", ".join([f"{self.name}: {self.initial!r}", *map(repr, self.changes)])


@dataclass(frozen=True)
class Timeline:
    """Signals' courses over ``duration_ns`` of virtual time.

    Attributes:
        duration_ns: how long it lasts; a bench plays it for that long.
        signals: one :class:`SignalTimeline` per driven signal.
    """

    duration_ns: int
    signals: tuple[SignalTimeline, ...]

    def __getitem__(self, name: str) -> SignalTimeline:
        for s in self.signals:
            if s.name == name:
                return s
        hits = [s for s in self.signals if s.name.endswith("." + name)]
        if len(hits) == 1:
            return hits[0]
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        """The driven signals."""
        return [s.name for s in self.signals]

    @property
    def changes(self) -> int:
        """How many changes the timeline has, in all signals."""
        return sum(len(s.changes) for s in self.signals)

    def value_at(self, name: str, t_ns: int) -> Any:
        """The value of signal ``name`` at ``t_ns``."""
        return self[name].value_at(t_ns)

    def schedule(self, period_ns: int, *, resolve: Callable[[str], str] | None = None) -> Schedule:
        """The writes that play the timeline on an engine whose first task has period
        ``period_ns`` (ramps move once per period); ``resolve`` maps signal names to
        the engine's full names."""
        if period_ns <= 0:
            raise ValueError(f"period must be positive (got {period_ns} ns)")
        at: dict[int, dict[str, Any]] = {}
        for s in self.signals:
            name = resolve(s.name) if resolve is not None else s.name
            for t, v in s.points(period_ns, self.duration_ns):
                at.setdefault(t, {})[name] = v
        return Schedule(sorted(at.items()), self.duration_ns)

    def to_csv(self, period_ns: int) -> str:
        """The timeline as a timed stimulus file (:mod:`softplc.stimulus`), ramps as one
        row per ``period_ns``; a last row marks the end."""
        sched = self.schedule(period_ns)
        names = self.names
        lines = [",".join(["time", *names])]
        last: dict[str, Any] = {}
        for t, values in sched.events:
            cells = []
            for n in names:
                v = values.get(n, last.get(n))
                if n in values and (n not in last or last[n] != v):
                    cells.append(_cell(self[n].type, v))
                    last[n] = v
                else:
                    cells.append("")
            if any(cells):
                lines.append(",".join([_time_cell(t), *cells]))
        lines.append(",".join([_time_cell(self.duration_ns)] + [""] * len(names)))
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return (
            f"Timeline({format_duration(self.duration_ns)}; "
            + "; ".join(map(repr, self.signals))
            + ")"
        )


def _time_cell(t_ns: int) -> str:
    return f"{t_ns // 1_000_000}ms" if t_ns % 1_000_000 == 0 else f"{t_ns}ns"


def _cell(type_name: str, v: Any) -> str:
    if type_name == "BOOL":
        return "1" if v else "0"
    if type_name == "TIME":
        return f"T#{int(v)}ns"
    return repr(v)
