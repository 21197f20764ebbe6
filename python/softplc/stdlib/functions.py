"""The standard functions, reference form: arithmetic and math (ABS, SQRT, SIN, ...,
TRUNC), selection (MIN, MAX, LIMIT, SEL, MUX), bit access (GET_BIT, SET_BIT), shifts
and rotations of bit strings (SHL, SHR, ROL, ROR) and the explicit conversions TO_BOOL
... TO_LREAL, TO_BYTE ... TO_LWORD.

Example:
    >>> LIMIT(0, 150, 100), MAX(1, 7, 3), SEL(True, 1.5, 2.5)
    (100, 7, 2.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from softplc.iectypes import (
    ANY_INT,
    ANY_REAL,
    BIT_TYPES,
    FLOAT_TYPES,
    INT_BITS,
    INT_TYPES,
    TypeRuleError,
    coerce,
    common,
    compare,
    convert,
    float_to_int,
    make,
    type_of,
)

__all__ = [
    "ABS",
    "ACOS",
    "ASIN",
    "ATAN",
    "CONVERSIONS",
    "COS",
    "EXP",
    "GET_BIT",
    "LIMIT",
    "LN",
    "LOG",
    "MAX",
    "MIN",
    "MUX",
    "ROL",
    "ROR",
    "SEL",
    "SET_BIT",
    "SHL",
    "SHR",
    "SIN",
    "SQRT",
    "TAN",
    "TO_BOOL",
    "TO_BYTE",
    "TO_DINT",
    "TO_DWORD",
    "TO_INT",
    "TO_LINT",
    "TO_LREAL",
    "TO_LWORD",
    "TO_REAL",
    "TO_SINT",
    "TO_UDINT",
    "TO_UINT",
    "TO_ULINT",
    "TO_USINT",
    "TO_WORD",
    "TRUNC",
]


def ABS(x: Any) -> Any:
    """Absolute value, same type (integers wrap: ABS of INT -32768 is -32768)."""
    t = type_of(x)
    if t in ("BOOL", "TIME") or t in BIT_TYPES:
        raise TypeRuleError(f"ABS needs a number, got {t}")
    return abs(x)


def _math(name: str, fn: Any, x: Any) -> Any:
    t = type_of(x)
    if t not in ("REAL", "LREAL", ANY_REAL, ANY_INT):
        raise TypeRuleError(f"{name} needs REAL or LREAL, got {t} (convert with TO_REAL)")
    try:
        r = fn(float(x))
    except (ValueError, OverflowError):
        raise ArithmeticError(
            f"math error in {name} (argument out of its domain or result overflows)"
        ) from None
    return make("REAL" if t == "REAL" else "LREAL", r)


def SQRT(x: Any) -> Any:
    """Square root (REAL or LREAL); a negative argument faults."""
    return _math("SQRT", math.sqrt, x)


def SIN(x: Any) -> Any:
    """Sine (radians)."""
    return _math("SIN", math.sin, x)


def COS(x: Any) -> Any:
    """Cosine (radians)."""
    return _math("COS", math.cos, x)


def TAN(x: Any) -> Any:
    """Tangent (radians)."""
    return _math("TAN", math.tan, x)


def ASIN(x: Any) -> Any:
    """Arc sine; an argument outside [-1, 1] faults."""
    return _math("ASIN", math.asin, x)


def ACOS(x: Any) -> Any:
    """Arc cosine; an argument outside [-1, 1] faults."""
    return _math("ACOS", math.acos, x)


def ATAN(x: Any) -> Any:
    """Arc tangent."""
    return _math("ATAN", math.atan, x)


def EXP(x: Any) -> Any:
    """e to the power x; overflow of LREAL faults (REAL rounds to infinity)."""
    return _math("EXP", math.exp, x)


def LN(x: Any) -> Any:
    """Natural logarithm; x <= 0 faults."""
    return _math("LN", math.log, x)


def LOG(x: Any) -> Any:
    """Base-10 logarithm; x <= 0 faults."""
    return _math("LOG", math.log10, x)


def _common_of(name: str, values: tuple[Any, ...]) -> str:
    t = type_of(values[0])
    for v in values[1:]:
        u = type_of(v)
        c = "TIME" if t == u == "TIME" else ("BOOL" if t == u == "BOOL" else common(t, u))
        if c is None:
            raise TypeRuleError(f"{name}: cannot mix {t} and {u}")
        t = c
    return t


def MIN(*values: Any) -> Any:
    """The smallest of two or more values (converted to their common type)."""
    if len(values) < 2:
        raise TypeError("MIN needs at least two values")
    t = _common_of("MIN", values)
    vals = [coerce(v, t) for v in values]
    best = vals[0]
    for v in vals[1:]:
        if compare("<", v, best):
            best = v
    return best


def MAX(*values: Any) -> Any:
    """The largest of two or more values (converted to their common type)."""
    if len(values) < 2:
        raise TypeError("MAX needs at least two values")
    t = _common_of("MAX", values)
    vals = [coerce(v, t) for v in values]
    best = vals[0]
    for v in vals[1:]:
        if compare(">", v, best):
            best = v
    return best


def LIMIT(MN: Any, IN: Any, MX: Any) -> Any:
    """``MIN(MAX(IN, MN), MX)``: IN clamped to [MN, MX]."""
    return MIN(MAX(IN, MN), MX)


def SEL(G: Any, IN0: Any, IN1: Any) -> Any:
    """IN1 if G else IN0 (both converted to their common type)."""
    if type_of(G) != "BOOL":
        raise TypeRuleError(f"SEL needs a BOOL selector, got {type_of(G)}")
    t = _common_of("SEL", (IN0, IN1))
    return coerce(IN1 if G else IN0, t)


def MUX(K: Any, *inputs: Any) -> Any:
    """Input number K (0-based) of two or more; K out of range faults."""
    kt = type_of(K)
    if kt not in INT_TYPES and kt != ANY_INT:
        raise TypeRuleError(f"MUX needs an integer selector, got {kt}")
    if len(inputs) < 2:
        raise TypeError("MUX needs at least two inputs")
    t = _common_of("MUX", inputs)
    k = int(K)
    if not 0 <= k < len(inputs):
        raise IndexError(f"MUX selector {k} out of range 0..{len(inputs) - 1}")
    return coerce(inputs[k], t)


def _bit_args(name: str, x: Any, n: Any) -> tuple[str, int, int]:
    t = type_of(x)
    if t not in INT_TYPES and t not in BIT_TYPES:
        raise TypeRuleError(f"{name} needs a typed integer or bit string, got {t}")
    nt = type_of(n)
    if nt not in INT_TYPES and nt != ANY_INT:
        raise TypeRuleError(f"{name} needs an integer bit number, got {nt}")
    bits = INT_BITS[t][0]
    k = int(n)
    if not 0 <= k < bits:
        raise IndexError(f"bit number {k} out of range 0..{bits - 1}")
    return t, int(x), k


def GET_BIT(x: Any, n: Any) -> bool:
    """Bit n (0 = least significant) of an integer, as BOOL.

    Example:
        >>> from softplc.iectypes import make
        >>> GET_BIT(make("UINT", 0b100), 2)
        True
    """
    _, v, k = _bit_args("GET_BIT", x, n)
    return bool((v >> k) & 1)


def SET_BIT(x: Any, n: Any, value: Any) -> Any:
    """x with bit n set to ``value`` (BOOL), same type.

    Example:
        >>> from softplc.iectypes import make
        >>> SET_BIT(make("USINT", 0), 7, True)
        128
    """
    t, v, k = _bit_args("SET_BIT", x, n)
    if type_of(value) != "BOOL":
        raise TypeRuleError(f"SET_BIT needs a BOOL value, got {type_of(value)}")
    v = v | (1 << k) if value else v & ~(1 << k)
    return make(t, v)


def _shift_args(name: str, x: Any, n: Any) -> tuple[str, int, int, int]:
    t = type_of(x)
    if t not in BIT_TYPES:
        raise TypeRuleError(
            f"{name} needs a bit string (BYTE, WORD, DWORD, LWORD), got {t} "
            f"(convert with TO_WORD(x) etc.)"
        )
    nt = type_of(n)
    if nt not in INT_TYPES and nt != ANY_INT:
        raise TypeRuleError(f"{name} needs an integer count, got {nt}")
    k = int(n)
    if k < 0:
        raise ValueError("negative shift count")
    return t, int(x), k, INT_BITS[t][0]


def SHL(x: Any, n: Any) -> Any:
    """A bit string shifted left by ``n`` bits (zeros come in; ``n`` >= width gives 0).

    Example:
        >>> from softplc.iectypes import make
        >>> SHL(make("BYTE", 0b1000_0001), 1)
        2
    """
    t, v, k, _ = _shift_args("SHL", x, n)
    return make(t, v << min(k, 64))


def SHR(x: Any, n: Any) -> Any:
    """A bit string shifted right by ``n`` bits (zeros come in)."""
    t, v, k, _ = _shift_args("SHR", x, n)
    return make(t, v >> min(k, 64))


def ROL(x: Any, n: Any) -> Any:
    """A bit string rotated left by ``n`` bits (modulo its width).

    Example:
        >>> from softplc.iectypes import make
        >>> ROL(make("BYTE", 0b1000_0001), 1)
        3
    """
    t, v, k, w = _shift_args("ROL", x, n)
    k %= w
    return make(t, (v << k) | (v >> (w - k)) if k else v)


def ROR(x: Any, n: Any) -> Any:
    """A bit string rotated right by ``n`` bits (modulo its width)."""
    t, v, k, w = _shift_args("ROR", x, n)
    k %= w
    return make(t, (v >> k) | (v << (w - k)) if k else v)


def TRUNC(x: Any) -> Any:
    """A REAL/LREAL truncated toward zero, as LINT (saturating; NaN gives 0)."""
    t = type_of(x)
    if t not in FLOAT_TYPES and t != ANY_REAL:
        raise TypeRuleError(f"TRUNC needs REAL or LREAL, got {t}")
    f = float(x)
    if not math.isfinite(f):
        return make("LINT", float_to_int(f, "LINT"))
    return make("LINT", max(-(1 << 63), min((1 << 63) - 1, math.trunc(f))))


def _conversion(t: str) -> Callable[[Any], Any]:
    def conv(x: Any) -> Any:
        return convert(x, t)

    conv.__name__ = f"TO_{t}"
    conv.__qualname__ = conv.__name__
    conv.__doc__ = (
        f"Explicit conversion to {t}: integers wrap, floats round half to even and "
        f"saturate (NaN gives 0)."
    )
    return conv


# Explicit conversions, one module-level name each (so type checkers and readers see them).
TO_BOOL = _conversion("BOOL")
TO_SINT = _conversion("SINT")
TO_INT = _conversion("INT")
TO_DINT = _conversion("DINT")
TO_LINT = _conversion("LINT")
TO_USINT = _conversion("USINT")
TO_UINT = _conversion("UINT")
TO_UDINT = _conversion("UDINT")
TO_ULINT = _conversion("ULINT")
TO_REAL = _conversion("REAL")
TO_LREAL = _conversion("LREAL")
TO_BYTE = _conversion("BYTE")
TO_WORD = _conversion("WORD")
TO_DWORD = _conversion("DWORD")
TO_LWORD = _conversion("LWORD")

#: Explicit conversions TO_BOOL, TO_SINT, ..., TO_LREAL.
CONVERSIONS: dict[str, Any] = {
    "TO_BOOL": TO_BOOL,
    "TO_SINT": TO_SINT,
    "TO_INT": TO_INT,
    "TO_DINT": TO_DINT,
    "TO_LINT": TO_LINT,
    "TO_USINT": TO_USINT,
    "TO_UINT": TO_UINT,
    "TO_UDINT": TO_UDINT,
    "TO_ULINT": TO_ULINT,
    "TO_REAL": TO_REAL,
    "TO_LREAL": TO_LREAL,
    "TO_BYTE": TO_BYTE,
    "TO_WORD": TO_WORD,
    "TO_DWORD": TO_DWORD,
    "TO_LWORD": TO_LWORD,
}
