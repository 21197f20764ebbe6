"""Where a program's things live: its variables in the process image (by name), its
function block instances in cells, laid out once when compilation starts, and the
symbol table of every stateful cell.

Every instance of a user block class has the same layout (:class:`UserFbShape`),
computed from the class the first time it is met, so an array of user blocks is a run
of equal instances that one piece of code can index at run time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from softplc import stdlib
from softplc.authoring import GlobalRef, is_function_block
from softplc.compiler.entities import (
    BuiltinFb,
    CellArray,
    ProgramScope,
    UserFb,
    image_entity,
)
from softplc.compiler.irbuilder import IrBuilder
from softplc.compiler.model import CellLoc, Entity
from softplc.compiler.shapes import (
    ArrayShape,
    BuiltinFbShape,
    FbField,
    ScalarShape,
    Shape,
    StructShape,
    UserFbShape,
)
from softplc.compiler.typenames import enum_type
from softplc.datatypes import ArrayType, is_struct, struct_fields
from softplc.types import IecType, is_enum_class

__all__ = ["Layouts"]

#: Symbol-table role of each field role.
_SYMBOL_ROLE = {"input": "input", "output": "output", "internal": "internal", "memory": "internal"}


_STRUCTS: dict[type, StructShape] = {}


def type_shape(t: object) -> Shape:
    """The shape of a declared type: elementary, enumeration, structure or array."""
    if isinstance(t, ArrayType):
        return ArrayShape(type_shape(t.elem), t.dims)
    if is_struct(t):
        assert isinstance(t, type)
        shape = _STRUCTS.get(t)
        if shape is None:
            shape = StructShape(t)
            off = 0
            for name, ft in struct_fields(t).items():
                fs = type_shape(ft)
                shape.fields[name] = FbField(off, fs, "field")
                off += fs.cells
            shape.size = off
            _STRUCTS[t] = shape
        return shape
    if is_enum_class(t):
        return ScalarShape(enum_type(t))  # type: ignore[arg-type]
    assert isinstance(t, IecType)
    return ScalarShape(t.name)


def var_shape(var: object) -> Shape:
    """The shape of an ``Input``/``Output``/``Memory`` declaration."""
    from softplc.authoring import Var

    assert isinstance(var, Var)
    return type_shape(var.type)


class Layouts:
    """Allocates the blocks of a program in the cells of ``b`` and records their
    symbols. ``declaring`` is told which declaration is being laid out (for the error
    when the cells run out)."""

    def __init__(self, b: IrBuilder, declaring: Callable[[type, str], None]) -> None:
        self.b = b
        self.declaring = declaring
        self.user: dict[type, UserFbShape] = {}

    # -- shapes -------------------------------------------------------------------------

    def block_shape(self, inst: object) -> Shape:
        """The shape of a block attribute's value: one block or a list of them."""
        if isinstance(inst, list):
            return ArrayShape(self.block_shape(inst[0]), (len(inst),))
        if isinstance(inst, stdlib.FunctionBlock):
            return BuiltinFbShape(type(inst).__name__)
        assert is_function_block(inst)
        return self.user_shape(type(inst), inst)

    def user_shape(self, cls: type, sample: object) -> UserFbShape:
        """The layout of user block class ``cls`` (``sample`` is an instance, whose
        nested block lists give the array lengths)."""
        shape = self.user.get(cls)
        if shape is not None:
            return shape
        shape = UserFbShape(cls)
        off = 0
        fields: dict[str, FbField] = {}
        for attr, var in cls._softplc_fb_fields.items():  # type: ignore[attr-defined]
            s = var_shape(var)
            fields[attr] = FbField(off, s, var.area)
            off += s.cells
        for attr in cls._softplc_blocks:  # type: ignore[attr-defined]
            s = self.block_shape(sample.__dict__[attr])
            fields[attr] = FbField(off, s, "block")
            off += s.cells
        shape.fields = fields
        shape.size = off
        self.user[cls] = shape
        return shape

    # -- allocation ---------------------------------------------------------------------

    def alloc(self, inst: object, path: str) -> tuple[int, Shape]:
        """Allocates the cells of a block attribute's value (one block or a list), with
        each instance's initial values; returns the first cell and the shape."""
        shape = self.block_shape(inst)
        base = len(self.b.cells)
        self.fill(inst, shape, path)
        return base, shape

    def fill(self, inst: object, shape: Shape, path: str) -> None:
        if isinstance(shape, ArrayShape):
            assert isinstance(inst, list)
            for i, x in enumerate(inst):
                self.fill(x, shape.elem, f"{path}[{i}]")
        elif isinstance(shape, BuiltinFbShape):
            assert isinstance(inst, stdlib.FunctionBlock)
            for n, t, role, _ in inst.FIELDS:
                c = self.b.cell(t, inst.__dict__[n])
                self.b.symbol(f"{path}.{n}", t, _SYMBOL_ROLE[role], c)
        elif isinstance(shape, UserFbShape):
            vals = inst.__dict__["_softplc_vals"]
            for attr, f in shape.fields.items():
                if f.role == "block":
                    self.fill(inst.__dict__[attr], f.shape, f"{path}.{attr}")
                else:
                    self.fill_var(vals[attr], f.shape, f"{path}.{attr}", f.role)
        else:  # pragma: no cover
            raise AssertionError(shape)

    def fill_var(self, value: object, shape: Shape, path: str, role: str) -> None:
        """The cells of one variable of a user block (a scalar, array or structure)."""
        if isinstance(shape, ArrayShape):
            assert isinstance(value, list)
            for k, ix in enumerate(itertools.product(*(range(n) for n in shape.dims))):
                v = list.__getitem__(value, k)
                self.fill_var(v, shape.elem, f"{path}[{','.join(map(str, ix))}]", role)
            return
        if isinstance(shape, StructShape):
            for name, f in shape.fields.items():
                self.fill_var(getattr(value, name), f.shape, f"{path}.{name}", role)
            return
        assert isinstance(shape, ScalarShape)
        c = self.b.cell(shape.t, value)
        self.b.symbol(path, shape.t, _SYMBOL_ROLE[role], c)

    # -- the program's self ---------------------------------------------------------------

    def program_scope(self, obj: object, name: str) -> ProgramScope:
        """``self`` of the program ``obj`` (instance name ``name``): its variables as
        image entities and its blocks allocated in cells."""
        cls = type(obj)
        attrs: dict[str, Entity] = {}
        for attr, var in cls._softplc_fields.items():  # type: ignore[attr-defined]
            # A global is named by its own name, not under the program's.
            root = var.target.global_name if isinstance(var, GlobalRef) else f"{name}.{attr}"
            attrs[attr] = image_entity(root, var_shape(var), var.area, f"self.{attr}", attr)
        for attr in cls._softplc_blocks:  # type: ignore[attr-defined]
            self.declaring(cls, attr)
            path = f"{name}.{attr}"
            base, shape = self.alloc(obj.__dict__[attr], path)
            attrs[attr] = self.entity(shape, CellLoc(base), attr, path)
        return ProgramScope(obj, cls, name, attrs)

    @staticmethod
    def entity(shape: Shape, loc: CellLoc, label: str, path: str) -> Entity:
        """The entity of a block (or array of blocks) allocated at ``loc``."""
        if isinstance(shape, BuiltinFbShape):
            return BuiltinFb(loc, shape, label)
        if isinstance(shape, UserFbShape):
            return UserFb(loc, shape, label, path)
        assert isinstance(shape, ArrayShape)
        return CellArray(loc, shape, "block", label, path, path=path)
