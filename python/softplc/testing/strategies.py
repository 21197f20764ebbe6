"""Hypothesis strategies for the inputs of a control program over time.

:func:`timelines` draws a :class:`~softplc.testing.Timeline` for the inputs a program
declares (or the signals named): booleans as pulse trains whose levels each last at
least a minimum hold time, numbers as piecewise-constant (optionally ramped) segments
within a range. Every signal's course is a short list of changes, and Hypothesis
shrinks lists towards fewer, shorter items, so a failing example shrinks to a few
changes, printed in a readable form. A bench plays a timeline with
``bench.play(timeline)``.

Requests that cannot be met (a hold time longer than the duration, an empty range, a
signal the program does not have) raise Hypothesis's ``InvalidArgument`` when the
strategy is made, before any example runs.

This module needs Hypothesis (in softplc's ``test`` extra); the rest of
:mod:`softplc.testing` does not.

Example:
    >>> from hypothesis import given, settings
    >>> from softplc.testing import Bench, always
    >>> from softplc.testing.strategies import timelines, pulses
    >>> enable = pulses(min_hold="1s")
    >>> @settings(max_examples=5, deadline=None)
    ... @given(timelines("programs/tank.py", duration="20s", signals={"enable": enable}))
    ... def test_tank_never_pumps_while_disabled(tl):
    ...     with Bench.from_file("programs/tank.py") as b:
    ...         b.play(tl)
    ...         always(b, "not (pump and not enable)")
    >>> test_tank_never_pumps_while_disabled()
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from softplc._names import NameIndex, NameLookupError
from softplc.engine import Duration, Engine
from softplc.errors import ConfigError
from softplc.iectypes import INT_BITS
from softplc.stimulus import DRIVABLE_AREAS
from softplc.testing._bench import Bench, _fresh_program_file
from softplc.testing._timeline import Change, SignalTimeline, Timeline
from softplc.timefmt import format_duration, parse_duration
from softplc.types import IecType

__all__ = ["Levels", "Pulses", "levels", "pulses", "timelines"]

#: Default range of REAL and LREAL inputs given no range.
DEFAULT_REAL_RANGE = (-1e6, 1e6)
#: Default range of TIME inputs given no range (0 to 1 hour).
DEFAULT_TIME_RANGE = (0, 3_600_000_000_000)


@dataclass(frozen=True)
class Pulses:
    """How a BOOL signal behaves: see :func:`pulses`."""

    min_hold: Duration | None = None
    max_hold: Duration | None = None
    initial: bool | None = None


@dataclass(frozen=True)
class Levels:
    """How a numeric signal behaves: see :func:`levels`."""

    lo: Any
    hi: Any
    min_hold: Duration | None = None
    max_hold: Duration | None = None
    ramps: bool = False
    initial: Any = None


def pulses(
    *,
    min_hold: Duration | None = None,
    max_hold: Duration | None = None,
    initial: bool | None = None,
) -> Pulses:
    """A BOOL signal as a pulse train: each level lasts at least ``min_hold`` (default:
    the ``min_hold`` of :func:`timelines`) and at most ``max_hold``; ``initial`` fixes
    the value at the start (drawn by default)."""
    return Pulses(min_hold, max_hold, initial)


def levels(
    lo: Any,
    hi: Any,
    *,
    min_hold: Duration | None = None,
    max_hold: Duration | None = None,
    ramps: bool = False,
    initial: Any = None,
) -> Levels:
    """A numeric signal as segments of at least ``min_hold`` each, with values in
    ``[lo, hi]``: constant steps, or with ``ramps=True`` also linear ramps that move
    once per cycle across a segment. TIME bounds may be durations (``"5s"``)."""
    return Levels(lo, hi, min_hold, max_hold, ramps, initial)


def _variables(source: Any) -> list[dict[str, Any]]:
    """Name, area and type of every variable of ``source``."""
    if isinstance(source, Bench):
        return source.variables
    if isinstance(source, Engine):
        if source.state == "CONFIG":
            return [dict(v) for v in source.native.layout_preview()]
        return source.variables
    if isinstance(source, Mapping):
        out = []
        for name, t in source.items():
            tname = t.name if isinstance(t, IecType) else str(t)
            out.append({"name": str(name), "area": "input", "type": tname})
        return out
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise InvalidArgument(f"program file {path!r} does not exist")
        try:
            engine = _fresh_program_file(Path(path)).build_engine(clock="virtual")
        except ConfigError as e:
            raise InvalidArgument(f"{path}: {e}") from None
        try:
            return [dict(v) for v in engine.native.layout_preview()]
        finally:
            engine.close()
    raise InvalidArgument(
        "timelines() takes a program file, a Bench, an Engine, or a mapping of names to "
        f"IEC types (got {type(source).__name__})"
    )


def _ns(value: Duration | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_duration(value, what=what)
    except ConfigError as e:
        raise InvalidArgument(str(e)) from None


def _int_range(type_name: str) -> tuple[int, int]:
    if type_name == "TIME":
        return -(1 << 63), (1 << 63) - 1
    bits, signed = INT_BITS[type_name]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _value_strategy(name: str, type_name: str, spec: Levels) -> st.SearchStrategy[Any]:
    lo, hi = spec.lo, spec.hi
    if type_name in ("REAL", "LREAL"):
        try:
            flo, fhi = float(lo), float(hi)
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"{name}: levels({lo!r}, {hi!r}): bounds must be numbers"
            ) from None
        if not (math.isfinite(flo) and math.isfinite(fhi)):
            raise InvalidArgument(f"{name}: levels({lo!r}, {hi!r}): bounds must be finite")
        if flo > fhi:
            raise InvalidArgument(f"{name}: levels({lo!r}, {hi!r}) is an empty range")
        if type_name == "REAL":
            # The REAL values within the bounds (f32), so that every drawn value is one
            # the variable holds exactly and stays inside the range.
            f32lo = np.float32(flo)
            f32lo = f32lo if float(f32lo) >= flo else np.nextafter(f32lo, np.float32(np.inf))
            f32hi = np.float32(fhi)
            f32hi = f32hi if float(f32hi) <= fhi else np.nextafter(f32hi, np.float32(-np.inf))
            if not (np.isfinite(f32lo) and np.isfinite(f32hi)) or f32lo > f32hi:
                raise InvalidArgument(
                    f"{name}: levels({lo!r}, {hi!r}) holds no REAL (32-bit float) value"
                )
            return st.floats(float(f32lo), float(f32hi), width=32)
        return st.floats(flo, fhi, allow_nan=False, allow_infinity=False)
    if type_name == "TIME":
        lo_i = _ns(lo, f"{name}: levels lower bound") if not isinstance(lo, int) else lo
        hi_i = _ns(hi, f"{name}: levels upper bound") if not isinstance(hi, int) else hi
    else:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)):
            raise InvalidArgument(
                f"{name} ({type_name}): levels({lo!r}, {hi!r}): bounds must be integers"
            )
        lo_i, hi_i = lo, hi
    assert lo_i is not None and hi_i is not None
    if lo_i > hi_i:
        raise InvalidArgument(f"{name}: levels({lo!r}, {hi!r}) is an empty range")
    tlo, thi = _int_range(type_name)
    if lo_i < tlo or hi_i > thi:
        raise InvalidArgument(
            f"{name} ({type_name}): levels({lo!r}, {hi!r}) leaves the type's range {tlo}..{thi}"
        )
    return st.integers(lo_i, hi_i)


@dataclass(frozen=True)
class _Plan:
    """Everything needed to draw one signal's course, checked."""

    name: str
    type: str
    k_min: int  # hold, in units of the resolution
    k_max: int
    max_changes: int
    values: st.SearchStrategy[Any] | None  # None for BOOL
    initial: Any
    ramps: bool


def _plan(
    name: str,
    type_name: str,
    spec: Pulses | Levels,
    *,
    duration: int,
    resolution: int,
    min_hold: int,
    max_hold: int | None,
    max_changes: int,
) -> _Plan:
    hold = _ns(spec.min_hold, f"{name}: min_hold")
    hold = min_hold if hold is None else hold
    top = _ns(spec.max_hold, f"{name}: max_hold")
    top = max_hold if top is None else top
    if hold <= 0:
        raise InvalidArgument(f"{name}: min_hold must be positive (got {format_duration(hold)})")
    if hold > duration:
        raise InvalidArgument(
            f"{name}: min_hold {format_duration(hold)} is longer than the duration "
            f"{format_duration(duration)}: no change fits"
        )
    if top is not None and top < hold:
        raise InvalidArgument(
            f"{name}: max_hold {format_duration(top)} is shorter than min_hold "
            f"{format_duration(hold)}"
        )
    k_min = max(1, math.ceil(hold / resolution))
    k_max = duration // resolution if top is None else top // resolution
    if k_max < k_min:
        raise InvalidArgument(
            f"{name}: no multiple of the resolution {format_duration(resolution)} lies between "
            f"min_hold {format_duration(hold)} and max_hold {format_duration(top or duration)}"
        )
    changes = min(max_changes, duration // (k_min * resolution))
    if type_name == "BOOL":
        if not isinstance(spec, Pulses):
            raise InvalidArgument(f"{name} is a BOOL: describe it with pulses(), not levels()")
        return _Plan(name, type_name, k_min, k_max, changes, None, spec.initial, False)
    if not isinstance(spec, Levels):
        raise InvalidArgument(
            f"{name} is a {type_name}: describe it with levels(lo, hi), not pulses()"
        )
    values = _value_strategy(name, type_name, spec)
    return _Plan(name, type_name, k_min, k_max, changes, values, spec.initial, spec.ramps)


def _default_spec(type_name: str) -> Pulses | Levels:
    if type_name == "BOOL":
        return Pulses()
    if type_name in ("REAL", "LREAL"):
        return Levels(*DEFAULT_REAL_RANGE)
    if type_name == "TIME":
        return Levels(*DEFAULT_TIME_RANGE)
    return Levels(*_int_range(type_name))


@st.composite
def _signal(draw: st.DrawFn, plan: _Plan, duration: int, resolution: int) -> SignalTimeline:
    holds = st.integers(plan.k_min, plan.k_max)
    changes: list[Change] = []
    t = 0
    if plan.values is None:
        initial = draw(st.booleans()) if plan.initial is None else bool(plan.initial)
        value = initial
        for k in draw(st.lists(holds, max_size=plan.max_changes)):
            t += k * resolution
            if t >= duration:
                break
            value = not value
            changes.append(Change(t, value))
        return SignalTimeline(plan.name, plan.type, initial, tuple(changes))
    initial = draw(plan.values) if plan.initial is None else plan.initial
    ramp = st.booleans() if plan.ramps else st.just(False)
    segments = draw(st.lists(st.tuples(holds, plan.values, ramp), max_size=plan.max_changes))
    for k, value, ramped in segments:
        span = k * resolution
        if ramped:
            # Moves across the segment and arrives at its end.
            changes.append(Change(t, value, span))
        elif t + span < duration:
            changes.append(Change(t + span, value))
        t += span
        if t >= duration:
            break
    return SignalTimeline(plan.name, plan.type, initial, tuple(changes))


def timelines(
    source: Any,
    *,
    duration: Duration = "10s",
    signals: Sequence[str] | Mapping[str, Pulses | Levels | tuple[Any, Any]] | None = None,
    exclude: Iterable[str] = (),
    min_hold: Duration = "100ms",
    max_hold: Duration | None = None,
    resolution: Duration = "10ms",
    max_changes: int = 20,
) -> st.SearchStrategy[Timeline]:
    """A strategy for input timelines of ``source`` over ``duration``.

    Args:
        source: a program file, a :class:`~softplc.testing.Bench`, an
            :class:`~softplc.Engine`, or a mapping ``{name: IEC type}``.
        duration: how long each timeline lasts (a bench plays it for that long).
        signals: which signals to drive: None for every input of the program; a list
            of names (inputs or memory variables) with the default behaviour; or a
            mapping from names to :func:`pulses`, :func:`levels` or a ``(lo, hi)``
            pair. Names are full names or unique last parts.
        exclude: inputs to leave alone (a plant model drives them, say).
        min_hold: the default shortest time a value lasts.
        max_hold: the default longest time a value lasts before the next change.
        resolution: change times are multiples of this.
        max_changes: most changes per signal.

    Default behaviours: BOOL pulse trains; integers over their type's range; REAL and
    LREAL within ``DEFAULT_REAL_RANGE``; TIME from 0 to 1 h. Give ranges that mean
    something for the plant with :func:`levels`.

    Raises:
        InvalidArgument: at once, for an unknown signal (with the closest names), an
            output, a hold time longer than the duration, an empty range, and the like.
    """
    dur = _ns(duration, "duration")
    res = _ns(resolution, "resolution")
    hold = _ns(min_hold, "min_hold")
    top = _ns(max_hold, "max_hold")
    assert dur is not None and res is not None and hold is not None
    if dur <= 0:
        raise InvalidArgument(f"duration must be positive (got {duration!r})")
    if res <= 0:
        raise InvalidArgument(f"resolution must be positive (got {resolution!r})")
    if isinstance(max_changes, bool) or not isinstance(max_changes, int) or max_changes < 0:
        raise InvalidArgument(f"max_changes must be an integer >= 0 (got {max_changes!r})")
    variables = {v["name"]: v for v in _variables(source)}
    index = NameIndex(variables)

    def resolve(name: str) -> str:
        try:
            return index.resolve(name)
        except NameLookupError as e:
            raise InvalidArgument(f"timelines(): {e}") from None

    if signals is None:
        chosen: dict[str, Pulses | Levels | tuple[Any, Any] | None] = {
            n: None for n, v in variables.items() if v["area"] == "input"
        }
    elif isinstance(signals, Mapping):
        chosen = {}
        for n, behaviour in signals.items():
            full = resolve(n)
            if full in chosen:
                raise InvalidArgument(f"timelines(): {n!r} names {full}, which is named already")
            chosen[full] = behaviour
    elif isinstance(signals, str):
        raise InvalidArgument("signals= takes a list of names or a mapping, not a string")
    else:
        chosen = {}
        for n in signals:
            chosen[resolve(n)] = None
    for n in exclude:
        chosen.pop(resolve(n), None)
    if not chosen:
        raise InvalidArgument(
            "timelines(): no signal to drive (the program declares no input; name inputs or "
            "setpoints with signals=)"
        )
    plans = []
    for full, given in chosen.items():
        v = variables[full]
        if v["area"] not in DRIVABLE_AREAS:
            raise InvalidArgument(
                f"timelines(): {full} is an {v['area']} variable; a timeline drives inputs "
                "and memory"
            )
        spec: Pulses | Levels
        if given is None:
            spec = _default_spec(v["type"])
        elif isinstance(given, tuple):
            spec = Levels(*given)
        elif isinstance(given, (Pulses, Levels)):
            spec = given
        else:
            raise InvalidArgument(
                f"timelines(): {full}: give pulses(...), levels(lo, hi) or (lo, hi), not {given!r}"
            )
        plans.append(
            _plan(
                full,
                v["type"],
                spec,
                duration=dur,
                resolution=res,
                min_hold=hold,
                max_hold=top,
                max_changes=max_changes,
            )
        )
    parts = [_signal(p, dur, res) for p in plans]
    return st.tuples(*parts).map(lambda sigs: Timeline(dur, tuple(sigs)))
