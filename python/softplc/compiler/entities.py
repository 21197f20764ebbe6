"""Entities: what a path such as ``self.level``, ``self.recs[i]`` or
``self.timers[2].Q`` names, and how to read, write, index, enter or call it.

Each entity has a place in one of two memories:

* the process image, where every scalar is a named variable (``p.arr[3]``): an
  :class:`ImageLoc` is the name, possibly with runtime indices (:class:`Term`) in it,
  which then stand for every name the index can give (an image table);
* the program's cells, where aggregates lie in consecutive cells: a :class:`CellLoc`
  is a first cell plus runtime indices, each with the stride it moves by.

A path with no runtime index reads a variable or a cell directly; with one, an indexed
instruction (``ldx``, ``ldc``, ``fbx``) checks the index and names the array in its
fault; with several, each index is checked (``chk``) and combined into one flat index
into a table of every variable or cell the path can reach (``ldx``, ``ldt``, ``fbt``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from softplc.compiler.model import CellLoc, Context, Entity, Frame, ImageLoc, Term, Val
from softplc.compiler.shapes import (
    ArrayShape,
    BuiltinFbShape,
    FbField,
    ScalarShape,
    Shape,
    StructShape,
    UserFbShape,
)

if TYPE_CHECKING:
    from types import FunctionType

__all__ = [
    "BuiltinFb",
    "CellArray",
    "CellScalar",
    "CellStruct",
    "Constant",
    "ImageArray",
    "ImageScalar",
    "ImageStruct",
    "MethodRef",
    "ProgramScope",
    "Scalar",
    "UserFb",
    "aggregate_shape",
    "describe_shape",
    "element_at",
    "image_at",
    "image_entity",
]


# -- scalars ----------------------------------------------------------------------------


class Scalar(Entity):
    """A place holding one value of type ``t``."""

    t: str


@dataclass
class ImageScalar(Scalar):
    """A process-image variable (or, with runtime indices, one of a table)."""

    loc: ImageLoc
    t: str
    area: str
    label: str
    attr: str = ""

    def load(self, cx: Context, fr: Frame, node: ast.AST) -> Val:
        c = cx.temp(self.t)
        terms = self.loc.terms
        if not terms:
            cx.b.emit("ld", c, cx.b.var(self.loc.name, self.t))
        else:
            tab, i = self.table_index(cx)
            pc = cx.b.emit("ldx", c, tab, cx.cell_of(i))
            if len(terms) == 1:
                cx.b.indexed(pc, terms[0].label)
        return Val(self.t, c, fresh=True)

    def table_index(self, cx: Context) -> tuple[int, Val]:
        """The image table of every variable this place can be, and the (checked, flat)
        index into it."""
        tab = cx.image_table(self.loc, self.t)
        return tab, cx.flat_index(self.loc.terms)

    def check_store(self, cx: Context, fr: Frame, node: ast.AST, *, subscript: bool) -> None:
        if self.area == "input":
            if subscript:
                raise cx.err(fr, node, "assignment to an input", "inputs are written by drivers")
            raise cx.err(
                fr,
                node,
                "assignment to an input",
                f"{self.attr or self.label} is an Input (written by drivers)",
                "declare it as Memory or Output if the program sets it",
            )

    def store(self, cx: Context, v: Val, fr: Frame, node: ast.AST) -> None:
        v = cx.coerce(v, self.t, fr, node)
        terms = self.loc.terms
        if not terms:
            cx.b.emit("st", cx.b.var(self.loc.name, self.t), cx.cell_of(v))
            return
        tab, i = self.table_index(cx)
        pc = cx.b.emit("stx", tab, cx.cell_of(i), cx.cell_of(v))
        if len(terms) == 1:
            cx.b.indexed(pc, terms[0].label)


@dataclass
class CellScalar(Scalar):
    """A cell of a block instance (or, with runtime indices, one of many).

    ``owner`` is the block type it belongs to (``TON``, a user block's class name) and
    ``role`` its field's role; ``outside`` is true when the path reaches it from
    outside its block (``self.t.Q``), where only inputs may be set.
    """

    loc: CellLoc
    t: str
    role: str
    label: str
    owner: str = ""
    field: str = ""
    outside: bool = False
    builtin: bool = False

    def load(self, cx: Context, fr: Frame, node: ast.AST) -> Val:
        terms = self.loc.terms
        if not terms:
            return Val(self.t, self.loc.base, mutable=True)
        c = cx.temp(self.t)
        if len(terms) == 1:
            t = terms[0]
            pc = cx.b.emit("ldc", c, self.loc.base, t.stride, t.n, cx.cell_of(t.idx))
            cx.b.indexed(pc, t.label)
        else:
            tab = cx.b.ctable(self.loc.cells())
            cx.b.emit("ldt", c, tab, cx.cell_of(cx.flat_index(terms)))
        return Val(self.t, c)

    def check_store(self, cx: Context, fr: Frame, node: ast.AST, *, subscript: bool) -> None:
        if not self.outside or self.role == "input":
            return
        if self.builtin:
            if subscript:
                raise cx.err(
                    fr, node, "assignment to a block output", f"{self.field} is an {self.role}"
                )
            raise cx.err(
                fr,
                node,
                "assignment to a block output",
                f"{self.owner}.{self.field} is an {self.role}",
                "only inputs can be set",
            )
        raise cx.err(
            fr,
            node,
            "assignment to a block output",
            f"{self.owner}.{self.field} is an output",
        )

    def store(self, cx: Context, v: Val, fr: Frame, node: ast.AST) -> None:
        v = cx.coerce(v, self.t, fr, node)
        terms = self.loc.terms
        if not terms:
            if not (v.fresh and v.cell is not None and cx.b.retarget(v.cell, self.loc.base)):
                cx.b.emit("mov", self.loc.base, cx.cell_of(v))
        elif len(terms) == 1:
            t = terms[0]
            pc = cx.b.emit("stc", self.loc.base, t.stride, t.n, cx.cell_of(t.idx), cx.cell_of(v))
            cx.b.indexed(pc, t.label)
        else:
            tab = cx.b.ctable(self.loc.cells())
            cx.b.emit("stt", tab, cx.cell_of(cx.flat_index(terms)), cx.cell_of(v))

    def written_cells(self) -> set[int]:
        """Every cell a store through this place may write."""
        return set(self.loc.cells())


# -- arrays -------------------------------------------------------------------------------


def _dims_text(label: str, dims: tuple[int, ...], d: int) -> str:
    return f"{label} (dimension {d + 1})" if len(dims) > 1 else label


def _index_terms(
    cx: Context,
    idx: list[tuple[ast.expr, Val]],
    dims: tuple[int, ...],
    fr: Frame,
    node: ast.AST,
    label: str,
) -> list[Val]:
    """Checks the indices of one subscript against the array's dimensions."""
    if len(idx) > len(dims):
        raise cx.err(
            fr,
            node,
            "indexing",
            f"{label} has {len(dims)} dimension{'s' if len(dims) > 1 else ''}, "
            f"this gives {len(idx)} indices",
        )
    return [cx.check_index(n, v, dims[k], fr) for k, (n, v) in enumerate(idx)]


@dataclass
class ImageArray(Entity):
    """An array of process-image variables (``p.arr[0]``, ``p.grid[1,2]``); ``done``
    holds the indices of the dimensions already given (``self.grid[i]``)."""

    loc: ImageLoc
    elem: Shape
    dims: tuple[int, ...]
    area: str
    label: str
    name: str
    done: tuple[str | Term, ...] = ()

    def index(
        self, cx: Context, idx: list[tuple[ast.expr, Val]], fr: Frame, node: ast.AST
    ) -> Entity:
        left = self.dims[len(self.done) // 2 :] if self.done else self.dims
        vals = _index_terms(cx, idx, left, fr, node, self.label)
        parts = list(self.done)
        d0 = len(self.dims) - len(left)
        for k, v in enumerate(vals):
            d = d0 + k
            parts.append("[" if d == 0 else ",")
            if v.is_const:
                parts.append(str(v.int_value))
            else:
                src = ast.unparse(idx[k][0])
                parts.append(Term(v, self.dims[d], 0, _dims_text(self.name, self.dims, d), src))
        label = f"{self.label}[{', '.join(ast.unparse(n) for n, _ in idx)}]"
        if len(parts) // 2 < len(self.dims):
            return replace(self, done=tuple(parts), label=label)
        loc = self.loc.plus(*parts, "]")
        return image_at(self.elem, loc, self.area, label)

    def load(self, cx: Context, fr: Frame, node: ast.AST) -> Val:
        raise cx.err(fr, node, "value", f"{ast.unparse(node)} is not a value")


@dataclass
class CellArray(Entity):
    """An array in the cells: of scalars, of standard blocks or of user blocks."""

    loc: CellLoc
    shape: ArrayShape
    role: str
    label: str
    name: str
    owner: str = ""
    path: str = ""
    outside: bool = False
    given: int = 0

    def index(
        self, cx: Context, idx: list[tuple[ast.expr, Val]], fr: Frame, node: ast.AST
    ) -> Entity:
        dims = self.shape.dims
        vals = _index_terms(cx, idx, dims[self.given :], fr, node, self.label)
        loc = self.loc
        consts: list[str] = []
        for k, v in enumerate(vals):
            d = self.given + k
            stride = self.shape.stride(d)
            if v.is_const:
                loc = loc.at(v.int_value * stride)
                consts.append(str(v.int_value))
            else:
                src = ast.unparse(idx[k][0])
                loc = loc.with_term(Term(v, dims[d], stride, _dims_text(self.name, dims, d), src))
                consts.append(src)
        label = f"{self.label}[{', '.join(ast.unparse(n) for n, _ in idx)}]"
        given = self.given + len(vals)
        if given < len(dims):
            return replace(self, loc=loc, given=given, label=label)
        path = f"{self.path}[{','.join(consts)}]" if self.path else ""
        return element_at(
            self.shape.elem, loc, self.role, label, self.owner, self.outside, path=path
        )


def element_at(
    shape: Shape,
    loc: CellLoc,
    role: str,
    label: str,
    owner: str,
    outside: bool,
    *,
    path: str = "",
    field: str = "",
    builtin: bool = False,
) -> Entity:
    """The entity of ``shape`` at ``loc`` in the cells."""
    if isinstance(shape, ScalarShape):
        return CellScalar(loc, shape.t, role, label, owner, field or label, outside, builtin)
    if isinstance(shape, ArrayShape):
        return CellArray(loc, shape, role, label, path or label, owner, path, outside)
    if isinstance(shape, BuiltinFbShape):
        return BuiltinFb(loc, shape, label)
    if isinstance(shape, UserFbShape):
        return UserFb(loc, shape, label, path)
    if isinstance(shape, StructShape):
        return CellStruct(loc, shape, role, label, owner, outside, path or label)
    raise AssertionError(shape)  # pragma: no cover


def _no_field(cx: Context, shape: StructShape, name: str, fr: Frame, node: ast.AST) -> Exception:
    fields = ", ".join(shape.fields)
    return cx.err(
        fr,
        node,
        "structure field",
        f"{shape.cls.__name__} has no field {name!r}",
        f"fields: {fields}",
    )


def _struct_value(cx: Context, shape: StructShape, fr: Frame, node: ast.AST) -> Exception:
    return cx.err(
        fr,
        node,
        "value",
        f"{ast.unparse(node)} is a structure ({shape.cls.__name__}), not a value",
        "read one of its fields, or assign it whole to a variable of the same structure",
    )


@dataclass
class ImageStruct(Entity):
    """A structure variable of the program (its fields are image variables)."""

    loc: ImageLoc
    shape: StructShape
    area: str
    label: str

    def member(self, cx: Context, name: str, fr: Frame, node: ast.AST, *, outside: bool) -> Entity:
        f = self.shape.fields.get(name)
        if f is None:
            raise _no_field(cx, self.shape, name, fr, node)
        return image_at(f.shape, self.loc.plus(f".{name}"), self.area, f"{self.label}.{name}", name)

    def load(self, cx: Context, fr: Frame, node: ast.AST) -> Val:
        raise _struct_value(cx, self.shape, fr, node)


@dataclass
class CellStruct(Entity):
    """A structure in the cells (a variable of a block, an element of an array)."""

    loc: CellLoc
    shape: StructShape
    role: str
    label: str
    owner: str
    outside: bool
    path: str

    def member(self, cx: Context, name: str, fr: Frame, node: ast.AST, *, outside: bool) -> Entity:
        f = self.shape.fields.get(name)
        if f is None:
            raise _no_field(cx, self.shape, name, fr, node)
        return element_at(
            f.shape,
            self.loc.at(f.offset),
            self.role,
            f"{self.label}.{name}",
            self.owner,
            self.outside,
            path=f"{self.path}.{name}",
            field=name,
        )

    def load(self, cx: Context, fr: Frame, node: ast.AST) -> Val:
        raise _struct_value(cx, self.shape, fr, node)


def image_at(shape: Shape, loc: ImageLoc, area: str, label: str, attr: str = "") -> Entity:
    """The entity of ``shape`` at ``loc`` in the process image."""
    if isinstance(shape, ScalarShape):
        return ImageScalar(loc, shape.t, area, label, attr)
    if isinstance(shape, ArrayShape):
        return ImageArray(loc, shape.elem, shape.dims, area, label, loc.text)
    if isinstance(shape, StructShape):
        return ImageStruct(loc, shape, area, label)
    raise AssertionError(shape)  # pragma: no cover


# -- blocks -------------------------------------------------------------------------------


@dataclass
class BuiltinFb(Entity):
    """An instance of a standard block (or, with runtime indices, one of an array)."""

    loc: CellLoc
    shape: BuiltinFbShape
    label: str

    @property
    def kind(self) -> str:
        return self.shape.kind

    def member(self, cx: Context, name: str, fr: Frame, node: ast.AST, *, outside: bool) -> Entity:
        fields = self.shape.fields
        f = fields.get(name)
        if f is None or (f.role == "internal" and self.loc.terms):
            hint = (
                f"fields: {', '.join(n for n, x in fields.items() if x.role != 'internal')}"
                if not self.loc.terms
                else ""
            )
            raise cx.err(fr, node, f"{self.kind} field", f"{self.kind} has no {name!r}", hint)
        if f.role == "internal":
            raise cx.err(fr, node, f"{self.kind} field", f"{name} is internal state")
        assert isinstance(f.shape, ScalarShape)
        return CellScalar(
            self.loc.at(f.offset), f.shape.t, f.role, name, self.kind, name, True, True
        )

    def load(self, cx: Context, fr: Frame, node: ast.AST) -> Val:
        raise cx.err(
            fr,
            node,
            "value",
            f"{ast.unparse(node)} is not a value",
            "read one of its outputs, e.g. self.timer.Q",
        )

    def input_cells(self, name: str) -> set[int]:
        """The cells a store to input ``name`` may write."""
        f = self.shape.fields.get(name)
        return set() if f is None else set(self.loc.at(f.offset).cells())

    def run(self, cx: Context) -> None:
        """Emits the block's execution (its inputs are set)."""
        terms = self.loc.terms
        if not terms:
            cx.b.emit(f"fb.{self.kind}", self.loc.base)
        elif len(terms) == 1:
            t = terms[0]
            pc = cx.b.emit(f"fbx.{self.kind}", self.loc.base, t.stride, t.n, cx.cell_of(t.idx))
            cx.b.indexed(pc, t.label)
        else:
            tab = cx.b.ctable(self.loc.cells())
            cx.b.emit(f"fbt.{self.kind}", tab, cx.cell_of(cx.flat_index(terms)))


@dataclass
class UserFb(Entity):
    """An instance of a user block (or, with runtime indices, one of an array). Its
    scan is inlined with ``self`` bound to this entity, so the same code serves every
    element of an array of blocks."""

    loc: CellLoc
    shape: UserFbShape
    label: str
    path: str

    @property
    def cls(self) -> type:
        return self.shape.cls

    def member(self, cx: Context, name: str, fr: Frame, node: ast.AST, *, outside: bool) -> Entity:
        f = self.shape.fields.get(name)
        if f is None:
            if not outside:
                method = self.method(name)
                if method is not None:
                    return method
                return Constant(cx.class_constant(self.cls, name, fr, node))
            raise cx.err(
                fr, node, "block variable", f"{self.cls.__name__} has no variable {name!r}"
            )
        if outside:
            if f.role == "memory":
                raise cx.err(
                    fr,
                    node,
                    "block variable",
                    f"{name} is internal to {self.cls.__name__}",
                    "declare it as Output to read it from outside",
                )
            if f.role == "block":
                raise cx.err(fr, node, "block member", f"{name} cannot be accessed from outside")
        return self.field_entity(name, f, outside)

    def field_entity(self, name: str, f: FbField, outside: bool) -> Entity:
        label = name if not outside else f"{self.label}.{name}"
        path = f"{self.path}.{name}" if self.path else ""
        return element_at(
            f.shape,
            self.loc.at(f.offset),
            f.role,
            label,
            self.cls.__name__,
            outside,
            path=path,
            field=name,
        )

    def method(self, name: str) -> MethodRef | None:
        import inspect

        raw = getattr(self.cls, name, None)
        if inspect.isfunction(raw):
            return MethodRef(raw, self)
        return None

    def load(self, cx: Context, fr: Frame, node: ast.AST) -> Val:
        raise cx.err(
            fr,
            node,
            "value",
            f"{ast.unparse(node)} is not a value",
            "read one of its outputs, e.g. self.timer.Q",
        )

    def input_cells(self, name: str) -> set[int]:
        """The cells a store to input ``name`` may write."""
        f = self.shape.fields.get(name)
        if f is None or f.role != "input":
            return set()
        loc = self.loc.at(f.offset)
        return {c + k for c in loc.cells() for k in range(f.shape.cells)}


@dataclass
class Constant(Entity):
    """A plain class attribute read as ``self.NAME``: a constant."""

    v: Val
    label: str = ""

    def load(self, cx: Context, fr: Frame, node: ast.AST) -> Val:
        return self.v

    def check_store(self, cx: Context, fr: Frame, node: ast.AST, *, subscript: bool) -> None:
        raise cx.err(
            fr,
            node,
            "assignment to a constant",
            f"{ast.unparse(node)} is a constant (a plain class attribute)",
            "declare a variable to change it: NAME = Memory(TYPE, initial)",
        )


@dataclass
class MethodRef(Entity):
    """A method of the program or block class, called on ``owner``."""

    fn: FunctionType
    owner: Entity
    label: str = ""


# -- the program ----------------------------------------------------------------------------


@dataclass
class ProgramScope(Entity):
    """``self`` in a program's scan and methods: its variables (in the image), its
    blocks (in the cells), its methods and class constants."""

    obj: object
    cls: type
    name: str
    attrs: dict[str, Entity]
    label: str = "self"

    def member(self, cx: Context, name: str, fr: Frame, node: ast.AST, *, outside: bool) -> Entity:
        ent = self.attrs.get(name)
        if ent is not None:
            return ent
        import inspect

        raw = getattr(self.cls, name, None)
        if inspect.isfunction(raw):
            return MethodRef(raw, self)
        return Constant(cx.class_constant(self.cls, name, fr, node))


def image_entity(root: str, shape: Shape, area: str, label: str, attr: str) -> Entity:
    """The entity of a program variable of ``shape`` named ``root`` in the image."""
    return image_at(shape, ImageLoc((root,)), area, label, attr)


def aggregate_shape(ent: Entity) -> Shape | None:
    """The shape of what an aggregate entity names (an array's remaining dimensions),
    or None for a scalar, block or other entity."""
    if isinstance(ent, ImageArray):
        given = len(ent.done) // 2
        return ArrayShape(ent.elem, ent.dims[given:])
    if isinstance(ent, CellArray):
        return ArrayShape(ent.shape.elem, ent.shape.dims[ent.given :])
    if isinstance(ent, (ImageStruct, CellStruct)):
        return ent.shape
    return None


def describe_shape(ent: Entity) -> str:
    """What an entity is, for messages (``ARRAY(INT, 4)``, ``Part``, ``a value``)."""
    shape = aggregate_shape(ent)
    if shape is not None:
        return shape.describe()
    if isinstance(ent, (BuiltinFb, UserFb)):
        return f"a {ent.shape.describe()} block"
    if isinstance(ent, Scalar):
        return f"a {ent.t} value"
    return ent.what()
