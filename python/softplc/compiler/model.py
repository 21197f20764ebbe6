"""The vocabulary the parts of the compiler share: typed operands (:class:`Val`),
places in memory (:class:`Term`, :class:`CellLoc`, :class:`ImageLoc`), locals, loop
contexts, the frame of each inlined function, the :class:`Entity` interface and the
compiler services entities use (:class:`Context`).

They live in one module so that the others can import it without importing each
other: the entities (:mod:`~softplc.compiler.entities`) work through :class:`Context`,
which the compiler class implements.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import FunctionType
from typing import Protocol

from softplc.compiler.errors import CompileError
from softplc.compiler.irbuilder import IrBuilder, Label
from softplc.compiler.typenames import is_untyped, storage

__all__ = [
    "CellLoc",
    "Context",
    "Entity",
    "Frame",
    "ImageLoc",
    "Local",
    "LoopCtx",
    "Term",
    "Val",
    "cell_type",
    "is_untyped",
]


@dataclass(frozen=True)
class Val:
    """A typed operand: a constant (``cell is None``, ``value`` set) or a cell.

    ``lo``/``hi`` bound an untyped integer held in a cell (the compiler checks that
    untyped arithmetic stays within 62 bits); ``mutable`` marks a cell that a later
    call could change (a variable's own cell, not a temporary copy); ``fresh`` marks the
    temporary result of the instruction just emitted, consumed once: a move of it into
    a variable may make that instruction write the variable instead
    (:meth:`IrBuilder.retarget`).
    """

    t: str
    cell: int | None = None
    value: object = None
    lo: int = 0
    hi: int = 0
    mutable: bool = False
    # Where a constant was written (frame, node), for errors raised when it is used.
    src: tuple[Frame, ast.AST] | None = field(default=None, compare=False, hash=False)
    fresh: bool = field(default=False, compare=False)

    def used(self) -> Val:
        """The same value, no longer ``fresh`` (it will be read more than once)."""
        return replace(self, fresh=False) if self.fresh else self

    @property
    def is_const(self) -> bool:
        """True for a constant known at compile time."""
        return self.cell is None

    @property
    def int_value(self) -> int:
        """The value of an integer constant."""
        assert isinstance(self.value, int)
        return int(self.value)


def cell_type(t: str) -> str:
    """The cell type that holds a value of static type ``t`` (an untyped integer: LINT,
    an enumeration: its storage type)."""
    return storage(t)


@dataclass
class Local:
    """A local variable: its cell and its type (fixed at its first assignment or by
    its annotation)."""

    cell: int
    t: str


@dataclass
class LoopCtx:
    """Where ``break`` and ``continue`` of the innermost loop jump to."""

    brk: Label
    cont: Label


@dataclass
class Frame:
    """One inlined function being compiled: its source, globals, ``self``, locals and
    control-flow state."""

    name: str
    file: str
    lines: list[str]
    globals: dict[str, object]
    self_scope: Entity | None
    assigned_names: frozenset[str]
    # The function being compiled (reference mode applies its conversions to it).
    fn: FunctionType | None = None
    locals: dict[str, Local | Val] = field(default_factory=dict)
    # Parameters bound to a caller's aggregate (a struct, array or block), by reference.
    refs: dict[str, Entity] = field(default_factory=dict)
    bound_params: set[str] = field(default_factory=set)
    assigned: set[str] = field(default_factory=set)
    # Locals whose assignment failed to compile: later uses are not reported again.
    poisoned: set[str] = field(default_factory=set)
    # Locals that refer to different aggregates on different paths (or after a loop).
    ambiguous: set[str] = field(default_factory=set)
    loop_vars: dict[str, Val] = field(default_factory=dict)
    dead_loop_vars: set[str] = field(default_factory=set)
    loops: list[LoopCtx] = field(default_factory=list)
    exit: Label = field(default_factory=Label)
    result: Val | None = None
    result_seen: bool = False
    helper: bool = False
    terminated: bool = False
    bare_return: bool = False


@dataclass(frozen=True)
class Term:
    """A runtime index: its value (an integer cell that does not change while the
    path is in use), the length of its dimension, the cells one step moves (cell
    memory) and the array's name for the fault message."""

    idx: Val
    n: int
    stride: int
    label: str
    src: str = "?"


@dataclass(frozen=True)
class CellLoc:
    """A place in the program's cells: ``base`` plus, per runtime index, index x
    stride."""

    base: int
    terms: tuple[Term, ...] = ()

    def at(self, offset: int) -> CellLoc:
        return replace(self, base=self.base + offset)

    def with_term(self, t: Term) -> CellLoc:
        return replace(self, terms=(*self.terms, t))

    def cells(self) -> tuple[int, ...]:
        """Every cell the place can be, in row-major order of its indices."""
        ranges = [range(t.n) for t in self.terms]
        return tuple(
            self.base + sum(k * t.stride for k, t in zip(ks, self.terms, strict=True))
            for ks in itertools.product(*ranges)
        )


Part = str | Term


@dataclass(frozen=True)
class ImageLoc:
    """A process-image name, as text with runtime indices in it."""

    parts: tuple[Part, ...]

    @property
    def terms(self) -> tuple[Term, ...]:
        return tuple(p for p in self.parts if isinstance(p, Term))

    def plus(self, *more: Part) -> ImageLoc:
        return ImageLoc((*self.parts, *more))

    @property
    def name(self) -> str:
        """The name (no runtime index)."""
        assert not self.terms
        return "".join(p for p in self.parts if isinstance(p, str))

    def key(self) -> tuple[object, ...]:
        """What identifies the set of names (not the index values)."""
        return tuple(p if isinstance(p, str) else ("#", p.n) for p in self.parts)

    @property
    def text(self) -> str:
        """The name as the source writes it, runtime indices by their expressions."""
        return "".join(p if isinstance(p, str) else p.src for p in self.parts)

    def names(self) -> tuple[str, ...]:
        """Every name the place can be, in row-major order of its indices."""
        terms = self.terms
        out = []
        for ks in itertools.product(*(range(t.n) for t in terms)):
            it = iter(ks)
            out.append("".join(p if isinstance(p, str) else str(next(it)) for p in self.parts))
        return tuple(out)


class Entity:
    """Something a path names. The default of every operation is an error that says
    what the entity is."""

    label: str

    def what(self) -> str:
        """What it is, for messages."""
        return self.label

    def pinned(self, pin: Callable[[Val], Val]) -> Entity:
        """The same place with each runtime index replaced by ``pin(index)`` (a copy
        in a cell of its own, so the place stays the same while the index variable
        changes: ``r = self.recs[i]``)."""
        changes: dict[str, object] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, CellLoc):
                changes[f.name] = replace(v, terms=tuple(_pin(t, pin) for t in v.terms))
            elif isinstance(v, ImageLoc):
                changes[f.name] = ImageLoc(tuple(_pin_part(p, pin) for p in v.parts))
            elif isinstance(v, tuple) and any(isinstance(p, Term) for p in v):
                changes[f.name] = tuple(_pin_part(p, pin) for p in v if isinstance(p, (str, Term)))
        return replace(self, **changes) if changes else self  # type: ignore[type-var]

    def member(self, cx: Context, name: str, fr: Frame, node: ast.AST, *, outside: bool) -> Entity:
        raise cx.err(
            fr,
            node,
            "attribute",
            f"{ast.unparse(node)} is not supported",
            "use self.<variable>, self.<block>.<output> or self.<array>[i]",
        )

    def index(
        self, cx: Context, idx: list[tuple[ast.expr, Val]], fr: Frame, node: ast.AST
    ) -> Entity:
        raise cx.err(fr, node, "indexing", f"{self.label} is not an array")

    def load(self, cx: Context, fr: Frame, node: ast.AST) -> Val:
        raise cx.err(fr, node, "value", f"{ast.unparse(node)} is not a value")

    def check_store(self, cx: Context, fr: Frame, node: ast.AST, *, subscript: bool) -> None:
        raise cx.err(fr, node, "assignment", f"cannot assign to {ast.unparse(node)}")

    def store(self, cx: Context, v: Val, fr: Frame, node: ast.AST) -> None:
        raise cx.err(fr, node, "assignment", f"cannot assign to {ast.unparse(node)}")


class Context(Protocol):
    """The compiler services entities use (the compiler class provides them)."""

    b: IrBuilder

    def err(
        self, fr: Frame, node: ast.AST, construct: str, detail: str, hint: str = ""
    ) -> CompileError: ...

    def temp(self, t: str) -> int: ...

    def cell_of(self, v: Val, as_type: str | None = None) -> int: ...

    def coerce(self, v: Val, t: str, fr: Frame, node: ast.AST) -> Val: ...

    def check_index(self, node: ast.expr, v: Val, n: int, fr: Frame) -> Val: ...

    def image_table(self, loc: ImageLoc, t: str) -> int: ...

    def flat_index(self, terms: tuple[Term, ...]) -> Val: ...

    def class_constant(self, cls: type, name: str, fr: Frame, node: ast.AST) -> Val: ...


def _pin(t: Term, pin: Callable[[Val], Val]) -> Term:
    return replace(t, idx=pin(t.idx))


def _pin_part(p: str | Term, pin: Callable[[Val], Val]) -> str | Term:
    return _pin(p, pin) if isinstance(p, Term) else p
