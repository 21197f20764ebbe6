"""The compiler's shared state and services: errors and where they point, the limits,
cells and temporaries, implicit conversions, index checks and tables.

The compiler is one class split by concern into mixins (statements, expressions,
calls, the standard library) over this core; each mixin declares here, as an abstract
method, what it needs from the others.
"""

from __future__ import annotations

import ast
import enum
from types import FunctionType
from typing import cast

from softplc import iectypes as it
from softplc import stdlib
from softplc.compiler.errors import CompileError, LimitReached
from softplc.compiler.irbuilder import IrBuilder
from softplc.compiler.model import Entity, Frame, ImageLoc, Term, Val, cell_type
from softplc.compiler.source import (
    FnInfo,
    declaration_site,
    display_path,
    find_class,
    first_line,
    function_info,
    node_count,
)
from softplc.compiler.typenames import enum_class, enum_type, is_enum
from softplc.iectypes import (
    ANY_INT,
    ANY_REAL,
    BIT_TYPES,
    FLOAT_TYPES,
    INT_BITS,
    INT_TYPES,
    TypeRuleError,
)
from softplc.limits import MAX_INLINED_NODES
from softplc.types import enum_members

__all__ = ["ANY_INT_LIMIT", "EXACT_FLOAT_INT", "CompilerCore", "Span", "span"]

#: Where a node is in its file: line, column, end line, end column.
Span = tuple[int, int, int, int]


def span(node: ast.AST) -> Span:
    """The source span of ``node``."""
    return (
        getattr(node, "lineno", 0),
        getattr(node, "col_offset", 0),
        getattr(node, "end_lineno", 0) or 0,
        getattr(node, "end_col_offset", 0) or 0,
    )


#: Bound of untyped integer arithmetic done in 64-bit cells: results must stay inside,
#: so the wrap-around of the cell never differs from Python's unbounded integers.
ANY_INT_LIMIT = 1 << 62
#: Largest integer every float converts exactly.
EXACT_FLOAT_INT = 1 << 53


class CompilerCore:
    """State and services shared by the parts of the compiler."""

    def __init__(self, obj: object) -> None:
        self.obj = obj
        self.cls: type = type(obj)
        self.prog_name = str(obj.__dict__["_softplc_name"])
        path, self.class_node, _ = find_class(self.cls)
        self.b = IrBuilder(self.prog_name, display_path(path))
        self.live: list[tuple[str, int]] = []
        self.inline_stack: list[FunctionType] = []
        # The statement being compiled: where errors point that have no better node.
        self.stmt_at: tuple[Frame, ast.AST] | None = None
        self.stdlib_ids = {id(f): n for n, f in stdlib.FUNCTIONS.items()}
        self.fb_ids = {id(c): n for n, c in stdlib.FB_TYPES.items()}
        # Limits (softplc.limits): what has been spent, and where the compiler is, so
        # that an error can say which statement and which chain of calls went past.
        self.node_counts: dict[int, int] = {}
        self.inlined_nodes = 0
        self.call_sites: list[tuple[Frame, ast.AST, str]] = []
        self.top_stmt: tuple[Frame, ast.AST] | None = None
        self.declaring: tuple[type, str] | None = None
        self._image_tables: dict[tuple[object, ...], int] = {}
        # The implicit conversions reference mode must apply to match the compiled
        # form, per function: source span of a value -> the type it converts to.
        self.rewrites: dict[FunctionType, dict[Span, str]] = {}

    # -- what the other parts provide ---------------------------------------------------

    def expr(self, node: ast.expr, fr: Frame) -> Val:
        """Compiles an expression to a value."""
        raise NotImplementedError

    def path(self, node: ast.expr, fr: Frame, *, outside: bool = False) -> Entity:
        """What an attribute/subscript path names."""
        raise NotImplementedError

    def inline_user_fb(self, ent: Entity, node: ast.Call, fr: Frame) -> None:
        """Inlines a user block's scan on the instance ``ent``."""
        raise NotImplementedError

    # -- errors ---------------------------------------------------------------------------

    def err(
        self, fr: Frame, node: ast.AST, construct: str, detail: str, hint: str = ""
    ) -> CompileError:
        """A compile error at ``node`` (column counted in characters, 1-based)."""
        line = getattr(node, "lineno", 0)
        col = getattr(node, "col_offset", -1)
        if 0 < line <= len(fr.lines) and col >= 0:
            raw = fr.lines[line - 1].encode("utf-8")[:col]
            col = len(raw.decode("utf-8", errors="replace"))
        return CompileError(fr.file, line, col + 1, construct, detail, hint)

    def class_site(self) -> tuple[str, int, int]:
        line = first_line(self.class_node)
        return self.b.source, line, self.class_node.col_offset + 1

    def call_chain(self) -> str:
        """The inlined calls the compiler is inside, outermost first, for messages."""
        steps = [
            f"{name} ({fr.file}:{getattr(node, 'lineno', 0)})" for fr, node, name in self.call_sites
        ]
        if not steps:
            return ""
        if len(steps) > 6:
            steps = [*steps[:3], f"... {len(steps) - 5} more ...", *steps[-2:]]
        return "; inlined calls: " + " > ".join(steps)

    def size_error(self, e: LimitReached) -> CompileError:
        """A :class:`LimitReached` from the builder, placed at the statement of scan()
        being compiled (or the block declaration that needs the cells)."""
        hint = (
            "split the work into several programs; a helper or block is copied into "
            "every call, so call big ones in fewer places"
        )
        if self.top_stmt is None:
            cls, attr = self.declaring or (self.cls, "")
            site = declaration_site(cls, attr) if attr else self.class_site()
            return CompileError(
                *site,
                f"declaration of {attr}" if attr else f"program {self.cls.__name__}",
                f"the program's variables and function blocks need more than {e.limit} "
                f"{e.what} (a compiled program may have at most {e.limit})",
                "declare fewer or smaller block instances and arrays, or split the program",
            )
        fr, node = self.top_stmt
        return self.err(
            fr,
            node,
            "program size",
            f"compiling this statement takes the program past {e.limit} {e.what} "
            f"(a compiled program may have at most {e.limit}){self.call_chain()}",
            hint,
        )

    def spend(self, nodes: int, where: tuple[Frame, ast.AST] | None) -> None:
        """Counts ``nodes`` syntax-tree nodes against :data:`MAX_INLINED_NODES`;
        ``where`` is the call or loop that spends them."""
        self.inlined_nodes += nodes
        if self.inlined_nodes <= MAX_INLINED_NODES:
            return
        detail = (
            f"the program grows past {MAX_INLINED_NODES} syntax-tree nodes once every call "
            "of a helper, method or block is replaced by its body"
        )
        hint = (
            "a helper that calls another one twice doubles at each level: call it once "
            "and keep the result in a local, or turn it into a function block"
        )
        where = self.top_stmt or where
        if where is None:  # scan() alone is that large
            raise CompileError(*self.class_site(), "program size", detail, hint)
        raise self.err(
            *where,
            "inlining",
            f"{detail}; it does so in this statement{self.call_chain()}",
            hint,
        )

    def function_info(self, fn: FunctionType) -> FnInfo:
        return function_info(fn)

    def node_count(self, nodes: list[ast.stmt]) -> int:
        # Keyed by the first node: the cached syntax trees keep every node alive.
        key = id(nodes[0]) if nodes else 0
        n = self.node_counts.get(key)
        if n is None:
            n = sum(node_count(x) for x in nodes)
            self.node_counts[key] = n
        return n

    # -- cells ----------------------------------------------------------------------------

    def temp(self, t: str) -> int:
        """A scratch cell for the statement being compiled."""
        return self.b.temp(t, self.live)

    def cell_of(self, v: Val, as_type: str | None = None) -> int:
        """The cell holding ``v`` (constants get a constant cell)."""
        t = as_type or cell_type(v.t)
        if v.is_const:
            val = v.value
            if t == "LINT" and v.t == ANY_INT and not it.fits(v.int_value, "LINT"):
                where = v.src or self.stmt_at
                assert where is not None
                raise self.err(
                    where[0],
                    where[1],
                    "integer constant",
                    f"{val} does not fit in 64 bits, and here it meets a value computed "
                    "at run time",
                    "compiled integers have at most 64 bits (LINT/ULINT); use a smaller "
                    "constant, or a REAL/LREAL value",
                )
            if t == "LREAL" and v.t == ANY_INT:
                val = float(v.int_value)
            return self.b.const(t, val)
        assert v.cell is not None
        return v.cell

    def copy(self, v: Val) -> Val:
        """``v`` in a temporary of its own (a later call cannot change it)."""
        if v.is_const:
            return v
        d = self.temp(cell_type(v.t))
        self.b.emit("mov", d, self.cell_of(v))
        return Val(v.t, d, v.value, v.lo, v.hi, False, v.src)

    def int_bounds(self, v: Val) -> tuple[int, int]:
        """The range of an integer value: its value for a constant, the tracked range
        for an untyped cell, and the whole range of the type for a typed cell (the
        compiler does not track ranges of typed values)."""
        if v.is_const:
            return v.int_value, v.int_value
        if v.t in INT_TYPES or v.t in BIT_TYPES:
            bits, signed = INT_BITS[v.t]
            if signed:
                return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            return 0, (1 << bits) - 1
        return v.lo, v.hi

    # -- conversions ----------------------------------------------------------------------

    def rewrite(self, fr: Frame, node: ast.AST, t: str) -> None:
        """Records that the value at ``node`` converts implicitly to ``t`` where Python
        would keep its own type (an untyped literal meeting a typed local, a
        conditional branch meeting the other's type). Reference mode applies the same
        conversion there (:mod:`softplc.compiler.reference`). A node inlined at two
        calls must convert to one type."""
        if fr.fn is None:
            return
        # (mypy reads a function-typed attribute as a bound method.)
        fn = cast(FunctionType, fr.fn)
        key = span(node)
        table = self.rewrites.setdefault(fn, {})
        prev = table.get(key)
        if prev is not None and prev != t:
            raise self.err(
                fr,
                node,
                "implicit conversion",
                f"this value converts to {t} here but to {prev} at another call of "
                f"{fn.__name__}, and reference mode runs one copy of the function",
                f"write the conversion: TO_{t}({ast.unparse(node)})",
            )
        table[key] = t

    def string_const(self, text: str, fr: Frame, node: ast.AST) -> Val:
        """A string literal: a constant ``STRING`` of its length (at least 1)."""
        try:
            it.latin1(text, "a STRING literal")
        except TypeRuleError as e:
            raise self.err(fr, node, "string literal", str(e)) from None
        if len(text) > it.MAX_STRING:
            raise self.err(
                fr,
                node,
                "string literal",
                f"{len(text)} characters; a STRING holds at most {it.MAX_STRING}",
            )
        return Val(it.string_type(max(1, len(text))), value=text)

    def coerce_string(self, v: Val, t: str, fr: Frame, node: ast.AST) -> Val:
        """A STRING converted to STRING type ``t``: truncated to its capacity (IEC
        assigns a longer string by truncating it)."""
        if not it.is_string(v.t) or not it.is_string(t):
            other = t if it.is_string(v.t) else v.t
            raise self.err(
                fr,
                node,
                "implicit conversion",
                f"{v.t} does not convert to {t} implicitly (a STRING meets only strings)",
                "convert explicitly: TO_STRING(x)"
                if it.is_string(t)
                else f"convert explicitly: TO_{other}(s)"
                if other in it.NUM_TYPES
                else "",
            )
        cap = it.string_capacity(t)
        assert cap is not None
        if v.is_const:
            return Val(t, value=str(v.value)[:cap])
        d = self.temp(t)
        self.b.emit("mov", d, self.cell_of(v))
        return Val(t, d)

    def coerce(self, v: Val, t: str, fr: Frame, node: ast.AST) -> Val:
        """Implicit conversion of ``v`` to ``t`` (widening or an untyped number)."""
        if v.t == t:
            return v
        if it.is_string(t) or it.is_string(v.t):
            return self.coerce_string(v, t, fr, node)
        if is_enum(t) or is_enum(v.t):
            raise self.enum_mismatch(v.t, t, fr, node)
        if t == "TIME":
            raise self.err(
                fr,
                node,
                "TIME value",
                f"got {v.t}",
                "write durations as ms(...), s(...) or 'T#1s500ms'",
            )
        if v.is_const:
            try:
                r = it.coerce(v.value, t)
            except TypeRuleError as e:
                raise self.err(fr, node, "conversion", str(e)) from None
            return Val(t, value=r)
        if v.t == ANY_INT:
            lo, hi = v.lo, v.hi
            if t in INT_TYPES or t in BIT_TYPES:
                if not (it.fits(lo, t) and it.fits(hi, t)):
                    raise self.err(
                        fr,
                        node,
                        "conversion",
                        f"this untyped integer ranges over {lo}..{hi}, which does not fit {t}",
                        f"convert explicitly with TO_{t}(...)",
                    )
                if t == "LINT":
                    return Val(t, v.cell)
            elif t in FLOAT_TYPES or t == ANY_REAL:
                if max(abs(lo), abs(hi)) > EXACT_FLOAT_INT:
                    raise self.err(fr, node, "conversion", "integer too large to convert exactly")
            else:
                raise self.err(fr, node, "conversion", f"cannot use an integer as {t}")
            d = self.temp(cell_type(t))
            self.b.emit("conv", d, self.cell_of(v))
            return Val(t, d)
        if v.t == ANY_REAL:
            if t == "LREAL":
                return Val(t, v.cell)
            if t == "REAL":
                d = self.temp("REAL")
                self.b.emit("conv", d, self.cell_of(v))
                return Val(t, d)
            raise self.err(
                fr,
                node,
                "conversion",
                f"cannot use a float as {t}",
                f"convert explicitly with TO_{t}(...)",
            )
        if t in (ANY_INT, ANY_REAL) or not it.widens(v.t, t):
            raise self.err(
                fr,
                node,
                "implicit conversion",
                f"{v.t} does not convert to {t} implicitly (only widening conversions are "
                "implicit)",
                f"convert explicitly with TO_{t}(...)" if t in it.NUM_TYPES or t == "BOOL" else "",
            )
        d = self.temp(t)
        self.b.emit("conv", d, self.cell_of(v))
        return Val(t, d)

    def enum_mismatch(self, got: str, want: str, fr: Frame, node: ast.AST) -> CompileError:
        """The error for a value that meets an enumeration it does not belong to."""
        cls = enum_class(want)
        if cls is not None:
            members = ", ".join(f"{cls.__name__}.{n}" for n, _ in enum_members(cls)[:3])
            return self.err(
                fr,
                node,
                "enumeration value",
                f"{want} takes its members, got {got}",
                f"write a member ({members}, ...), or convert a number with {cls.__name__}(n)",
            )
        return self.err(
            fr,
            node,
            "enumeration value",
            f"{got} is an enumeration; it does not convert to {want} implicitly",
            f"convert it explicitly: TO_{want}(x)" if want in it.NUM_TYPES else "",
        )

    def const_from_python(self, fr: Frame, node: ast.AST, v: object) -> Val:
        """A Python value (a module constant, a default argument) as a constant."""
        if isinstance(v, enum.IntEnum):
            return Val(enum_type(type(v)), value=int(v))
        if isinstance(v, bool):
            return Val("BOOL", value=v)
        if isinstance(v, (it.IecInt, it.IecReal)):
            return Val(v.iec, value=v)
        if isinstance(v, int):
            return Val(ANY_INT, value=v)
        if isinstance(v, float):
            return Val(ANY_REAL, value=v)
        if isinstance(v, it.IecString):
            return Val(v.iec, value=str(v))
        if isinstance(v, str) and it.is_time_literal(v):
            return Val("TIME", value=it.coerce(v, "TIME"))
        if isinstance(v, str):
            return self.string_const(v, fr, node)
        raise self.err(
            fr,
            node,
            "constant",
            f"{v!r} ({type(v).__name__}) is not a number, BOOL, TIME or STRING",
        )

    def class_constant(self, cls: type, name: str, fr: Frame, node: ast.AST) -> Val:
        """A plain class attribute read as ``self.NAME``."""
        raw = getattr(cls, name, None)
        if raw is None:
            raise self.err(
                fr,
                node,
                "attribute",
                f"{cls.__name__} has no variable {name!r}",
                "declare it on the class: Input(...), Output(...) or Memory(...)",
            )
        if isinstance(raw, (bool, int, float, str)):
            return self.const_from_python(fr, node, raw)
        raise self.err(fr, node, "attribute", f"{name} ({type(raw).__name__}) is not supported")

    # -- indices --------------------------------------------------------------------------

    def check_index(self, node: ast.expr, v: Val, n: int, fr: Frame) -> Val:
        """An index of a dimension of length ``n``: a constant in range, or a cell that
        does not change while the path is in use."""
        if v.t not in INT_TYPES and v.t != ANY_INT:
            raise self.err(fr, node, "array index", f"must be an integer, got {v.t}")
        if v.is_const:
            k = v.int_value
            if not 0 <= k < n:
                raise self.err(fr, node, "array index", f"{k} is out of range 0..{n - 1}")
            return Val(ANY_INT, value=k)
        if v.mutable:
            v = self.copy(v)
        return v.used()  # an index is read by every access through its path

    def image_table(self, loc: ImageLoc, t: str) -> int:
        """The image table of every variable ``loc`` can name."""
        key = (loc.key(), t)
        tab = self._image_tables.get(key)
        if tab is None:
            tab = self.b.table(loc.names(), t)
            self._image_tables[key] = tab
        return tab

    def flat_index(self, terms: tuple[Term, ...]) -> Val:
        """The index into a table of every combination of ``terms`` (row-major). With
        several terms, each is checked against its own dimension first (``chk``), so
        the fault names the array and the index that is out of range."""
        if len(terms) == 1:
            return terms[0].idx
        acc: int | None = None
        for t in terms:
            x = self.cell_of(t.idx)
            self.b.emit("chk", x, t.n, self.b.message(t.label))
            if cell_type(t.idx.t) != "LINT":
                y = self.temp("LINT")
                self.b.emit("conv", y, x)
                x = y
            if acc is None:
                acc = self.temp("LINT")
                self.b.emit("mov", acc, x)
            else:
                self.b.emit("mul", acc, acc, self.b.const("LINT", t.n))
                self.b.emit("add", acc, acc, x)
        assert acc is not None
        return Val("LINT", acc)
