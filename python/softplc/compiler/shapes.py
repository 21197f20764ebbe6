"""Shapes: the compile-time types of storage (a scalar, an array, a standard block, a
user block), and where each part of a shape lies in the program's cells.

A shape is laid out in consecutive cells: a scalar takes one cell (a STRING(n) its
header and ``ceil(n / 8)`` data cells), an array its
elements one after another (row-major), a standard block the fields of its VM layout
(``softplc_vm::fb``), a user block its variables and nested blocks in declaration
order. The same shape in the process image is a set of named variables instead
(``p.arr[3]``); see :mod:`softplc.compiler.entities`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from softplc import stdlib
from softplc.iectypes import string_capacity

__all__ = [
    "ArrayShape",
    "BuiltinFbShape",
    "FbField",
    "ScalarShape",
    "Shape",
    "StructShape",
    "UserFbShape",
    "fb_fields",
]


class Shape:
    """Base of the shapes; ``cells`` is the number of cells it takes."""

    __slots__ = ()

    @property
    def cells(self) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        """What it is, for messages (``ARRAY(INT, 4)``, ``TON``)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ScalarShape(Shape):
    """One value of an elementary (or enumerated) type."""

    t: str

    @property
    def cells(self) -> int:
        # A STRING(n): its header cell and its characters, eight a cell.
        cap = string_capacity(self.t)
        return 1 if cap is None else 1 + -(-cap // 8)

    def describe(self) -> str:
        return self.t


@dataclass(frozen=True)
class ArrayShape(Shape):
    """An array of ``elem`` with one or more dimensions, indexed from 0."""

    elem: Shape
    dims: tuple[int, ...]

    @property
    def cells(self) -> int:
        return self.elem.cells * math.prod(self.dims)

    def describe(self) -> str:
        return f"ARRAY({self.elem.describe()}, {', '.join(map(str, self.dims))})"

    def stride(self, dim: int) -> int:
        """Cells between consecutive indices of dimension ``dim`` (row-major)."""
        return self.elem.cells * math.prod(self.dims[dim + 1 :])


@dataclass(frozen=True)
class FbField:
    """A field of a block or structure: offset from the first cell, shape and role
    (``input``, ``output``, ``internal`` for a standard block's own state, ``memory``
    for a user block's ``Memory`` variables, ``block`` for a nested block, ``field``
    for a structure's field)."""

    offset: int
    shape: Shape
    role: str


def fb_fields(kind: str) -> dict[str, FbField]:
    """The fields of standard block ``kind`` in the VM's cell order."""
    cls = stdlib.FB_TYPES[kind]
    return {n: FbField(i, ScalarShape(t), r) for i, (n, t, r, _) in enumerate(cls.FIELDS)}


@dataclass(frozen=True)
class BuiltinFbShape(Shape):
    """An instance of a standard function block (TON, CTU, ...)."""

    kind: str

    @property
    def cells(self) -> int:
        return len(stdlib.FB_TYPES[self.kind].FIELDS)

    def describe(self) -> str:
        return self.kind

    @property
    def fields(self) -> dict[str, FbField]:
        return fb_fields(self.kind)


@dataclass(eq=False)
class UserFbShape(Shape):
    """An instance of a ``@function_block`` class: its variables and nested blocks at
    fixed offsets (every instance of a class has the same layout)."""

    cls: type
    fields: dict[str, FbField] = field(default_factory=dict)
    size: int = 0

    @property
    def cells(self) -> int:
        return self.size

    def describe(self) -> str:
        return self.cls.__name__


@dataclass(eq=False)
class StructShape(Shape):
    """A ``@struct`` class: its fields at fixed offsets, in declaration order."""

    cls: type
    fields: dict[str, FbField] = field(default_factory=dict)
    size: int = 0

    @property
    def cells(self) -> int:
        return self.size

    def describe(self) -> str:
        return self.cls.__name__
