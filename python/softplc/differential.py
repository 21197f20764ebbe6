"""Run a program compiled and in reference mode side by side, in virtual time, and
compare every variable at every cycle.

This is what the differential tests use; it is public so that users can check their
own programs the same way.

Example (a program defined in a file, since the compiler reads its source)::

    from softplc.differential import run_both
    from programs.traffic_light import TrafficLight

    rows = run_both(TrafficLight, [{"traffic_light.request": True}] + [{}] * 99)
    rows[-1]["traffic_light.red"]     # every cycle checked equal in both modes
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

from softplc.engine import Engine

__all__ = ["DifferentialMismatch", "run_both", "run_mode"]


class DifferentialMismatch(AssertionError):
    """Compiled and reference runs differ; the message names the first cycle and the
    variables that differ."""


def _same(a: Any, b: Any) -> bool:
    """Equal values; floats compare by their bits, so -0.0 differs from 0.0 and NaNs
    with different payloads or signs differ, while a NaN equals the same NaN."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, float) and isinstance(b, float) and _bits(a) == _bits(b)
    return type(a) is type(b) and bool(a == b)


def _bits(v: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


def _show(v: Any) -> str:
    if isinstance(v, float) and (v == 0.0 or math.isnan(v)):
        return f"{v!r} (bits {_bits(v):#018x})"
    return repr(v)


def run_mode(
    factory: Callable[[], Any],
    steps: Sequence[dict[str, Any]],
    *,
    mode: str,
    cycle: str = "10ms",
    cycles: int | None = None,
    plant: Any = None,
) -> list[dict[str, Any]]:
    """Runs ``factory()`` (a ``@program`` class or a function returning instances)
    in ``mode`` for ``cycles`` cycles (default ``len(steps)``). Before cycle k the
    values of ``steps[k]`` (if any) are written. Returns one row per cycle with every
    variable, plus ``"@state"`` and ``"@fault"`` (the fault message or None).
    """
    n = len(steps) if cycles is None else cycles
    rows: list[dict[str, Any]] = []
    with Engine(clock="virtual", cycle=cycle) as plc:
        made = factory()
        for p in made if isinstance(made, (list, tuple)) else [made]:
            plc.add_program(p, mode=mode)  # type: ignore[arg-type]
        if plant is not None:
            plc.set_plant(plant() if isinstance(plant, type) else plant)
        plc.start()
        for k in range(n):
            if k < len(steps):
                for name, value in steps[k].items():
                    plc.write(name, value)
            plc.run_cycles(1)
            row = dict(plc.snapshot().values())
            row["@state"] = plc.state
            f = plc.fault
            row["@fault"] = None if f is None else str(f.get("message", f))
            rows.append(row)
    return rows


def run_both(
    factory: Callable[[], Any],
    steps: Sequence[dict[str, Any]],
    *,
    cycle: str = "10ms",
    cycles: int | None = None,
    plant: Any = None,
) -> list[dict[str, Any]]:
    """Runs compiled and reference mode; raises :class:`DifferentialMismatch` at the
    first cycle where any variable or the engine state differs (floats compare bit for
    bit: ``-0.0`` is not ``0.0``, and NaNs must carry the same payload). Returns the
    rows of the compiled run."""
    a = run_mode(factory, steps, mode="compiled", cycle=cycle, cycles=cycles, plant=plant)
    b = run_mode(factory, steps, mode="reference", cycle=cycle, cycles=cycles, plant=plant)
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        if x["@state"] != y["@state"] or (x["@fault"] is None) != (y["@fault"] is None):
            raise DifferentialMismatch(
                f"cycle {k}: compiled is {x['@state']} ({x['@fault']}), "
                f"reference is {y['@state']} ({y['@fault']})"
            )
        diff = {
            n: (x.get(n), y.get(n))
            for n in set(x) | set(y)
            if n != "@fault" and not _same(x.get(n), y.get(n))
        }
        if diff:
            shown = ", ".join(
                f"{n}: compiled {_show(c)} != reference {_show(r)}"
                for n, (c, r) in sorted(diff.items())
            )
            raise DifferentialMismatch(f"cycle {k}: {shown}")
    return a
