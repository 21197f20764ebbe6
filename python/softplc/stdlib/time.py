"""TIME helpers of the standard library: the cycle's ``now()``, the ``ms``/``s``/``us``
constructors and the TIME conversions.

Example:
    >>> ms(1.5), s(2), us(5)
    (1500000, 2000000000, 5000)
"""

from __future__ import annotations

from typing import Any

from softplc import _scanstate
from softplc.errors import StateError
from softplc.iectypes import (
    ANY_INT,
    ANY_REAL,
    FLOAT_TYPES,
    INT_TYPES,
    Time,
    TypeRuleError,
    coerce,
    float_to_int,
    make,
    type_of,
    wrap,
)

__all__ = ["TIME_TO_MS", "TIME_TO_S", "ms", "now", "s", "us"]


def now() -> Time:
    """The current cycle's ``now`` as a TIME value (ns). Every program and block in a
    cycle sees the same value; in virtual time it is the scheduled start of the cycle.

    Raises :class:`softplc.StateError` outside a scan.
    """
    if not _scanstate.current_io:
        raise StateError("now() is only available during a scan")
    return Time(_scanstate.current_io[-1].now_ns)


def _time_from(v: Any, scale: int, what: str) -> Time:
    t = type_of(v)
    if t in INT_TYPES or t == ANY_INT:
        return Time(wrap(int(v) * scale, "TIME"))
    if t in FLOAT_TYPES or t == ANY_REAL:
        return Time(float_to_int(float(v) * scale, "TIME"))
    raise TypeRuleError(f"{what}() needs a number, got {t}")


def ms(value: Any) -> Time:
    """Milliseconds as TIME. ``ms(500) == 500_000_000``; floats round to the nearest ns.

    Example:
        >>> ms(1.5)
        1500000
    """
    return _time_from(value, 1_000_000, "ms")


def s(value: Any) -> Time:
    """Seconds as TIME. ``s(5) == 5_000_000_000``.

    Example:
        >>> s(0.25)
        250000000
    """
    return _time_from(value, 1_000_000_000, "s")


def us(value: Any) -> Time:
    """Microseconds as TIME. ``us(5) == 5_000``."""
    return _time_from(value, 1_000, "us")


def TIME_TO_MS(t: Any) -> Any:
    """A TIME as whole milliseconds (LINT, truncated toward zero).

    Example:
        >>> TIME_TO_MS(ms(1500))
        1500
    """
    v = int(coerce(t, "TIME"))
    q = abs(v) // 1_000_000
    return make("LINT", q if v >= 0 else -q)


def TIME_TO_S(t: Any) -> Any:
    """A TIME in seconds (LREAL).

    Example:
        >>> TIME_TO_S(ms(1500))
        1.5
    """
    return make("LREAL", float(int(coerce(t, "TIME"))) / 1e9)
