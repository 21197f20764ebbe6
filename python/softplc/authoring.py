"""Authoring control programs: typed declarations and the ``@program`` class form.

A program is a class whose attributes declare its variables and function blocks and
whose ``scan`` method runs once a cycle::

    from softplc import program, Input, Output, Memory, BOOL, REAL, TON, s

    @program
    class TankLevel:
        level = Input(REAL, "%ID0")
        pump = Output(BOOL, "%QX0.0")
        low_limit = Memory(REAL, 20.0)      # initial value
        dry_run = TON(PT=s(5))              # a function block instance

        def scan(self):
            if self.level < self.low_limit:
                self.pump = True
            self.dry_run(IN=self.pump and self.level < 1.0)

Each instance becomes a program of the engine; its variables are declared under the
instance name (``tank_level.level``, arrays as ``name[0]``, ``name[1]``, ...). The
instance name defaults to the class name in snake_case; pass ``name=`` to choose
another (``TankLevel(name="tank2")``). The same source runs compiled (natively, see
``docs/programs.md`` for the subset) or in reference mode (as Python, with the typed
values of :mod:`softplc.iectypes`, giving identical results).

Protocol with the engine (``softplc.engine``), kept stable for both execution modes:

* :func:`is_program` tells a declared program from a plain callable.
* :func:`program_variables` lists ``VarSpec`` rows; the engine declares each as
  ``<instance>.<attr>`` and hands the resulting indices to :func:`bind`.
* Reference mode: the engine calls :func:`reference_scan` ``(instance, io)`` on the scan
  thread with the GIL; descriptors read and write the image through ``io.get/set``.
* Compiled mode: the engine hands the instance to
  :func:`softplc.compiler.compile_instance`, which returns the serialized intermediate
  form whose variable references are the full engine names.

The module is named ``authoring`` (not ``program``) so that no name shadows it: the
package exports the decorator as ``softplc.program``.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from softplc import _scanstate, _views
from softplc.datatypes import (
    ARRAY,
    ArrayType,
    EnumClass,
    convert_value,
    default_value,
    describe,
    is_struct,
    leaf_count,
    leaf_values,
    leaves,
    storage_name,
)
from softplc.errors import ConfigError, StateError
from softplc.iectypes import coerce
from softplc.limits import MAX_VARIABLES
from softplc.stdlib.blocks import FunctionBlock
from softplc.types import IecType, enum_members, is_enum_class

__all__ = [
    "ARRAY",
    "ArrayType",
    "Global",
    "GlobalRef",
    "Input",
    "Memory",
    "Output",
    "Var",
    "VarSpec",
    "bind",
    "function_block",
    "instance_name",
    "is_function_block",
    "is_program",
    "program",
    "program_globals",
    "program_variables",
    "reference_scan",
]

_AREAS = {"input": "%I", "output": "%Q", "memory": "%M"}


class Var:
    """A declared variable: area, type, optional address and values.

    The type is an elementary type (``BOOL``, ``REAL``, ...), an enumeration (an
    ``IntEnum`` class), a structure (a :func:`softplc.struct` class) or an
    :func:`ARRAY` of one of these. Use the subclasses :class:`Input`, :class:`Output`
    and :class:`Memory`. In a :func:`function_block` class they declare the block's
    inputs, outputs and internal variables instead (no addresses).

    A variable of a structure or array type is, in the process image, one variable per
    elementary leaf (``rec.id``, ``recs[3].id``, ``grid[1,2]``); with an address, the
    leaves take consecutive places from it (see docs/programs.md).

    ``retain=True`` keeps a memory variable's value across restarts and power loss;
    ``persistent=True`` also across a cold restart and a changed program (see
    docs/programs.md, "Retain and persistent").

    ``min`` and ``max`` bound what writers outside the programs may set (a Modbus
    client, the API's ``write``, a stimulus file): a write outside the range is refused
    (Modbus exception 03) and logged, the value never reaches the program.
    ``writable=False`` refuses every external write. The programs themselves and forces
    are not bound by them. An initial value outside the range is an error.

    Example:
        >>> from softplc import Memory, TIME, ms, s
        >>> half_period = Memory(TIME, ms(500), min=ms(10), max=s(10))
        >>> half_period.min, half_period.max
        (10000000, 10000000000)
    """

    area = "memory"

    def __init__(
        self,
        type: Any,
        address: str | None = None,
        *,
        initial: Any = None,
        safe: Any = None,
        unit: str = "",
        min: Any = None,
        max: Any = None,
        writable: bool = True,
        retain: bool = False,
        persistent: bool = False,
    ) -> None:
        name = self.__class__.__name__
        if not (isinstance(type, (IecType, ArrayType)) or is_enum_class(type) or is_struct(type)):
            raise ConfigError(
                f"{name}(): the first argument must be an IEC type such as BOOL or REAL, an "
                f"IntEnum, a @struct class, or ARRAY(type, n), got {type!r}"
            )
        if address is not None and (
            not isinstance(address, str)
            or not address.strip().upper().startswith(_AREAS[self.area])
        ):
            raise ConfigError(
                f"{name}({describe(type)}, {address!r}): the address must be a direct address "
                f"in the {self.area} area ({_AREAS[self.area]}...)"
            )
        self.type = type
        self.address = address
        self.initial = initial
        self.safe = safe
        self.unit = unit
        self.attr = ""
        if not isinstance(writable, bool):
            raise ConfigError(
                f"{name}({describe(type)}): writable must be True or False, got {writable!r}"
            )
        self.writable = writable
        if (min is not None or max is not None) and not isinstance(self.elem, IecType):
            raise ConfigError(
                f"{name}({describe(type)}): only an elementary type (or an array of one) takes "
                "a min or max (an enumeration limits external writes to its members)"
            )
        self.min = self._bound(min, "min")
        self.max = self._bound(max, "max")
        for flag, what in ((retain, "retain"), (persistent, "persistent")):
            if not isinstance(flag, bool):
                raise ConfigError(
                    f"{name}({describe(type)}): {what} must be True or False, got {flag!r}"
                )
        if (retain or persistent) and self.area != "memory":
            raise ConfigError(
                f"{name}({describe(type)}): only Memory variables can be "
                f"{'persistent' if persistent else 'retain'} (an input is read afresh and an "
                "output takes its safe value at every start)"
            )
        self.retain: str | None = "persistent" if persistent else ("retain" if retain else None)
        # An initial or safe value that does not fit fails here, where it is written.
        default_value(type, initial, f"{name}({describe(type)})")
        if safe is not None:
            default_value(type, safe, f"{name}({describe(type)}) safe value")

    def _bound(self, v: Any, what: str) -> Any:
        """A range bound as the engine stores it (the engine checks the rest: order,
        initial value inside)."""
        if v is None:
            return None
        if self.elem_type == "BOOL":
            raise ConfigError(f"{self.__class__.__name__}(BOOL): a BOOL has no {what}")
        try:
            return _engine_value(coerce(v, self.elem_type))
        except (TypeError, ValueError, OverflowError) as e:
            raise ConfigError(
                f"{self.__class__.__name__}({describe(self.type)}): {what}={v!r} does not fit "
                f"{self.elem_type}: {e}"
            ) from None

    @property
    def elem(self) -> Any:
        """The (element) type: elementary, enumeration or structure."""
        return self.type.elem if isinstance(self.type, ArrayType) else self.type

    @property
    def elem_type(self) -> str:
        """Name of the IEC type the (element) values are stored as (not for a
        structure)."""
        return storage_name(self.elem)

    @property
    def enum(self) -> EnumClass | None:
        """The enumeration of the (element) values, or None."""
        e = self.elem
        return e if is_enum_class(e) else None

    @property
    def length(self) -> int | None:
        """Number of array elements (all dimensions), or None for a non-array."""
        return self.type.length if isinstance(self.type, ArrayType) else None

    @property
    def scalar(self) -> bool:
        """True for an elementary or enumeration variable (one leaf)."""
        return isinstance(self.type, IecType) or is_enum_class(self.type)

    def leaves(self, attr: str) -> list[tuple[str, Any]]:
        """The elementary leaves of the variable named ``attr``: ``(path, type)``."""
        return leaves(self.type, attr)

    def spec(self, attr: str) -> VarSpec:
        """The declaration of a scalar variable named ``attr`` (module-level globals)."""
        rows = _specs(self, attr)
        if len(rows) != 1:
            raise ConfigError(
                f"{attr}: a module-level variable is elementary (for a structure or array, "
                "declare it with Global(...) or on a program)"
            )
        return rows[0]

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = name

    def initial_value(self, index: int | None = None) -> Any:
        """The typed initial value (of element ``index`` for an array of scalars)."""
        value = default_value(self.type, self.initial, self.attr or describe(self.type))
        if isinstance(self.type, ArrayType):
            return list.__getitem__(value, index or 0)
        return value

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        d = instance.__dict__
        if "_softplc_vals" in d:  # inside a function block
            return d["_softplc_vals"][self.attr]
        if d.get("_softplc_io") is None and self.scalar:
            raise StateError(
                f"{type(instance).__name__}.{self.attr} is only readable during a scan"
            )
        return _views.read(instance, self.attr, self.type)

    def __set__(self, instance: Any, value: Any) -> None:
        d = instance.__dict__
        if "_softplc_vals" in d:
            if isinstance(self.type, ArrayType):
                raise TypeError(f"assign elements of array {self.attr}, not the whole array")
            d["_softplc_vals"][self.attr] = convert_value(self.type, value, self.attr)
            return
        if d.get("_softplc_io") is None:
            raise StateError(
                f"{type(instance).__name__}.{self.attr} is only writable during a scan"
            )
        _views.write(instance, self.attr, self.type, value)

    def __repr__(self) -> str:
        extra = f", {self.address!r}" if self.address else ""
        return f"{self.__class__.__name__}({describe(self.type)}{extra})"


class BlockArray(list):  # type: ignore[type-arg]
    """An array of function block instances: strict 0-based indexing."""

    __slots__ = ()

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"array index must be an integer, got {type(i).__name__}")
        if not 0 <= i < len(self):
            raise IndexError(f"array index {int(i)} out of range 0..{len(self) - 1}")
        return list.__getitem__(self, int(i))


class Input(Var):
    """An input variable (%I), written by drivers and plant models, read by programs.

    Example:
        >>> from softplc import Input, REAL
        >>> Input(REAL, "%ID0")
        Input(REAL, '%ID0')
    """

    area = "input"


class Output(Var):
    """An output variable (%Q). ``safe`` is the value it takes in STOP and FAULT
    (default 0/FALSE).

    Example:
        >>> from softplc import Output, BOOL
        >>> Output(BOOL, "%QX0.0", safe=False)
        Output(BOOL, '%QX0.0')
    """

    area = "output"


class Memory(Var):
    """A memory variable (%M). The second positional argument is the initial value,
    unless it is a direct address string (``"%MW10"``).

    Example:
        >>> from softplc import Memory, REAL
        >>> Memory(REAL, 20.0).initial
        20.0
    """

    area = "memory"

    def __init__(
        self,
        type: Any,
        initial: Any = None,
        *,
        address: str | None = None,
        unit: str = "",
        min: Any = None,
        max: Any = None,
        writable: bool = True,
        retain: bool = False,
        persistent: bool = False,
    ) -> None:
        if isinstance(initial, str) and initial.strip().startswith("%"):
            address, initial = initial, None
        super().__init__(
            type,
            address,
            initial=initial,
            unit=unit,
            min=min,
            max=max,
            writable=writable,
            retain=retain,
            persistent=persistent,
        )


class Global(Var):
    """A variable shared by programs and tasks, declared once at module level (in the
    program file or a module of globals) and named by its module attribute::

        part_count = Global(DINT)                 # memory area by default
        line_speed = Global(REAL, 1.5, address="%MD10")
        conveyor = Global(Belt)                   # a structure, like any variable

    A program refers to it with a class attribute, ``count = part_count``; then
    ``self.count`` reads and writes the global ``part_count`` in both modes. Every
    program that names it, in any task, shares the one variable. Two different
    declarations of one name must agree on type, area and address, or adding the
    second is an error naming both.

    Tasks never preempt each other, so a write by one program is seen by every
    program that runs after it: later in the same task cycle, and in any task whose
    cycle starts after it (see "Global variables" in docs/programs.md).

    Example:
        >>> from softplc import DINT
        >>> g = Global(DINT, 5, name="parts")
        >>> g.global_name, g.initial
        ('parts', 5)
    """

    def __init__(
        self,
        type: Any,
        initial: Any = None,
        *,
        area: str = "memory",
        address: str | None = None,
        name: str | None = None,
        safe: Any = None,
        unit: str = "",
        min: Any = None,
        max: Any = None,
        writable: bool = True,
        retain: bool = False,
        persistent: bool = False,
    ) -> None:
        if area not in _AREAS:
            raise ConfigError(f"Global(): area must be input, output or memory, got {area!r}")
        self.area = area
        if safe is not None and area != "output":
            raise ConfigError(f"Global({describe(type)}): only an output has a safe value")
        super().__init__(
            type,
            address,
            initial=initial,
            safe=safe,
            unit=unit,
            min=min,
            max=max,
            writable=writable,
            retain=retain,
            persistent=persistent,
        )
        self.name = name
        caller = sys._getframe(1)
        self._module = str(caller.f_globals.get("__name__", ""))
        self.site = f"{caller.f_code.co_filename}:{caller.f_lineno}"

    def __set_name__(self, owner: type, name: str) -> None:
        # A program class names the global under an alias: @program handles it.
        pass

    @property
    def global_name(self) -> str:
        """The engine name: ``name=``, or the module attribute it is declared as."""
        if self.name is None:
            mod = sys.modules.get(self._module)
            found = [k for k, v in vars(mod).items() if v is self] if mod is not None else []
            if not found:
                raise ConfigError(
                    f"Global({describe(self.type)}) declared at {self.site} has no name: "
                    "declare it at module level (name = Global(...)) or pass name="
                )
            self.name = found[0]
        return self.name

    def same_as(self, other: Global) -> bool:
        """True when ``other`` declares the same variable (type, area, address)."""
        return (
            describe(self.type) == describe(other.type)
            and self.area == other.area
            and (self.address or "").upper() == (other.address or "").upper()
        )

    def specs(self) -> list[VarSpec]:
        """One declaration per elementary leaf, named from the global's name."""
        return _specs(self, self.global_name)


class GlobalRef(Var):
    """A program's class attribute that names a :class:`Global` (``count =
    part_count``): ``self.count`` is the global. Made by ``@program``."""

    def __init__(self, target: Global, alias: str) -> None:
        self.area = target.area
        self.type = target.type
        self.address = target.address
        self.initial = target.initial
        self.safe = target.safe
        self.unit = target.unit
        self.min = target.min
        self.max = target.max
        self.writable = target.writable
        self.attr = alias
        self.target = target

    def __repr__(self) -> str:
        return f"GlobalRef({self.target.global_name})"


@dataclass(frozen=True)
class VarSpec:
    """One variable of a program as the engine declares it."""

    attr: str
    area: str
    type: str
    address: str | None
    initial: Any
    safe: Any
    unit: str
    min: Any = None
    max: Any = None
    writable: bool = True
    values: tuple[int, ...] | None = None
    enum: EnumClass | None = None
    retain: str | None = None

    def declare(self, native: Any, name: str) -> int:
        """Declares the variable as ``name`` on a native engine; returns its index."""
        return int(
            native.declare(
                name,
                self.area,
                self.type,
                self.address,
                self.initial,
                self.safe,
                self.unit,
                min=self.min,
                max=self.max,
                writable=self.writable,
                values=None if self.values is None else list(self.values),
                retain=self.retain,
            )
        )


T = TypeVar("T", bound=type)


def _snake(name: str) -> str:
    s1 = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s1).lower()


def _set_methods(cls: type, **methods: Callable[..., Any]) -> None:
    """Installs ``methods`` on the decorated class ``cls``, in order. (Assigning
    ``cls.__call__ = f`` directly is a method-assign error for mypy, which knows ``cls``
    only as a ``type``.)"""
    for name, fn in methods.items():
        setattr(cls, name, fn)


def _is_block(v: Any) -> bool:
    return isinstance(v, FunctionBlock) or is_function_block(v)


def _collect(cls: type) -> tuple[dict[str, Var], dict[str, Any]]:
    fields: dict[str, Var] = {}
    blocks: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for k, v in vars(klass).items():
            if isinstance(v, Global):
                if klass is cls:
                    # self.<k> is the global: a descriptor of its own per alias.
                    v = GlobalRef(v, k)
                    setattr(cls, k, v)
                else:
                    v = GlobalRef(v, k)
                fields[k] = v
            elif isinstance(v, Var):
                fields[k] = v
            elif _is_block(v):
                blocks[k] = v
            elif isinstance(v, (list, tuple)) and v and all(_is_block(x) for x in v):
                if len({type(x) for x in v}) != 1:
                    raise ConfigError(
                        f"{cls.__name__}.{k}: an array of function blocks must hold one block type"
                    )
                blocks[k] = list(v)
    return fields, blocks


def _instantiate_blocks(obj: Any, blocks: dict[str, Any]) -> None:
    for k, v in blocks.items():
        obj.__dict__[k] = BlockArray(copy.deepcopy(v)) if isinstance(v, list) else copy.deepcopy(v)


def program(cls: T) -> T:
    """Class decorator that makes a class a control program.

    The class needs a ``scan(self)`` method; its :class:`Input`, :class:`Output` and
    :class:`Memory` attributes become the program's variables, and its function block
    attributes (``TON(PT=s(5))``, user blocks, or lists of them for arrays) become
    per-instance blocks.
    """
    if not isinstance(cls, type):
        raise ConfigError(f"@program decorates a class, not {cls!r}")
    if not callable(getattr(cls, "scan", None)):
        raise ConfigError(f"program class {cls.__name__} has no scan(self) method")
    fields, blocks = _collect(cls)
    count = sum(leaf_count(v.type) for v in fields.values() if not isinstance(v, GlobalRef))
    if count > MAX_VARIABLES:
        raise ConfigError(
            f"program class {cls.__name__} declares {count} process-image variables (array "
            f"elements count one each); a program may declare at most {MAX_VARIABLES} "
            "(hint: declare smaller arrays, or split the program)"
        )
    cls._softplc_fields = fields  # type: ignore[attr-defined]
    cls._softplc_blocks = blocks  # type: ignore[attr-defined]
    user_init = cls.__dict__.get("__init__")

    def __init__(self: Any, *args: Any, name: str | None = None, **kwargs: Any) -> None:
        self.__dict__["_softplc_name"] = name or _snake(cls.__name__)
        self.__dict__["_softplc_io"] = None
        self.__dict__["_softplc_index"] = {}
        _instantiate_blocks(self, blocks)
        if user_init is not None:
            user_init(self, *args, **kwargs)
        elif args or kwargs:
            raise TypeError(f"{cls.__name__}() takes only name=")

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def function_block(cls: T) -> T:
    """Class decorator for a user-defined function block, in the same form as a
    program: :class:`Input` attributes are its inputs, :class:`Output` its outputs,
    :class:`Memory` its internal variables (no addresses), plus nested blocks and a
    ``scan(self)`` method. An instance is called with keyword inputs, like the standard
    blocks::

        @function_block
        class Debounce:
            raw = Input(BOOL)
            stable = Output(BOOL)
            timer = TON(PT=ms(20))

            def scan(self):
                self.timer(IN=self.raw)
                self.stable = self.timer.Q

    Example:
        >>> from softplc import BOOL, Input, Output
        >>> @function_block
        ... class Inverter:
        ...     x = Input(BOOL)
        ...     y = Output(BOOL)
        ...     def scan(self):
        ...         self.y = not self.x
        >>> inv = Inverter()
        >>> inv(x=False)
        >>> inv.y
        True
    """
    if not isinstance(cls, type):
        raise ConfigError(f"@function_block decorates a class, not {cls!r}")
    if not callable(getattr(cls, "scan", None)):
        raise ConfigError(f"function block class {cls.__name__} has no scan(self) method")
    fields, blocks = _collect(cls)
    for k, v in fields.items():
        if isinstance(v, GlobalRef):
            raise ConfigError(
                f"{cls.__name__}.{k}: a function block does not name globals (hint: pass the "
                "value as an input; globals are named by programs)"
            )
        if v.address is not None:
            raise ConfigError(f"{cls.__name__}.{k}: variables of a function block have no address")
    cls._softplc_fb_fields = fields  # type: ignore[attr-defined]
    cls._softplc_blocks = blocks  # type: ignore[attr-defined]
    inputs = {k for k, v in fields.items() if v.area == "input"}

    def __init__(self: Any, **params: Any) -> None:
        vals = {
            k: default_value(v.type, v.initial, f"{cls.__name__}.{k}") for k, v in fields.items()
        }
        self.__dict__["_softplc_vals"] = vals
        _instantiate_blocks(self, blocks)
        for k, val in params.items():
            if k not in inputs:
                raise TypeError(
                    f"{cls.__name__} has no input {k!r} (inputs: {', '.join(sorted(inputs))})"
                )
            setattr(self, k, val)

    def __call__(self: Any, **kw: Any) -> None:
        for k, val in kw.items():
            if k not in inputs:
                raise TypeError(
                    f"{cls.__name__} has no input {k!r} (inputs: {', '.join(sorted(inputs))})"
                )
            setattr(self, k, val)
        self.scan()

    def __deepcopy__(self: Any, memo: dict[int, Any]) -> Any:
        # Typed as a class, not as a ``type`` instance, so that mypy resolves ``__new__`` to
        # the class's own allocator (what runs here) rather than to ``type.__new__``.
        klass: type[object] = cls
        new = klass.__new__(klass)
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    def __repr__(self: Any) -> str:
        return f"{cls.__name__}()"

    _set_methods(
        cls, __init__=__init__, __call__=__call__, __deepcopy__=__deepcopy__, __repr__=__repr__
    )
    return cls


def is_program(obj: Any) -> bool:
    """True for instances (and classes) made with ``@program``."""
    return hasattr(obj, "_softplc_fields")


def is_function_block(obj: Any) -> bool:
    """True for instances (and classes) made with ``@function_block``."""
    return hasattr(obj, "_softplc_fb_fields")


def instance_name(obj: Any) -> str:
    """The instance name a program's variables are declared under."""
    return str(obj.__dict__["_softplc_name"])


_ADDR = re.compile(r"^%([IQM])([XBWDL]?)(\d+)(?:\.(\d+))?$", re.IGNORECASE)


def _element_addresses(address: str, n: int, attr: str, step: int = 1) -> list[str]:
    """Consecutive addresses from ``address``: bits go 0..7 then the next byte; other
    sizes step by ``step`` units of their size (a STRING(n) by n + 1 bytes)."""
    m = _ADDR.match(address.strip())
    if m is None:
        # Let the engine report the malformed address on the first element.
        return [address] + [address] * (n - 1)
    area, size, index, bit = (
        m.group(1).upper(),
        (m.group(2) or "X").upper(),
        int(m.group(3)),
        m.group(4),
    )
    out = []
    if size == "X":
        pos = index * 8 + int(bit or 0)
        for k in range(n):
            p = pos + k
            out.append(f"%{area}X{p // 8}.{p % 8}")
    else:
        if bit is not None:
            raise ConfigError(f"{attr}: only bit addresses take a .bit suffix ({address!r})")
        out = [f"%{area}{size}{index + k * step}" for k in range(n)]
    return out


_SIZE_BYTES = {"X": 1, "B": 1, "W": 2, "D": 4, "L": 8}
_LETTER = {1: "B", 2: "W", 4: "D", 8: "L"}


def _packed_addresses(address: str, types: list[str], attr: str) -> list[str]:
    """The addresses of the leaves of an aggregate placed from ``address``: in order,
    each at the next offset aligned to its size; BOOLs one bit after another, a BOOL
    after a wider leaf starting a new byte."""
    m = _ADDR.match(address.strip())
    if m is None:
        return [address] * len(types)  # the engine reports the malformed address
    area, size, index = m.group(1).upper(), (m.group(2) or "X").upper(), int(m.group(3))
    if size == "X":
        byte, bit = index, int(m.group(4) or 0)
    else:
        if m.group(4) is not None:
            raise ConfigError(f"{attr}: only bit addresses take a .bit suffix ({address!r})")
        byte, bit = index * _SIZE_BYTES[size], 0
    out = []
    for t in types:
        n = _type_size(t)
        if t.startswith("STRING("):
            # A string: its length byte and characters, from the next byte.
            if bit:
                byte, bit = byte + 1, 0
            out.append(f"%{area}B{byte}")
            byte += n
            continue
        if n == 0:
            out.append(f"%{area}X{byte}.{bit}")
            bit += 1
            if bit == 8:
                byte, bit = byte + 1, 0
            continue
        if bit:
            byte, bit = byte + 1, 0
        byte = -(-byte // n) * n  # aligned up to the leaf's size
        out.append(f"%{area}{_LETTER[n]}{byte // n}")
        byte += n
    return out


def _type_size(name: str) -> int:
    """Bytes of a scalar of IEC type ``name`` (BOOL: 0, a bit)."""
    from softplc.types import type_from_name

    return type_from_name(name).size


def _engine_value(v: Any) -> Any:
    """A typed value as the plain Python number the engine stores."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    return v


def _specs(v: Var, attr: str) -> list[VarSpec]:
    """One declaration per elementary leaf of variable ``attr``."""
    what = f"{attr} ({describe(v.type)})"
    leafs = v.leaves(attr)
    types = [storage_name(t) for _, t in leafs]
    inits = leaf_values(v.type, default_value(v.type, v.initial, what))
    safes = (
        leaf_values(v.type, default_value(v.type, v.safe, f"{what} safe value"))
        if v.safe is not None
        else [None] * len(leafs)
    )
    if v.address is None:
        addrs: list[str | None] = [None] * len(leafs)
    elif v.scalar:
        addrs = [v.address]  # as written: the engine checks it against the type
    elif isinstance(v.type, ArrayType) and not is_struct(v.type.elem):
        step = v.elem.size if isinstance(v.elem, IecType) and v.elem.is_string else 1
        addrs = list(_element_addresses(v.address, len(leafs), attr, step))
    else:
        addrs = list(_packed_addresses(v.address, types, attr))
    rows = []
    for (path, lt), tname, init, safe, addr in zip(leafs, types, inits, safes, addrs, strict=True):
        e = lt if is_enum_class(lt) else None
        rows.append(
            VarSpec(
                path,
                v.area,
                tname,
                addr,
                _engine_value(init),
                None if safe is None else _engine_value(safe),
                v.unit,
                v.min,
                v.max,
                v.writable,
                None if e is None else tuple(x for _, x in enum_members(e)),
                e,
                v.retain,
            )
        )
    return rows


def program_variables(obj: Any) -> list[VarSpec]:
    """The variables of a program instance, in declaration order, one per elementary
    leaf (``attr``, ``arr[3]``, ``grid[1,2]``, ``rec.id``, ``recs[2].pos[0]``)."""
    rows: list[VarSpec] = []
    for attr, v in obj._softplc_fields.items():
        if not isinstance(v, GlobalRef):
            rows.extend(_specs(v, attr))
    return rows


def program_globals(obj: Any) -> list[tuple[str, Global]]:
    """The globals a program names: ``(alias, global)``."""
    return [(attr, v.target) for attr, v in obj._softplc_fields.items() if isinstance(v, GlobalRef)]


def bind(obj: Any, indices: dict[str, int]) -> None:
    """Records the engine's variable index of each attribute (array elements as
    ``attr[i]``)."""
    obj.__dict__["_softplc_index"] = dict(indices)


def reference_scan(obj: Any, io: Any) -> None:
    """Runs one scan of ``obj`` in reference mode (plain Python)."""
    obj.__dict__["_softplc_io"] = io
    _scanstate.current_io.append(io)
    try:
        obj.scan()
    finally:
        _scanstate.current_io.pop()
        obj.__dict__["_softplc_io"] = None
