"""IEC 61131-3 elementary types as Python constants.

Example:
    >>> from softplc import REAL, TIME
    >>> REAL.name, REAL.size, TIME.name
    ('REAL', 4, 'TIME')
"""

from __future__ import annotations

import enum

from softplc.errors import ConfigError

__all__ = [
    "ALL_TYPES",
    "BOOL",
    "BYTE",
    "DINT",
    "DWORD",
    "INT",
    "LINT",
    "LREAL",
    "LWORD",
    "NUMPY_DTYPES",
    "REAL",
    "SINT",
    "STRING",
    "TIME",
    "UDINT",
    "UINT",
    "ULINT",
    "USINT",
    "WORD",
    "IecType",
    "StringType",
    "enum_members",
    "enum_storage",
    "is_enum_class",
    "type_from_name",
]

#: The NumPy type string of each type's values in arrays: snapshots, trace columns,
#: recorded traces. The one Python copy of this table; the Rust side keeps its own for
#: the trace writer (``softplc_core::trace::dtype``), and
#: ``tests/unit/test_types.py`` holds the two together. A BOOL takes one byte, 0 or 1.
NUMPY_DTYPES: dict[str, str] = {
    "BOOL": "|b1",
    "SINT": "|i1",
    "INT": "<i2",
    "DINT": "<i4",
    "LINT": "<i8",
    "USINT": "|u1",
    "UINT": "<u2",
    "UDINT": "<u4",
    "ULINT": "<u8",
    "REAL": "<f4",
    "LREAL": "<f8",
    "TIME": "<i8",
    "BYTE": "|u1",
    "WORD": "<u2",
    "DWORD": "<u4",
    "LWORD": "<u8",
}


class IecType:
    """An elementary type: its name, size in bytes (BOOL: 0, a bit) and value range."""

    __slots__ = ("is_float", "name", "signed", "size")

    def __init__(self, name: str, size: int, signed: bool, is_float: bool) -> None:
        self.name = name
        self.size = size
        self.signed = signed
        self.is_float = is_float

    @property
    def is_int(self) -> bool:
        """True for the integer types (not BOOL, TIME, bit strings, strings or floats)."""
        return (
            not self.is_float
            and not self.is_bits
            and not self.is_string
            and self.name not in ("BOOL", "TIME")
        )

    @property
    def is_string(self) -> bool:
        """True for a STRING type."""
        return False

    @property
    def is_bits(self) -> bool:
        """True for the bit strings BYTE, WORD, DWORD and LWORD."""
        return self.name in ("BYTE", "WORD", "DWORD", "LWORD")

    @property
    def dtype(self) -> str:
        """The NumPy type string of its values in arrays (``<f4``; BOOL ``|b1``).

        Example:
            >>> REAL.dtype, BOOL.dtype
            ('<f4', '|b1')
        """
        return NUMPY_DTYPES[self.name]

    @property
    def bits(self) -> int:
        """Width in bits (BOOL: 1)."""
        return 1 if self.size == 0 else self.size * 8

    @property
    def min(self) -> int:
        """Smallest integer value (integers and TIME)."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        """Largest integer value (integers and TIME)."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IecType):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other.upper()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)


BOOL = IecType("BOOL", 0, False, False)
SINT = IecType("SINT", 1, True, False)
INT = IecType("INT", 2, True, False)
DINT = IecType("DINT", 4, True, False)
LINT = IecType("LINT", 8, True, False)
USINT = IecType("USINT", 1, False, False)
UINT = IecType("UINT", 2, False, False)
UDINT = IecType("UDINT", 4, False, False)
ULINT = IecType("ULINT", 8, False, False)
REAL = IecType("REAL", 4, True, True)
LREAL = IecType("LREAL", 8, True, True)
TIME = IecType("TIME", 8, True, False)
BYTE = IecType("BYTE", 1, False, False)
WORD = IecType("WORD", 2, False, False)
DWORD = IecType("DWORD", 4, False, False)
LWORD = IecType("LWORD", 8, False, False)


class StringType(IecType):
    """``STRING(n)``: at most ``n`` single-byte (Latin-1) characters, ``n`` from 1 to
    254. In the process image it takes ``n + 1`` bytes, a length byte then the
    characters, at a byte address (``%MB10``). ``STRING`` alone is ``STRING(80)``;
    call it for another capacity: ``STRING(20)``. Writes longer than the capacity are
    truncated, as in IEC.

    Example:
        >>> STRING(20).name, STRING(20).size, STRING.capacity
        ('STRING(20)', 21, 80)
    """

    __slots__ = ("capacity",)

    def __init__(self, capacity: int = 80) -> None:
        if (
            isinstance(capacity, bool)
            or not isinstance(capacity, int)
            or not (1 <= capacity <= 254)
        ):
            raise ConfigError(
                f"a STRING holds 1 to 254 characters, got STRING({capacity!r}) "
                "(its length is one byte in the process image)"
            )
        super().__init__(f"STRING({capacity})", capacity + 1, False, False)
        self.capacity = capacity

    def __call__(self, capacity: int) -> StringType:
        """The STRING type of capacity ``capacity``."""
        return StringType(capacity)

    @property
    def is_string(self) -> bool:
        return True

    @property
    def dtype(self) -> str:
        """Fixed-size records: the length byte, then the capacity's bytes."""
        return f"|V{self.capacity + 1}"

    def __hash__(self) -> int:
        return hash(self.name)


#: ``STRING(80)``; ``STRING(n)`` for a capacity of ``n`` characters.
STRING = StringType(80)

ALL_TYPES = (
    BOOL,
    SINT,
    INT,
    DINT,
    LINT,
    USINT,
    UINT,
    UDINT,
    ULINT,
    REAL,
    LREAL,
    TIME,
    BYTE,
    WORD,
    DWORD,
    LWORD,
)
_BY_NAME = {t.name: t for t in ALL_TYPES}


def type_from_name(name: str) -> IecType:
    """Looks a type up by name, case-insensitively.

    Example:
        >>> type_from_name("lreal")
        LREAL
    """
    try:
        return _BY_NAME[name.upper()]
    except KeyError:
        pass
    upper = name.strip().upper().replace(" ", "")
    if upper == "STRING":
        return STRING
    if upper.startswith("STRING(") and upper.endswith(")") and upper[7:-1].isdigit():
        return StringType(int(upper[7:-1]))
    raise ConfigError(
        f"unknown type {name!r} (expected one of {', '.join(_BY_NAME)}, STRING or STRING(n))"
    ) from None


def is_enum_class(obj: object) -> bool:
    """True for an ``IntEnum`` class: an enumeration type for variables.

    Example:
        >>> import enum
        >>> class Phase(enum.IntEnum):
        ...     RED = 0
        ...     GREEN = 1
        >>> is_enum_class(Phase), is_enum_class(Phase.RED)
        (True, False)
    """
    return isinstance(obj, type) and issubclass(obj, enum.IntEnum)


def enum_members(cls: type[enum.IntEnum]) -> list[tuple[str, int]]:
    """The members of an enumeration, in definition order: ``(name, value)``
    (aliases, which share a value with an earlier member, are left out)."""
    return [(m.name, int(m.value)) for m in cls]


def enum_storage(cls: type[enum.IntEnum]) -> IecType:
    """The integer type an enumeration's values are stored as: INT when they all fit,
    else DINT, else LINT (IEC's default base type of an enumeration is INT).

    Example:
        >>> import enum
        >>> class Big(enum.IntEnum):
        ...     A = 0
        ...     B = 100_000
        >>> enum_storage(Big)
        DINT
    """
    values = [v for _, v in enum_members(cls)]
    for t in (INT, DINT, LINT):
        if all(t.min <= v <= t.max for v in values):
            return t
    raise ConfigError(f"enumeration {cls.__name__}: its values do not fit a LINT")
