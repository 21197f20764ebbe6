"""The string functions, reference form: LEN, LEFT, RIGHT, MID, FIND, CONCAT and the
conversion TO_STRING (the conversions from a string are the TO_<number> functions).

Positions count from 1, as in IEC. A count or position out of range gives what the
text has there (nothing, or all of it), never an error; every result is truncated to
its STRING's capacity. The compiled form (``softplc_vm::text``) follows the same
rules to the byte.

Example:
    >>> LEN("conveyor"), LEFT("conveyor", 3), MID("conveyor", 3, 2), FIND("conveyor", "vey")
    (8, 'con', 'onv', 4)
    >>> CONCAT("id ", TO_STRING(42))
    'id 42'
"""

from __future__ import annotations

from typing import Any

from softplc.iectypes import (
    ANY_INT,
    INT_TYPES,
    IecString,
    TypeRuleError,
    concat,
    make,
    to_string,
    type_of,
    wrap,
)

__all__ = ["CONCAT", "FIND", "LEFT", "LEN", "MID", "RIGHT", "STRING_FUNCTIONS", "TO_STRING"]


def _text(name: str, s: Any) -> IecString:
    if not isinstance(s, str):
        raise TypeRuleError(f"{name} takes a STRING, got {type_of(s)}")
    return s if isinstance(s, IecString) else IecString(s, max(1, len(s)))


def _count(name: str, n: Any) -> int:
    t = type_of(n)
    if t not in INT_TYPES and t != ANY_INT:
        raise TypeRuleError(f"{name} takes an integer count or position, got {t}")
    return wrap(int(n), "LINT")  # the compiled form reads it as a LINT


def LEN(s: Any) -> Any:
    """The number of characters of ``s``, as INT."""
    return make("INT", len(_text("LEN", s)))


def LEFT(s: Any, n: Any) -> IecString:
    """The first ``n`` characters of ``s`` (none for ``n <= 0``, all for ``n >= LEN``)."""
    t, k = _text("LEFT", s), _count("LEFT", n)
    return IecString(str(t)[: max(0, k)], t.cap)


def RIGHT(s: Any, n: Any) -> IecString:
    """The last ``n`` characters of ``s`` (none for ``n <= 0``, all for ``n >= LEN``)."""
    t, k = _text("RIGHT", s), _count("RIGHT", n)
    k = min(max(0, k), len(t))
    return IecString(str(t)[len(t) - k :], t.cap)


def MID(s: Any, n: Any, p: Any) -> IecString:
    """``n`` characters of ``s`` from position ``p`` (1-based); none when ``p`` is
    outside 1..LEN(s) or ``n <= 0``."""
    t, k, pos = _text("MID", s), _count("MID", n), _count("MID", p)
    if pos < 1 or pos > len(t) or k <= 0:
        return IecString("", t.cap)
    return IecString(str(t)[pos - 1 : pos - 1 + k], t.cap)


def FIND(s1: Any, s2: Any) -> Any:
    """The position (1-based) of the first ``s2`` in ``s1``; 0 when there is none or
    ``s2`` is empty."""
    a, b = str(_text("FIND", s1)), str(_text("FIND", s2))
    return make("INT", a.find(b) + 1 if b else 0)


def CONCAT(*parts: Any) -> IecString:
    """The strings one after another (two or more), as ``a + b + ...``."""
    if len(parts) < 2:
        raise TypeRuleError(f"CONCAT takes two or more strings, got {len(parts)}")
    acc = _text("CONCAT", parts[0])
    for p in parts[1:]:
        acc = concat(acc, _text("CONCAT", p))
    return acc


def TO_STRING(x: Any) -> IecString:
    """``x`` as text (a STRING(80)): integers and bit strings in decimal, REAL and
    LREAL in the shortest form that reads back the same (``0.1``, ``1``, ``-0``,
    ``NaN``, ``INF``), BOOL as ``TRUE``/``FALSE``."""
    return to_string(x)


#: The string functions by name.
STRING_FUNCTIONS: dict[str, Any] = {
    "LEN": LEN,
    "LEFT": LEFT,
    "RIGHT": RIGHT,
    "MID": MID,
    "FIND": FIND,
    "CONCAT": CONCAT,
    "TO_STRING": TO_STRING,
}
