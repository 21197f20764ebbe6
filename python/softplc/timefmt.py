"""Durations: ``ms()``, ``s()``, ``us()``, IEC literals (``T#1s500ms``) and CLI strings
(``"1ms"``, ``"10s"``), all as integer nanoseconds, the unit of TIME values.

Example:
    >>> ms(500)
    500000000
    >>> parse_duration("T#1s500ms")
    1500000000
    >>> parse_duration("2.5ms")
    2500000
"""

from __future__ import annotations

import re
from datetime import timedelta

from softplc.errors import ConfigError

__all__ = ["format_duration", "minutes", "ms", "ns", "parse_duration", "s", "us"]

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "min": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|min|s|m|h|d)", re.IGNORECASE)


def ns(value: float) -> int:
    """Nanoseconds as a TIME value (identity, rounded to an integer)."""
    return round(value)


def us(value: float) -> int:
    """Microseconds as a TIME value in nanoseconds. ``us(5) == 5_000``."""
    return round(value * 1_000)


def ms(value: float) -> int:
    """Milliseconds as a TIME value in nanoseconds. ``ms(500) == 500_000_000``."""
    return round(value * 1_000_000)


def s(value: float) -> int:
    """Seconds as a TIME value in nanoseconds. ``s(5) == 5_000_000_000``."""
    return round(value * 1_000_000_000)


def minutes(value: float) -> int:
    """Minutes as a TIME value in nanoseconds."""
    return round(value * 60_000_000_000)


def parse_duration(text: str | float | timedelta, *, what: str = "duration") -> int:
    """Parses a duration into nanoseconds.

    Accepts an IEC literal (``T#1s500ms``, ``TIME#2m``, ``LTIME#5us``), a CLI string
    (``"1ms"``, ``"10s"``, ``"1.5s"``, ``"1h2m"``), a :class:`datetime.timedelta`, or an
    int of nanoseconds. Raises :class:`ConfigError` naming ``what`` on bad input.

    Example:
        >>> parse_duration("10s", what="--duration")
        10000000000
    """
    if isinstance(text, bool):
        raise ConfigError(f"{what}: expected a duration, got {text!r}")
    if isinstance(text, timedelta):
        return round(text.total_seconds() * 1e9)
    if isinstance(text, int):
        return text
    if isinstance(text, float):
        raise ConfigError(
            f"{what}: a bare number is ambiguous ({text!r}); give a unit, as in '10ms'"
        )
    raw = text
    t = text.strip().replace("_", "")
    sign = 1
    upper = t.upper()
    for prefix in ("LTIME#", "TIME#", "LT#", "T#"):
        if upper.startswith(prefix):
            t = t[len(prefix) :]
            break
    if t.startswith("-"):
        sign, t = -1, t[1:]
    if not t:
        raise ConfigError(f"{what}: empty duration {raw!r}")
    pos, total = 0, 0.0
    for m in _PART.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2).lower()]
        pos = m.end()
    if pos != len(t) or pos == 0:
        raise ConfigError(
            f"{what}: cannot read duration {raw!r} (examples: '1ms', '10s', 'T#1s500ms')"
        )
    return sign * round(total)


def format_duration(value_ns: int) -> str:
    """Formats nanoseconds compactly (``1.5ms``, ``2s``, ``750ns``)."""
    v = abs(value_ns)
    sign = "-" if value_ns < 0 else ""
    for unit, size in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if v >= size:
            return f"{sign}{v / size:g}{unit}"
    return f"{sign}{v}ns"
