"""IEC numeric semantics in Python: the typed values of the reference mode.

In reference mode a program runs as plain Python, but every value it reads from a
declared variable is a *typed value* from this module, whose operators follow the
same rules as the compiled form: integers wrap at their width, REAL rounds every
result to 32-bit float, division by zero raises :class:`ZeroDivisionError` (the engine
enters FAULT), and mixing types follows the implicit-conversion table below. The
compiler (:mod:`softplc.compiler`) uses the same tables, so both forms agree cycle for
cycle.

Python's own ``int`` and ``float`` stand for *untyped* constants (``ANY_INT`` and
``ANY_REAL``): a literal takes the type of the typed value it meets, as in IEC.

Implicit conversions (widening only, never losing information)::

    SINT  -> INT, DINT, LINT, REAL, LREAL
    INT   -> DINT, LINT, REAL, LREAL
    DINT  -> LINT, LREAL
    USINT -> UINT, UDINT, ULINT, INT, DINT, LINT, REAL, LREAL
    UINT  -> UDINT, ULINT, DINT, LINT, REAL, LREAL
    UDINT -> ULINT, LINT, LREAL
    REAL  -> LREAL
    BYTE  -> WORD, DWORD, LWORD
    WORD  -> DWORD, LWORD
    DWORD -> LWORD

The bit strings BYTE, WORD, DWORD and LWORD hold bits, not numbers: they take the bit
operators (``& | ^ ~ << >>``), comparisons and explicit conversions, and no
arithmetic.

A ``STRING(n)`` holds at most ``n`` single-byte (Latin-1) characters, ``n`` from 1 to
254 (``STRING`` alone is ``STRING(80)``). Every write truncates to the destination's
capacity, as IEC does: no error, no allocation on the scan thread. Its values here
are :class:`IecString`; a plain Python ``str`` is a literal (``STRING`` of its
length). Strings take ``+`` (concatenation, ``CONCAT``), comparisons (byte order), the
string functions of :mod:`softplc.stdlib` and explicit conversions to and from numbers
(:func:`to_string`, :func:`parse_string`); nothing converts to or from a string
implicitly.

Example:
    >>> from softplc.iectypes import make, type_of
    >>> a = make("INT", 32767)
    >>> a + 1, type_of(a + 1)
    (-32768, 'INT')
    >>> r = make("REAL", 0.1)
    >>> r, r + 0.2
    (0.10000000149011612, 0.30000001192092896)
    >>> type_of(make("SINT", 3) * make("UINT", 2))
    'DINT'
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

from softplc.timefmt import parse_duration

__all__ = [
    "BIT_TYPES",
    "FLOAT_TYPES",
    "INT_TYPES",
    "MAX_STRING",
    "NUM_TYPES",
    "IecInt",
    "IecReal",
    "IecString",
    "Time",
    "TypeRuleError",
    "coerce",
    "common",
    "convert",
    "f32",
    "float_to_int",
    "is_string",
    "is_time_literal",
    "make",
    "number_of",
    "parse_string",
    "result_type",
    "string_capacity",
    "string_type",
    "to_string",
    "type_of",
    "widens",
    "wrap",
]

#: Integer types: name -> (bits, signed). TIME is a signed 64-bit count of ns.
INT_BITS: dict[str, tuple[int, bool]] = {
    "SINT": (8, True),
    "INT": (16, True),
    "DINT": (32, True),
    "LINT": (64, True),
    "USINT": (8, False),
    "UINT": (16, False),
    "UDINT": (32, False),
    "ULINT": (64, False),
    "TIME": (64, True),
    "BYTE": (8, False),
    "WORD": (16, False),
    "DWORD": (32, False),
    "LWORD": (64, False),
}
INT_TYPES = ("SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT")
#: Bit strings: unsigned bits of their width, without arithmetic.
BIT_TYPES = ("BYTE", "WORD", "DWORD", "LWORD")
FLOAT_TYPES = ("REAL", "LREAL")
NUM_TYPES = INT_TYPES + FLOAT_TYPES
ANY_INT = "ANY_INT"
ANY_REAL = "ANY_REAL"

_WIDENS: dict[str, tuple[str, ...]] = {
    "SINT": ("INT", "DINT", "LINT", "REAL", "LREAL"),
    "INT": ("DINT", "LINT", "REAL", "LREAL"),
    "DINT": ("LINT", "LREAL"),
    "LINT": (),
    "USINT": ("UINT", "UDINT", "ULINT", "INT", "DINT", "LINT", "REAL", "LREAL"),
    "UINT": ("UDINT", "ULINT", "DINT", "LINT", "REAL", "LREAL"),
    "UDINT": ("ULINT", "LINT", "LREAL"),
    "ULINT": (),
    "REAL": ("LREAL",),
    "LREAL": (),
    "BYTE": ("WORD", "DWORD", "LWORD"),
    "WORD": ("DWORD", "LWORD"),
    "DWORD": ("LWORD",),
    "LWORD": (),
}
# Candidates for a common type, smallest first.
_BY_SIZE = ("SINT", "USINT", "INT", "UINT", "DINT", "UDINT", "REAL", "LINT", "ULINT", "LREAL")

_FLT_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
# Halfway between FLT_MAX and 2**128: at or beyond it, rounding to f32 overflows.
_F32_OVERFLOW = 2.0**128 - 2.0**103
_PACK = struct.Struct("<f")


_TIME_LITERAL = re.compile(r"^\s*(L?TIME#|L?T#)", re.IGNORECASE)


def is_time_literal(text: str) -> bool:
    """True for an IEC duration literal (``"T#1s500ms"``, ``"TIME#5ms"``)."""
    return bool(_TIME_LITERAL.match(text))


class TypeRuleError(TypeError):
    """Two values cannot be combined (the compiler reports the same as an error)."""


def wrap(v: int, t: str) -> int:
    """Wraps an integer into type ``t`` (two's complement), as IEC overflow does."""
    bits, signed = INT_BITS[t]
    v &= (1 << bits) - 1
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def fits(v: int, t: str) -> bool:
    """True when ``v`` is in the range of integer type ``t``."""
    bits, signed = INT_BITS[t]
    if signed:
        return -(1 << (bits - 1)) <= v < (1 << (bits - 1))
    return 0 <= v < (1 << bits)


def f32(x: float) -> float:
    """Rounds a float to the nearest 32-bit float (ties to even; overflow gives inf)."""
    if math.isnan(x) or math.isinf(x):
        return x
    if abs(x) >= _F32_OVERFLOW:
        return math.copysign(math.inf, x)
    return float(_PACK.unpack(_PACK.pack(x))[0])


def float_to_int(x: float, t: str) -> int:
    """Float to integer type ``t``: round half to even, saturate, NaN gives 0."""
    bits, signed = INT_BITS[t]
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if math.isnan(x):
        return 0
    if x == math.inf:
        return hi
    if x == -math.inf:
        return lo
    return max(lo, min(hi, round(x)))


class _IecOperators:
    """The operators IecInt and IecReal share: arithmetic and comparison by IEC rules.

    Each one hands both operands to :func:`binop` or :func:`compare`, which pick the
    result type; the subclasses add what depends on the base type (bit operations,
    negation, hashing). A class defining ``__eq__`` loses its inherited hash, so each
    subclass sets ``__hash__`` again.
    """

    __slots__ = ()

    def __add__(self, o: Any) -> Any:
        return binop("+", self, o)

    def __radd__(self, o: Any) -> Any:
        return binop("+", o, self)

    def __sub__(self, o: Any) -> Any:
        return binop("-", self, o)

    def __rsub__(self, o: Any) -> Any:
        return binop("-", o, self)

    def __mul__(self, o: Any) -> Any:
        return binop("*", self, o)

    def __rmul__(self, o: Any) -> Any:
        return binop("*", o, self)

    def __truediv__(self, o: Any) -> Any:
        return binop("/", self, o)

    def __rtruediv__(self, o: Any) -> Any:
        return binop("/", o, self)

    def __floordiv__(self, o: Any) -> Any:
        return binop("//", self, o)

    def __rfloordiv__(self, o: Any) -> Any:
        return binop("//", o, self)

    def __mod__(self, o: Any) -> Any:
        return binop("%", self, o)

    def __rmod__(self, o: Any) -> Any:
        return binop("%", o, self)

    def __pos__(self) -> Any:
        return self

    def __eq__(self, o: object) -> bool:
        return bool(compare("==", self, o))

    def __ne__(self, o: object) -> bool:
        return bool(compare("!=", self, o))

    def __lt__(self, o: Any) -> bool:
        return bool(compare("<", self, o))

    def __le__(self, o: Any) -> bool:
        return bool(compare("<=", self, o))

    def __gt__(self, o: Any) -> bool:
        return bool(compare(">", self, o))

    def __ge__(self, o: Any) -> bool:
        return bool(compare(">=", self, o))


class IecInt(_IecOperators, int):
    """An integer of an IEC type; arithmetic wraps at the type's width."""

    __slots__ = ()
    iec = "LINT"

    def __repr__(self) -> str:
        return int.__repr__(self)

    __str__ = __repr__

    def __and__(self, o: Any) -> Any:
        return binop("&", self, o)

    def __rand__(self, o: Any) -> Any:
        return binop("&", o, self)

    def __or__(self, o: Any) -> Any:
        return binop("|", self, o)

    def __ror__(self, o: Any) -> Any:
        return binop("|", o, self)

    def __xor__(self, o: Any) -> Any:
        return binop("^", self, o)

    def __rxor__(self, o: Any) -> Any:
        return binop("^", o, self)

    def __lshift__(self, o: Any) -> Any:
        return binop("<<", self, o)

    def __rlshift__(self, o: Any) -> Any:
        return binop("<<", o, self)

    def __rshift__(self, o: Any) -> Any:
        return binop(">>", self, o)

    def __rrshift__(self, o: Any) -> Any:
        return binop(">>", o, self)

    def __pow__(self, o: Any, mod: Any = None) -> Any:
        raise TypeRuleError("** is not supported on IEC values (use EXPT-free arithmetic)")

    def __neg__(self) -> Any:
        return make(self.iec, -int(self))

    def __abs__(self) -> Any:
        return make(self.iec, abs(int(self)))

    def __invert__(self) -> Any:
        if self.iec == "TIME":
            raise TypeRuleError("~ needs an integer, got TIME")
        return make(self.iec, ~int(self))

    __hash__ = int.__hash__


class IecReal(_IecOperators, float):
    """A REAL (rounded to 32 bits after every operation) or LREAL value."""

    __slots__ = ()
    iec = "LREAL"

    def __repr__(self) -> str:
        return float.__repr__(self)

    __str__ = __repr__

    def __pow__(self, o: Any, mod: Any = None) -> Any:
        raise TypeRuleError("** is not supported on IEC values")

    def __neg__(self) -> Any:
        return make(self.iec, -float(self))

    def __abs__(self) -> Any:
        return make(self.iec, abs(float(self)))

    __hash__ = float.__hash__


def _int_class(name: str) -> type[IecInt]:
    return type(name.capitalize(), (IecInt,), {"__slots__": (), "iec": name})


def _real_class(name: str) -> type[IecReal]:
    return type(name.capitalize(), (IecReal,), {"__slots__": (), "iec": name})


class Time(IecInt):
    """A TIME value: signed 64-bit nanoseconds. ``ms(500) == 500_000_000``.

    Plain ``int`` operands count as nanoseconds here (so code written for durations as
    integers keeps working); compiled programs insist on ``ms()``/``s()``.
    """

    __slots__ = ()
    iec = "TIME"

    def __repr__(self) -> str:
        return int.__repr__(self)


class Bits(IecInt):
    """A bit string (BYTE, WORD, DWORD, LWORD): bit operations, shifts and
    comparisons, no arithmetic."""

    __slots__ = ()
    iec = "LWORD"

    def __neg__(self) -> Any:
        raise TypeRuleError(f"unary - needs a number, got {self.iec} (a bit string)")

    def __abs__(self) -> Any:
        raise TypeRuleError(f"ABS needs a number, got {self.iec} (a bit string)")

    __hash__ = int.__hash__


#: The largest capacity of a STRING (its length is one byte in the image).
MAX_STRING = 254
#: The capacity of a STRING declared without one.
DEFAULT_STRING = 80
_STRING_TYPE = re.compile(r"^STRING\((\d+)\)$")


def string_type(cap: int) -> str:
    """The type name of a STRING of capacity ``cap`` (``STRING(20)``)."""
    return f"STRING({cap})"


def string_capacity(t: str) -> int | None:
    """The capacity of STRING type ``t``, None for other types."""
    m = _STRING_TYPE.match(t)
    return int(m.group(1)) if m else None


def is_string(t: str) -> bool:
    """True for a STRING type (``STRING(20)``)."""
    return t.startswith("STRING(")


def latin1(text: str, what: str = "a STRING") -> str:
    """``text`` when every character is single-byte (Latin-1), else TypeRuleError."""
    for ch in text:
        if ord(ch) > 255:
            raise TypeRuleError(
                f"{ch!r} is not a single-byte (Latin-1) character, which {what} holds"
            )
    return text


class IecString(str):
    """A STRING value: text of at most ``cap`` single-byte characters. Built from a
    longer text, it keeps the first ``cap`` characters (IEC truncation).

    ``+`` concatenates (the result holds up to the sum of the capacities, at most
    254); comparisons are byte by byte and only with strings; indexing is refused
    (``MID``, ``LEFT`` and ``RIGHT`` take parts, 1-based as in IEC).
    """

    cap: int

    def __new__(cls, text: str, cap: int) -> IecString:
        obj = super().__new__(cls, latin1(str(text))[:cap])
        obj.cap = cap
        return obj

    def __getnewargs__(self) -> tuple[str, int]:  # type: ignore[override]
        return (str(self), self.cap)

    @property
    def iec(self) -> str:
        return string_type(self.cap)

    def __repr__(self) -> str:
        return str.__repr__(self)

    def __add__(self, o: Any) -> Any:
        return concat(self, o)

    def __radd__(self, o: Any) -> Any:
        return concat(o, self)

    def __mul__(self, o: Any) -> Any:
        raise TypeRuleError(f"cannot apply * to {self.iec}")

    __rmul__ = __mul__

    def __mod__(self, o: Any) -> Any:
        raise TypeRuleError(f"cannot apply % to {self.iec}")

    def __getitem__(self, k: Any) -> Any:
        raise TypeRuleError(
            "strings are not indexed in control programs; use MID(s, 1, p), LEFT(s, n) "
            "or RIGHT(s, n) (positions from 1, as in IEC)"
        )

    def __eq__(self, o: object) -> bool:
        return compare("==", self, o)

    def __ne__(self, o: object) -> bool:
        return compare("!=", self, o)

    def __lt__(self, o: Any) -> bool:
        return compare("<", self, o)

    def __le__(self, o: Any) -> bool:
        return compare("<=", self, o)

    def __gt__(self, o: Any) -> bool:
        return compare(">", self, o)

    def __ge__(self, o: Any) -> bool:
        return compare(">=", self, o)

    __hash__ = str.__hash__


def _cap_of(v: Any) -> int:
    return v.cap if isinstance(v, IecString) else max(1, len(v))


def concat(a: Any, b: Any) -> IecString:
    """``a + b`` on strings: a STRING of the sum of the capacities (at most 254),
    truncated to it."""
    for v in (a, b):
        if not isinstance(v, str):
            raise TypeRuleError(
                f"cannot apply + to {type_of(a)} and {type_of(b)} (a STRING concatenates "
                "with strings only; convert with TO_STRING(x))"
            )
    cap = min(MAX_STRING, _cap_of(a) + _cap_of(b))
    return IecString(str(a) + str(b), cap)


def to_string(v: Any, cap: int = DEFAULT_STRING) -> IecString:
    """``TO_STRING(v)``: integers and bit strings in decimal; REAL and LREAL in the
    shortest decimal form that reads back as the same value, without exponent
    (``0.1``, ``1``, ``-0``), or ``NaN``, ``INF``, ``-INF``; BOOL as ``TRUE``/``FALSE``;
    a string as it is. The result is a STRING(80), truncated to it."""
    t = type_of(v)
    if isinstance(v, str):
        return IecString(str(v), cap)
    if t == "BOOL":
        text = "TRUE" if v else "FALSE"
    elif t == "TIME":
        raise TypeRuleError("no conversion from TIME to STRING; use TIME_TO_MS(t) first")
    elif t in FLOAT_TYPES or t == ANY_REAL:
        text = _float_text(float(v), single=t == "REAL")
    else:
        text = str(int(v))
    return IecString(text, cap)


def _float_text(x: float, *, single: bool) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "INF" if x > 0 else "-INF"
    import numpy as np  # only string conversions need it

    value = np.float32(x) if single else np.float64(x)
    return str(np.format_float_positional(value, unique=True, trim="-"))


def parse_string(s: str, t: str) -> Any:
    """``TO_<t>(s)`` of a string: surrounding spaces, an optional sign and decimal
    digits make an integer (wrapped to ``t``); for REAL and LREAL also the forms
    ``1.5``, ``.5``, ``1e3``, ``-2.5E-3``. Anything else gives 0."""
    text = str(s).strip(" ")
    if t in FLOAT_TYPES:
        x = float(text) if _DECIMAL.match(text) else 0.0
        return make(t, x)
    if t in INT_TYPES or t in BIT_TYPES:
        m = _INTEGER.match(text)
        v = int(text) if m else 0
        return make(t, wrap(v, t))
    if t == "BOOL":
        raise TypeRuleError("no conversion from STRING to BOOL; compare instead (s == 'TRUE')")
    raise TypeRuleError(f"no conversion from STRING to {t}")


_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_DECIMAL = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


_CLASSES: dict[str, type] = {t: _int_class(t) for t in INT_TYPES}
for _b in BIT_TYPES:
    _CLASSES[_b] = type(_b.capitalize(), (Bits,), {"__slots__": (), "iec": _b})
_CLASSES["TIME"] = Time
_CLASSES["REAL"] = _real_class("REAL")
_CLASSES["LREAL"] = _real_class("LREAL")


def make(t: str, v: Any) -> Any:
    """A typed value of type ``t`` from a Python number (integers wrap, REAL rounds)."""
    if t == "BOOL":
        return bool(v)
    if is_string(t):
        cap = string_capacity(t)
        assert cap is not None
        return IecString("" if v == 0 and not isinstance(v, str) else str(v), cap)
    if t == "REAL":
        return _CLASSES["REAL"](f32(float(v)))
    if t == "LREAL":
        return _CLASSES["LREAL"](float(v))
    if t in (ANY_INT, ANY_REAL):
        return v
    return _CLASSES[t](wrap(int(v), t))


def type_of(v: Any) -> str:
    """The IEC type of a value: ``BOOL``, ``INT``, ..., or ``ANY_INT``/``ANY_REAL`` for
    plain Python numbers."""
    if isinstance(v, bool):
        return "BOOL"
    if isinstance(v, (IecInt, IecReal)):
        return v.iec
    if isinstance(v, int):
        return ANY_INT
    if isinstance(v, float):
        return ANY_REAL
    if isinstance(v, IecString):
        return v.iec
    if isinstance(v, str):
        return string_type(min(MAX_STRING, max(1, len(v))))
    raise TypeRuleError(f"{type(v).__name__} value {v!r} is not an IEC value")


def widens(a: str, b: str) -> bool:
    """True when type ``a`` converts implicitly (without loss) to ``b``."""
    return a == b or b in _WIDENS.get(a, ())


def common(a: str, b: str) -> str | None:
    """The type two operands are converted to for arithmetic or comparison, or None."""
    if a == b:
        return a
    for x, y in ((a, b), (b, a)):
        if x == ANY_INT:
            if y in NUM_TYPES or y in BIT_TYPES or y == ANY_REAL:
                return y
            return None
        if x == ANY_REAL:
            if y in FLOAT_TYPES:
                return y
            if y in INT_TYPES:
                if widens(y, "REAL"):
                    return "REAL"
                if widens(y, "LREAL"):
                    return "LREAL"
            return None
    if a in BIT_TYPES or b in BIT_TYPES:
        # Bit strings meet bit strings (the wider) and untyped integers (above).
        if a in BIT_TYPES and b in BIT_TYPES:
            return a if widens(b, a) else b
        return None
    if a not in NUM_TYPES or b not in NUM_TYPES:
        return None
    if widens(a, b):
        return b
    if widens(b, a):
        return a
    for c in _BY_SIZE:
        if widens(a, c) and widens(b, c):
            return c
    return None


def _is_intlike(t: str) -> bool:
    return t in INT_TYPES or t == ANY_INT


def result_type(op: str, a: str, b: str) -> tuple[str, str, str]:
    """Typing of a binary operator: ``(result, left operand as, right operand as)``.

    Raises :class:`TypeRuleError` with the message the compiler also uses.
    """
    if a == "TIME" or b == "TIME":
        if op in ("+", "-") and a == b:
            return "TIME", "TIME", "TIME"
        if op == "*" and a == "TIME" and _is_intlike(b):
            return "TIME", "TIME", "TIME"
        if op == "*" and b == "TIME" and _is_intlike(a):
            return "TIME", "TIME", "TIME"
        if op == "//" and a == "TIME" and _is_intlike(b):
            return "TIME", "TIME", "TIME"
        if op == "//" and a == b:
            return "LINT", "TIME", "TIME"
        if op == "%" and a == b:
            return "TIME", "TIME", "TIME"
        raise TypeRuleError(
            f"cannot apply {op} to {a} and {b} (TIME takes + and - with TIME, * and // "
            f"with integers; write durations as ms(...) or s(...))"
        )
    if a == "BOOL" or b == "BOOL":
        if a == b and op in ("&", "|", "^"):
            return "BOOL", "BOOL", "BOOL"
        raise TypeRuleError(
            f"cannot apply {op} to {a} and {b} (BOOL is not a number; use and/or/not, "
            f"or SEL(g, 0, 1) for a number)"
        )
    if a in BIT_TYPES or b in BIT_TYPES:
        return _bits_result(op, a, b)
    if op in ("<<", ">>"):
        if _is_intlike(a) and _is_intlike(b):
            return a, a, b
        raise TypeRuleError(f"{op} needs integers, got {a} and {b}")
    c = common(a, b)
    if c is None:
        raise TypeRuleError(
            f"cannot mix {a} and {b} in {op} (no implicit conversion; convert one side "
            f"explicitly, e.g. TO_LREAL(x))"
        )
    if op == "/":
        # IEC's / on integers divides and truncates, Python's gives a float: the same
        # source would mean two things, so / needs a float operand (typed or not).
        if c in INT_TYPES or c == ANY_INT:
            shown = ", ".join("an untyped integer" if t == ANY_INT else t for t in (a, b))
            raise TypeRuleError(
                f"/ on two integers ({shown}) is ambiguous (IEC truncates, Python gives a "
                f"float); use // for integer division (typed integers truncate toward zero "
                f"as in IEC), or make one side a float (2.0, TO_REAL(x), TO_LREAL(i))"
            )
        return c, c, c
    if op in ("//", "%"):
        if c in FLOAT_TYPES or c == ANY_REAL:
            raise TypeRuleError(f"{op} is for integers, got {a} and {b}; use / for REAL")
        return c, c, c
    if op in ("&", "|", "^"):
        if c in FLOAT_TYPES or c == ANY_REAL:
            raise TypeRuleError(f"{op} needs integers or BOOL, got {a} and {b}")
        return c, c, c
    return c, c, c


def _bits_result(op: str, a: str, b: str) -> tuple[str, str, str]:
    """Typing of an operator with a bit string operand (see :func:`result_type`)."""
    bits = a if a in BIT_TYPES else b
    if op in ("<<", ">>"):
        if a in BIT_TYPES and _is_intlike(b):
            return a, a, b
        raise TypeRuleError(f"{op} shifts a bit string by an integer count, got {a} and {b}")
    if op in ("&", "|", "^"):
        c = common(a, b)
        if c is not None:
            return c, c, c
        other = b if a in BIT_TYPES else a
        raise TypeRuleError(
            f"cannot mix {a} and {b} in {op} (convert one side explicitly: "
            f"TO_{bits}({'x' if other != 'BOOL' else 'b'}) or TO_{number_of(bits)}(w))"
        )
    raise TypeRuleError(
        f"{op} is arithmetic, and {bits} is a bit string (bits, not a number); convert it "
        f"first: TO_{number_of(bits)}(x)"
    )


def number_of(bits: str) -> str:
    """The unsigned integer type of a bit string's width (WORD -> UINT)."""
    return {"BYTE": "USINT", "WORD": "UINT", "DWORD": "UDINT", "LWORD": "ULINT"}[bits]


def coerce(v: Any, t: str) -> Any:
    """Converts ``v`` implicitly to type ``t`` (widening or an untyped constant);
    raises :class:`TypeRuleError` where the compiler reports an error."""
    if t == "TIME" and isinstance(v, str) and not isinstance(v, IecString):
        return Time(parse_duration(v))
    s = type_of(v)
    if is_string(t) or is_string(s):
        if is_string(t) and isinstance(v, str):
            cap = string_capacity(t)
            assert cap is not None
            return v if isinstance(v, IecString) and v.cap == cap else IecString(v, cap)
        raise TypeRuleError(
            f"cannot convert {s} to {t} implicitly (use "
            f"{'TO_STRING(x)' if is_string(t) else f'TO_{t}(s)'} to convert explicitly)"
        )
    if s == t:
        return v
    if t in (ANY_INT, ANY_REAL):
        if s == ANY_INT and t == ANY_REAL:
            return float(v)
        raise TypeRuleError(f"{s} is not an untyped number")
    if t == "TIME":
        if isinstance(v, str):
            return Time(parse_duration(v))
        if s == ANY_INT:
            return Time(wrap(v, "TIME"))
        raise TypeRuleError(f"cannot use {s} as TIME (write durations as ms(...) or s(...))")
    if s == ANY_INT:
        if t in INT_TYPES or t in BIT_TYPES:
            if not fits(v, t):
                raise TypeRuleError(f"{v} does not fit {t}")
            return make(t, v)
        if t in FLOAT_TYPES:
            return make(t, float(v))
    elif s == ANY_REAL:
        if t in FLOAT_TYPES:
            return make(t, v)
    elif widens(s, t):
        return make(t, v)
    raise TypeRuleError(
        f"cannot convert {s} to {t} implicitly (only widening conversions are implicit; "
        f"use TO_{t}(x) to convert explicitly)"
    )


def convert(v: Any, t: str) -> Any:
    """Explicit conversion ``TO_<t>(v)``: integers wrap, floats round half to even and
    saturate (NaN gives 0), integer to REAL rounds to nearest; strings by
    :func:`to_string` and :func:`parse_string`."""
    if is_string(t):
        cap = string_capacity(t)
        assert cap is not None
        return to_string(v, cap)
    if isinstance(v, str) and t == "TIME" and not isinstance(v, IecString):
        return coerce(v, t)
    if isinstance(v, str):
        return parse_string(v, t)
    s = type_of(v)
    if t == "BOOL":
        if s in FLOAT_TYPES or s == ANY_REAL:
            raise TypeRuleError(f"no conversion from {s} to BOOL; compare instead (x != 0.0)")
        return bool(int(v))
    if s in FLOAT_TYPES or s == ANY_REAL:
        if t in FLOAT_TYPES:
            return make(t, float(v))
        if t == "TIME":
            raise TypeRuleError("no conversion from a float to TIME; use s(x) or ms(x)")
        return make(t, float_to_int(float(v), t))
    if t == "TIME" and s != "TIME":
        raise TypeRuleError(f"no conversion from {s} to TIME; use ms(x), s(x) or us(x)")
    if s == "TIME" and t != "TIME" and t not in INT_TYPES:
        raise TypeRuleError(f"no conversion from TIME to {t}; use TIME_TO_MS(t) or TIME_TO_S(t)")
    if t in FLOAT_TYPES:
        return make(t, float(int(v)))
    return make(t, int(v))


def _trunc_div(x: int, y: int) -> int:
    if y == 0:
        raise ZeroDivisionError("division by zero")
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


def binop(op: str, a: Any, b: Any) -> Any:
    """Applies a binary operator with IEC typing (used by the typed values)."""
    ta, tb = type_of(a), type_of(b)
    if ta == "TIME" and tb == ANY_INT and op in ("+", "-", "%"):
        tb = "TIME"  # plain ints are nanoseconds next to a TIME (see Time)
        b = Time(wrap(b, "TIME"))
    elif tb == "TIME" and ta == ANY_INT and op in ("+", "-", "%"):
        ta = "TIME"
        a = Time(wrap(a, "TIME"))
    rt, ca, cb = result_type(op, ta, tb)
    if ca == "TIME" and op in ("*", "//") and ta != tb:
        x, y = int(a), int(b)
    else:
        x, y = coerce(a, ca), coerce(b, cb)
    if rt in FLOAT_TYPES or rt == ANY_REAL:
        fx, fy = float(x), float(y)
        if op == "+":
            r = fx + fy
        elif op == "-":
            r = fx - fy
        elif op == "*":
            r = fx * fy
        elif op == "/":
            if fy == 0.0:
                raise ZeroDivisionError("float division by zero")
            r = fx / fy
        else:  # pragma: no cover - result_type rejects the rest
            raise TypeRuleError(op)
        return make(rt, r) if rt != ANY_REAL else r
    ix, iy = int(x), int(y)
    if op == "+":
        r = ix + iy
    elif op == "-":
        r = ix - iy
    elif op == "*":
        r = ix * iy
    elif op == "//":
        if rt == ANY_INT:
            r = ix // iy
        else:
            r = _trunc_div(ix, iy)
    elif op == "%":
        if rt == ANY_INT:
            r = ix % iy
        else:
            r = ix - _trunc_div(ix, iy) * iy
    elif op == "&":
        r = ix & iy
    elif op == "|":
        r = ix | iy
    elif op == "^":
        r = ix ^ iy
    elif op in ("<<", ">>"):
        if iy < 0:
            raise ValueError("negative shift count")
        if op == "<<":
            r = ix << min(iy, 64) if rt != ANY_INT else ix << iy
        else:
            r = ix >> min(iy, 64)
    else:  # pragma: no cover
        raise TypeRuleError(op)
    if rt == "BOOL":
        return bool(r)
    return make(rt, r) if rt != ANY_INT else r


def compare(op: str, a: Any, b: Any) -> bool:
    """Compares with IEC typing: both sides converted to their common type first."""
    if isinstance(a, IecString) or isinstance(b, IecString):
        if not (isinstance(a, str) and isinstance(b, str)):
            raise TypeRuleError(f"cannot compare {type_of(a)} and {type_of(b)}")
        sa, sb = str(a), str(b)
        return bool(
            {"==": sa == sb, "!=": sa != sb, "<": sa < sb, "<=": sa <= sb, ">": sa > sb}.get(
                op, sa >= sb
            )
        )
    ta, tb = type_of(a), type_of(b)
    if ta == "TIME" and tb == ANY_INT:
        tb, b = "TIME", Time(wrap(b, "TIME"))
    elif tb == "TIME" and ta == ANY_INT:
        ta, a = "TIME", Time(wrap(a, "TIME"))
    if isinstance(b, str) and ta == "TIME":
        b, tb = coerce(b, "TIME"), "TIME"
    if ta == "BOOL" or tb == "BOOL":
        if ta != tb or op not in ("==", "!="):
            raise TypeRuleError(f"cannot compare {ta} and {tb} with {op}")
        c = "BOOL"
    elif ta == "TIME" or tb == "TIME":
        if ta != tb:
            raise TypeRuleError(f"cannot compare {ta} and {tb}")
        c = "TIME"
    else:
        c2 = common(ta, tb)
        if c2 is None:
            raise TypeRuleError(f"cannot compare {ta} and {tb} (no common type)")
        c = c2
    if c in FLOAT_TYPES or c == ANY_REAL:
        x: Any = float(coerce(a, c))
        y: Any = float(coerce(b, c))
    elif c == "BOOL":
        x, y = bool(a), bool(b)
    else:
        x, y = int(a), int(b)
    if op == "==":
        return bool(x == y)
    if op == "!=":
        return bool(x != y)
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)
