"""Declared data types: arrays (``ARRAY(INT, 3, 4)``), structures (``@struct`` classes
with :class:`Field` attributes) and the values reference mode keeps of them.

A structure is a class whose :class:`Field` attributes give its fields' types and
defaults; it is a type for variables, array elements, fields of other structures and
block inputs and outputs, and it is a value class too: ``Part(id=5)`` is a value with
every other field at its default::

    @struct
    class Part:
        id = Field(DINT)
        weight = Field(REAL, 1.5)
        bins = Field(ARRAY(INT, 3))

A field may name a structure declared later by its name (``Field("Node")``); a
structure that contains itself, directly or through others, is an error naming the
chain, as IEC allows no recursive types.

In the process image a variable of a structure or array type is a set of elementary
variables, one per leaf, named by their path (``tracker.recs[3].id``,
``p.grid[1,2]``); see :func:`leaves`. In a function block (reference mode) it is a
value: a structure instance, an :class:`ArrayValue`.

Example:
    >>> from softplc import DINT, REAL
    >>> @struct
    ... class Part:
    ...     id = Field(DINT)
    ...     weight = Field(REAL, 1.5)
    >>> p = Part(id=7)
    >>> p.id, p.weight
    (7, 1.5)
    >>> [path for path, _ in leaves(ARRAY(Part, 2), "recs")]
    ['recs[0].id', 'recs[0].weight', 'recs[1].id', 'recs[1].weight']
"""

from __future__ import annotations

import copy
import enum
import itertools
import math
import sys
from collections.abc import Iterator
from typing import Any, TypeVar

from softplc.errors import ConfigError
from softplc.iectypes import TypeRuleError, coerce, make
from softplc.limits import MAX_ARRAY_LENGTH
from softplc.types import IecType, enum_members, enum_storage, is_enum_class

__all__ = [
    "ARRAY",
    "ArrayType",
    "ArrayValue",
    "ElemType",
    "EnumClass",
    "Field",
    "convert_value",
    "default_value",
    "describe",
    "is_struct",
    "leaf_count",
    "leaf_values",
    "leaves",
    "storage_name",
    "struct",
    "struct_fields",
]

#: An enumeration type (an ``IntEnum`` class).
EnumClass = type[enum.IntEnum]
#: What an array element or a scalar may be: an elementary type, an enumeration or a
#: structure (a ``@struct`` class).
ElemType = IecType | EnumClass | type

T = TypeVar("T", bound=type)


def describe(t: object) -> str:
    """A type as a person writes it (``INT``, ``Phase``, ``ARRAY(Part, 4)``)."""
    if isinstance(t, ArrayType):
        return repr(t)
    return t.__name__ if isinstance(t, type) else str(t)


def storage_name(t: object) -> str:
    """The IEC type a scalar of type ``t`` is stored as (an enumeration: INT, DINT...)."""
    if isinstance(t, IecType):
        return t.name
    if is_enum_class(t):
        return enum_storage(t).name  # type: ignore[arg-type]
    raise ConfigError(f"{describe(t)} is not an elementary type")


class ArrayType:
    """A fixed-size array of an elementary type, enumeration or structure, with one or
    more dimensions, each indexed from 0: ``ARRAY(REAL, 8)``, ``ARRAY(INT, 3, 4)``.

    Example:
        >>> from softplc import REAL
        >>> ARRAY(REAL, 8), ARRAY(REAL, 2, 3).length
        (ARRAY(REAL, 8), 6)
    """

    __slots__ = ("dims", "elem")

    def __init__(self, elem: object, *dims: int) -> None:
        if not (isinstance(elem, IecType) or is_enum_class(elem) or is_struct(elem)):
            raise ConfigError(
                f"ARRAY(): the element type must be an IEC type, an IntEnum or a @struct "
                f"class, got {elem!r} (for several dimensions write ARRAY(T, n, m))"
            )
        if not dims:
            raise ConfigError(f"ARRAY({describe(elem)}): give the length of each dimension")
        for n in dims:
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(
                    f"ARRAY({describe(elem)}, {', '.join(map(repr, dims))}): each length must "
                    "be an int >= 1"
                )
        total = math.prod(dims)
        if total > MAX_ARRAY_LENGTH:
            # Checked here, before anything allocates one entry per element.
            raise ConfigError(
                f"ARRAY({describe(elem)}, {', '.join(map(str, dims))}): an array holds at most "
                f"{MAX_ARRAY_LENGTH} elements (hint: declare a smaller array; see Limits in "
                "docs/programs.md)"
            )
        self.elem: ElemType = elem  # type: ignore[assignment]
        self.dims: tuple[int, ...] = tuple(dims)

    @property
    def length(self) -> int:
        """Number of elements (all dimensions)."""
        return math.prod(self.dims)

    @property
    def name(self) -> str:
        """The storage type's name of scalar elements (what each is declared as)."""
        return storage_name(self.elem)

    def indices(self) -> Iterator[tuple[int, ...]]:
        """Every index, row-major (the last dimension moves fastest)."""
        return itertools.product(*(range(n) for n in self.dims))

    def __repr__(self) -> str:
        return f"ARRAY({describe(self.elem)}, {', '.join(map(str, self.dims))})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArrayType) and self.elem == other.elem and self.dims == other.dims

    def __hash__(self) -> int:
        return hash((ArrayType, self.dims))


def ARRAY(elem: object, *dims: int) -> ArrayType:
    """An array type for declarations: ``Memory(ARRAY(INT, 10))``, several dimensions
    ``ARRAY(REAL, 3, 4)``, of structures ``ARRAY(Part, 8)``."""
    return ArrayType(elem, *dims)


def index_text(ix: tuple[int, ...]) -> str:
    """``[1]``, ``[1,2]``: how an element's index reads in a variable name."""
    return "[" + ",".join(map(str, ix)) + "]"


# -- structures -----------------------------------------------------------------------------


class Field:
    """A field of a ``@struct`` class: its type (elementary, enumeration, structure,
    array, or the name of a structure declared later) and default value."""

    def __init__(self, type: object, default: Any = None) -> None:
        self.type = type
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, inst: Any, owner: type | None = None) -> Any:
        if inst is None:
            return self
        return inst.__dict__["_softplc_vals"][self.name]

    def __set__(self, inst: Any, value: Any) -> None:
        t = struct_fields(type(inst))[self.name]
        inst.__dict__["_softplc_vals"][self.name] = convert_value(
            t, value, f"{type(inst).__name__}.{self.name}"
        )

    def __repr__(self) -> str:
        return f"Field({describe(self.type)})"


def is_struct(obj: object) -> bool:
    """True for a ``@struct`` class."""
    return isinstance(obj, type) and "_softplc_struct" in vars(obj)


def struct(cls: T) -> T:
    """Class decorator that makes a class a structure type (and a value class): its
    :class:`Field` attributes are the fields, in order."""
    if not isinstance(cls, type):
        raise ConfigError(f"@struct decorates a class, not {cls!r}")
    fields = {
        k: v
        for klass in reversed(cls.__mro__)
        for k, v in vars(klass).items()
        if isinstance(v, Field)
    }
    if not fields:
        raise ConfigError(f"struct {cls.__name__} has no Field attributes")
    cls._softplc_struct = fields  # type: ignore[attr-defined]
    cls._softplc_resolved = None  # type: ignore[attr-defined]
    _BY_NAME[(cls.__module__, cls.__name__)] = cls

    def __init__(self: Any, **values: Any) -> None:
        resolved = struct_fields(cls)
        self.__dict__["_softplc_vals"] = {
            n: default_value(t, fields[n].default, f"{cls.__name__}.{n}")
            for n, t in resolved.items()
        }
        for k, v in values.items():
            if k not in resolved:
                raise TypeError(
                    f"{cls.__name__} has no field {k!r} (fields: {', '.join(resolved)})"
                )
            setattr(self, k, v)

    def __repr__(self: Any) -> str:
        vals = self.__dict__["_softplc_vals"]
        return f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in vals.items())})"

    def __eq__(self: Any, other: object) -> bool:
        return type(other) is type(self) and bool(
            self.__dict__["_softplc_vals"] == other.__dict__["_softplc_vals"]
        )

    def __deepcopy__(self: Any, memo: dict[int, Any]) -> Any:
        new = object.__new__(type(self))
        new.__dict__["_softplc_vals"] = copy.deepcopy(self.__dict__["_softplc_vals"], memo)
        return new

    for name, fn in (
        ("__init__", __init__),
        ("__repr__", __repr__),
        ("__eq__", __eq__),
        ("__hash__", None),
        ("__deepcopy__", __deepcopy__),
    ):
        setattr(cls, name, fn)
    return cls


def struct_fields(cls: type) -> dict[str, Any]:
    """The fields of structure ``cls`` with their types resolved (a name becomes the
    structure it names). A structure that contains itself is a :class:`ConfigError`
    naming the chain."""
    resolved: dict[str, Any] | None = cls._softplc_resolved  # type: ignore[attr-defined]
    if resolved is not None:
        return resolved
    _check_recursion(cls, [])
    out = {n: _resolve(f.type, cls, n) for n, f in cls._softplc_struct.items()}  # type: ignore[attr-defined]
    cls._softplc_resolved = out  # type: ignore[attr-defined]
    return out


# The structures declared so far, by module and name: where a field naming a structure
# declared later (Field("Node")) finds it, wherever in its module it was declared.
_BY_NAME: dict[tuple[str, str], type] = {}


def _resolve(t: object, owner: type, field: str) -> Any:
    """A field's type with a structure name looked up in the owner's module."""
    if isinstance(t, str):
        found = _BY_NAME.get((owner.__module__, t)) or vars(
            sys.modules.get(owner.__module__, object())
        ).get(t)
        if not is_struct(found):
            raise ConfigError(
                f"struct {owner.__name__}.{field}: {t!r} is not a @struct class of module "
                f"{owner.__module__}"
            )
        return found
    if isinstance(t, (ArrayType, IecType)) or is_enum_class(t) or is_struct(t):
        return t
    raise ConfigError(
        f"struct {owner.__name__}.{field}: the type must be an IEC type, an IntEnum, a "
        f"@struct class or ARRAY(...), got {t!r}"
    )


def _check_recursion(cls: type, stack: list[tuple[type, str]]) -> None:
    """Walks the structures ``cls`` contains; meeting one of the structures on the way
    again is a recursive type."""
    for n, f in cls._softplc_struct.items():  # type: ignore[attr-defined]
        t = _resolve(f.type, cls, n)
        inner = t.elem if isinstance(t, ArrayType) else t
        if not is_struct(inner):
            continue
        assert isinstance(inner, type)
        step = [*stack, (cls, n)]
        if any(c is inner for c, _ in step):
            chain = " -> ".join(f"{c.__name__}.{x}" for c, x in step)
            raise ConfigError(
                f"struct {inner.__name__} contains itself ({chain} -> {inner.__name__}); a "
                "structure cannot contain itself (hint: keep the records in an array and "
                "refer to one by its index)"
            )
        _check_recursion(inner, step)


# -- values -----------------------------------------------------------------------------------


class ArrayValue(list):  # type: ignore[type-arg]
    """An array held in a function block (reference mode): strict 0-based indexing,
    ``a[i]`` or ``a[i, j]`` (``a[i]`` of a 2-D array is its row)."""

    __slots__ = ("dims", "elem", "what")

    def __init__(self, t: ArrayType, values: list[Any], what: str) -> None:
        super().__init__(values)
        self.elem: ElemType = t.elem
        self.dims = t.dims
        self.what = what

    def _flat(self, i: Any) -> int | tuple[int, tuple[int, ...]]:
        ix = i if isinstance(i, tuple) else (i,)
        if len(ix) > len(self.dims):
            raise IndexError(f"{self.what} has {len(self.dims)} dimensions, got {len(ix)} indices")
        flat = 0
        for d, k in enumerate(ix):
            if isinstance(k, bool) or not isinstance(k, int):
                raise TypeError(f"array index must be an integer, got {type(k).__name__}")
            n = self.dims[d]
            if not 0 <= k < n:
                dim = f" (dimension {d + 1})" if len(self.dims) > 1 else ""
                raise IndexError(f"index {int(k)} of {self.what}{dim} is out of range 0..{n - 1}")
            flat = flat * n + int(k)
        if len(ix) < len(self.dims):
            rest = self.dims[len(ix) :]
            return flat * math.prod(rest), rest
        return flat

    def __getitem__(self, i: Any) -> Any:
        f = self._flat(i)
        if isinstance(f, tuple):
            start, _ = f
            return _RowOf(self, start, len(i) if isinstance(i, tuple) else 1)
        return list.__getitem__(self, f)

    def __setitem__(self, i: Any, v: Any) -> None:
        f = self._flat(i)
        if isinstance(f, tuple):
            raise TypeError(f"assign elements of {self.what}, not a whole row")
        list.__setitem__(self, f, convert_value(self.elem, v, self.what))

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("iterate over an array with for i in range(N) and index it")

    def __deepcopy__(self, memo: dict[int, Any]) -> ArrayValue:
        return ArrayValue(
            ArrayType(self.elem, *self.dims),
            [copy.deepcopy(list.__getitem__(self, k), memo) for k in range(len(self))],
            self.what,
        )


class _RowOf:
    """``a[i]`` of a multi-dimensional :class:`ArrayValue`: indexes the remaining
    dimensions, reading and writing ``a``'s elements."""

    __slots__ = ("base", "given", "start")

    def __init__(self, base: ArrayValue, start: int, given: int) -> None:
        self.base, self.start, self.given = base, start, given

    def _at(self, i: Any) -> int | _RowOf:
        ix = i if isinstance(i, tuple) else (i,)
        # Checked by the base array, which names the dimension that is out of range.
        self.base._flat((0,) * self.given + ix)
        dims = self.base.dims[self.given :]
        flat = 0
        for d, k in enumerate(ix):
            flat = flat * dims[d] + int(k)
        if len(ix) < len(dims):
            return _RowOf(
                self.base, self.start + flat * math.prod(dims[len(ix) :]), self.given + len(ix)
            )
        return self.start + flat

    def __getitem__(self, i: Any) -> Any:
        at = self._at(i)
        return at if isinstance(at, _RowOf) else list.__getitem__(self.base, at)

    def __setitem__(self, i: Any, v: Any) -> None:
        at = self._at(i)
        if isinstance(at, _RowOf):
            raise TypeError(f"assign elements of {self.base.what}, not a whole row")
        list.__setitem__(self.base, at, convert_value(self.base.elem, v, self.base.what))


def default_value(t: object, given: Any, what: str) -> Any:
    """The initial value of a declaration of type ``t`` (``given``, or the default):
    zero, an enumeration's first member, a structure at its fields' defaults, an array
    of them (``given`` may be a list with one value per element)."""
    if isinstance(t, ArrayType):
        n = t.length
        if isinstance(given, (list, tuple)):
            if len(given) != n:
                raise ConfigError(f"{what}: {len(given)} initial values for {n} elements")
            vals = [default_value(t.elem, g, what) for g in given]
        else:
            vals = [default_value(t.elem, given, what) for _ in range(n)]
        return ArrayValue(t, vals, what)
    if is_struct(t):
        assert isinstance(t, type)
        if given is None:
            return t()
        return convert_value(t, given, what)
    if is_enum_class(t):
        assert isinstance(t, type) and issubclass(t, enum.IntEnum)
        if given is None:
            return next(iter(t))  # IEC: an enumeration starts at its first member
        try:
            return given if isinstance(given, t) else t(given)
        except ValueError:
            raise ConfigError(
                f"{what}: the initial value {given!r} is not a member of {t.__name__}"
            ) from None
    assert isinstance(t, IecType)
    if given is None:
        return make(t.name, 0)
    if t.is_string:
        cap = t.size - 1
        if not isinstance(given, str):
            raise ConfigError(f"{what}: the initial value of a {t.name} is text, got {given!r}")
        if len(given) > cap:
            raise ConfigError(
                f"{what}: the initial text has {len(given)} characters, more than a {t.name} holds"
            )
    if t.name == "BOOL" and not isinstance(given, bool) and given in (0, 1):
        return bool(given)
    try:
        return coerce(given, t.name)
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError(
            f"{what}: the initial value {given!r} does not fit {t.name}: {e}"
        ) from None


def convert_value(t: object, v: Any, what: str) -> Any:
    """``v`` as a value of type ``t`` (reference mode): an implicit conversion for an
    elementary type, a member for an enumeration, a copy for a structure (from a value
    or a view of the same structure). Raises :class:`TypeRuleError`."""
    if is_struct(t):
        assert isinstance(t, type)
        src_type = getattr(v, "_softplc_struct_type", type(v))
        if src_type is not t:
            raise TypeRuleError(f"{what} is a {t.__name__}; got {describe(src_type)}")
        new = object.__new__(t)
        new.__dict__["_softplc_vals"] = {
            n: _copy_field(ft, getattr(v, n), f"{what}.{n}") for n, ft in struct_fields(t).items()
        }
        return new
    if isinstance(t, ArrayType):
        raise TypeRuleError(f"assign the elements of {what}, not the whole array")
    if is_enum_class(t):
        assert isinstance(t, type)
        if isinstance(v, t):
            return v
        names = ", ".join(f"{t.__name__}.{n}" for n, _ in enum_members(t)[:3])
        raise TypeRuleError(
            f"{what} is {t.__name__}: assign one of its members ({names}, ...), not {v!r}"
        )
    assert isinstance(t, IecType)
    return coerce(v, t.name)


def _copy_field(t: object, v: Any, what: str) -> Any:
    """A copy of a field's value (an array element by element)."""
    if isinstance(t, ArrayType):
        vals = [_copy_field(t.elem, _elem_of(v, ix), what) for ix in t.indices()]
        return ArrayValue(t, vals, what)
    return convert_value(t, v, what)


def _elem_of(a: Any, ix: tuple[int, ...]) -> Any:
    return a[ix if len(ix) > 1 else ix[0]]


def leaves(t: object, path: str) -> list[tuple[str, Any]]:
    """The elementary leaves of a declaration of type ``t`` named ``path``, in layout
    order: ``(path, type)`` with the type an IEC type or an enumeration."""
    if isinstance(t, ArrayType):
        return [leaf for ix in t.indices() for leaf in leaves(t.elem, path + index_text(ix))]
    if is_struct(t):
        assert isinstance(t, type)
        return [leaf for n, ft in struct_fields(t).items() for leaf in leaves(ft, f"{path}.{n}")]
    return [(path, t)]


def leaf_count(t: object) -> int:
    """Number of elementary leaves of type ``t`` (without listing them)."""
    if isinstance(t, ArrayType):
        return t.length * leaf_count(t.elem)
    if is_struct(t):
        assert isinstance(t, type)
        return sum(leaf_count(ft) for ft in struct_fields(t).values())
    return 1


def leaf_values(t: object, value: Any) -> list[Any]:
    """The values of the leaves of ``value`` (of type ``t``), in :func:`leaves` order."""
    if isinstance(t, ArrayType):
        return [x for ix in t.indices() for x in leaf_values(t.elem, _elem_of(value, ix))]
    if is_struct(t):
        assert isinstance(t, type)
        return [x for n, ft in struct_fields(t).items() for x in leaf_values(ft, getattr(value, n))]
    return [value]
