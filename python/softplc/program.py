"""Authoring control programs: typed declarations and the ``@program`` class form.

A program is a class whose attributes declare its variables and whose ``scan`` method
runs once a cycle::

    from softplc import program, Input, Output, Memory, BOOL, TIME, ms, now

    @program
    class Blink:
        lamp = Output(BOOL, "%QX0.0")
        half_period = Memory(TIME, ms(500))

        def scan(self):
            self.lamp = (now() // self.half_period) % 2 == 1

Each instance becomes a program of the engine; its variables are declared under the
instance name (``blink.lamp``). The instance name defaults to the class name in
snake_case; pass ``name=`` to choose another (``Blink(name="lamp2")``).

Protocol with the engine (``softplc.engine``), kept stable for both execution modes:

* :func:`is_program` tells a declared program from a plain callable.
* :func:`program_variables` lists ``VarSpec`` rows; the engine declares each as
  ``<instance>.<attr>`` and hands the resulting indices to :func:`bind`.
* Reference mode: the engine calls :func:`reference_scan` ``(instance, io)`` on the scan
  thread with the GIL; descriptors read and write the image through ``io.get/set``.
* Compiled mode: the engine calls :func:`compile_program` ``(instance)``, which returns
  the serialized intermediate form whose variable references are the full engine names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from softplc.errors import ConfigError, StateError
from softplc.types import IecType

__all__ = [
    "Input",
    "Output",
    "Memory",
    "Var",
    "VarSpec",
    "program",
    "now",
    "is_program",
    "program_variables",
    "instance_name",
]

_AREAS = {"input": "%I", "output": "%Q", "memory": "%M"}


class Var:
    """A declared variable of a program: area, type, optional address and values.

    Use the subclasses :class:`Input`, :class:`Output` and :class:`Memory`.
    """

    area = "memory"

    def __init__(
        self,
        type: IecType,
        address: str | None = None,
        *,
        initial: Any = None,
        safe: Any = None,
        unit: str = "",
    ) -> None:
        if not isinstance(type, IecType):
            raise ConfigError(
                f"{self.__class__.__name__}(): the first argument must be an IEC type such "
                f"as BOOL or REAL, got {type!r}"
            )
        if address is not None:
            if not isinstance(address, str) or not address.strip().upper().startswith(
                _AREAS[self.area]
            ):
                raise ConfigError(
                    f"{self.__class__.__name__}({type}, {address!r}): the address must be a "
                    f"direct address in the {self.area} area ({_AREAS[self.area]}...)"
                )
        self.type = type
        self.address = address
        self.initial = initial
        self.safe = safe
        self.unit = unit
        self.attr = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        io = instance.__dict__.get("_softplc_io")
        if io is None:
            raise StateError(
                f"{type(instance).__name__}.{self.attr} is only readable during a scan"
            )
        return io.get(instance.__dict__["_softplc_index"][self.attr])

    def __set__(self, instance: Any, value: Any) -> None:
        io = instance.__dict__.get("_softplc_io")
        if io is None:
            raise StateError(
                f"{type(instance).__name__}.{self.attr} is only writable during a scan"
            )
        io.set(instance.__dict__["_softplc_index"][self.attr], value)

    def __repr__(self) -> str:
        extra = f", {self.address!r}" if self.address else ""
        return f"{self.__class__.__name__}({self.type}{extra})"


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
        type: IecType,
        initial: Any = None,
        *,
        address: str | None = None,
        unit: str = "",
    ) -> None:
        if isinstance(initial, str) and initial.strip().startswith("%"):
            address, initial = initial, None
        super().__init__(type, address, initial=initial, unit=unit)


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


T = TypeVar("T", bound=type)


def _snake(name: str) -> str:
    s1 = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s1).lower()


def program(cls: T) -> T:
    """Class decorator that makes a class a control program.

    The class needs a ``scan(self)`` method; its :class:`Input`, :class:`Output` and
    :class:`Memory` attributes become the program's variables.
    """
    if not isinstance(cls, type):
        raise ConfigError(f"@program decorates a class, not {cls!r}")
    if not callable(getattr(cls, "scan", None)):
        raise ConfigError(f"program class {cls.__name__} has no scan(self) method")
    fields: dict[str, Var] = {}
    for klass in reversed(cls.__mro__):
        for k, v in vars(klass).items():
            if isinstance(v, Var):
                fields[k] = v
    cls._softplc_fields = fields  # type: ignore[attr-defined]
    user_init = cls.__dict__.get("__init__")

    def __init__(self: Any, *args: Any, name: str | None = None, **kwargs: Any) -> None:
        self.__dict__["_softplc_name"] = name or _snake(cls.__name__)
        self.__dict__["_softplc_io"] = None
        self.__dict__["_softplc_index"] = {}
        if user_init is not None:
            user_init(self, *args, **kwargs)
        elif args or kwargs:
            raise TypeError(f"{cls.__name__}() takes only name=")

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def is_program(obj: Any) -> bool:
    """True for instances (and classes) made with ``@program``."""
    return hasattr(obj, "_softplc_fields")


def instance_name(obj: Any) -> str:
    """The instance name a program's variables are declared under."""
    return str(obj.__dict__["_softplc_name"])


def program_variables(obj: Any) -> list[VarSpec]:
    """The variables of a program instance, in declaration order."""
    return [
        VarSpec(attr, v.area, v.type.name, v.address, v.initial, v.safe, v.unit)
        for attr, v in obj._softplc_fields.items()
    ]


def bind(obj: Any, indices: dict[str, int]) -> None:
    """Records the engine's variable index of each attribute."""
    obj.__dict__["_softplc_index"] = dict(indices)


_current_io: list[Any] = []


def reference_scan(obj: Any, io: Any) -> None:
    """Runs one scan of ``obj`` in reference mode (plain Python)."""
    obj.__dict__["_softplc_io"] = io
    _current_io.append(io)
    try:
        obj.scan()
    finally:
        _current_io.pop()
        obj.__dict__["_softplc_io"] = None


def compile_program(obj: Any) -> bytes:
    """Compiles a program instance to the engine's intermediate form."""
    from softplc import compiler  # noqa: PLC0415  (optional until compiled mode lands)

    result: bytes = compiler.compile_instance(obj)
    return result


def now() -> int:
    """The current cycle's ``now`` (TIME, ns). Every program of a cycle sees the same
    value; in virtual time it is the scheduled start of the cycle.

    Raises :class:`StateError` outside a scan.
    """
    if not _current_io:
        raise StateError("now() is only available during a scan")
    return int(_current_io[-1].now_ns)


ProgramLike = Callable[[Any], Any]
