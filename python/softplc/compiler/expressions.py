"""Expressions: constants, names, paths into ``self`` (attributes and subscripts),
operators, comparisons, ``and``/``or``/``not`` and conditional expressions.

Static types mirror the dynamic types of reference mode: typed IEC values where the
program reads declared variables, block outputs or typed calls, and the untyped
``ANY_INT``/``ANY_REAL`` of Python literals and loop indices, whose arithmetic follows
Python (the compiler checks that it stays within 62 bits).
"""

from __future__ import annotations

import ast
import builtins

from softplc import iectypes as it
from softplc.compiler.core import ANY_INT_LIMIT
from softplc.compiler.entities import Constant, describe_shape
from softplc.compiler.fold import fold_binop, has_calls, is_simple
from softplc.compiler.irbuilder import Label
from softplc.compiler.model import Entity, Frame, Local, Val, cell_type
from softplc.compiler.statements import BINOPS, UNSUPPORTED, SilentError, Statements
from softplc.compiler.typenames import is_enum
from softplc.iectypes import ANY_INT, ANY_REAL, BIT_TYPES, INT_TYPES, TypeRuleError
from softplc.limits import MAX_CONSTANT_BITS

__all__ = ["CMPOPS", "Expressions"]

CMPOPS: dict[type, str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_CMP_IR = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_IR_OPS = {
    "+": "add",
    "-": "sub",
    "*": "mul",
    "/": "div",
    "//": "div",
    "%": "mod",
    "&": "and",
    "|": "or",
    "^": "xor",
    "<<": "shl",
    ">>": "shr",
}
_UNTYPED_OPS = {**_IR_OPS, "//": "floordiv", "%": "floormod"}


class Expressions(Statements):
    """Compiles expressions."""

    def is_stdlib_name(self, fr: Frame, name: str) -> bool:
        """True when ``name`` is a standard function in ``fr``'s module."""
        return id(fr.globals.get(name)) in self.stdlib_ids

    def has_calls(self, node: ast.AST, fr: Frame) -> bool:
        return has_calls(node, lambda n: self.is_stdlib_name(fr, n))

    def is_simple(self, node: ast.AST, fr: Frame) -> bool:
        return is_simple(node, lambda n: self.is_stdlib_name(fr, n))

    # -- expressions ----------------------------------------------------------------------

    def expr(self, node: ast.expr, fr: Frame) -> Val:
        v = self.expr_(node, fr)
        if v.is_const and v.src is None:
            v = Val(v.t, v.cell, v.value, v.lo, v.hi, v.mutable, (fr, node))
        return v

    def expr_(self, node: ast.expr, fr: Frame) -> Val:
        self.b.at(fr.file, getattr(node, "lineno", self.b.line))
        if isinstance(node, ast.Constant):
            return self.constant(node, fr)
        if isinstance(node, ast.Name):
            return self.name(node, fr)
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            return self.path(node, fr).load(self, fr, node)
        if isinstance(node, ast.BinOp):
            op = BINOPS.get(type(node.op))
            if op is None:
                hint = (
                    "** is not supported; multiply, or use EXP/LN"
                    if isinstance(node.op, ast.Pow)
                    else ""
                )
                raise self.err(
                    fr, node, f"operator {type(node.op).__name__}", "not supported", hint
                )
            a, b = self.operands([node.left, node.right], fr)
            return self.binop_vals(op, a, b, fr, node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, fr)
        if isinstance(node, ast.BoolOp):
            return self.boolop(node, fr)
        if isinstance(node, ast.Compare):
            return self.compare(node, fr)
        if isinstance(node, ast.IfExp):
            return self.ifexp(node, fr)
        if isinstance(node, ast.Call):
            v = self.call(node, fr, statement=False)
            assert v is not None
            return v
        info = UNSUPPORTED.get(type(node))
        if info is not None:
            raise self.err(fr, node, info[0], "not supported in compiled programs", info[1])
        raise self.err(fr, node, type(node).__name__, "not supported in compiled programs")

    def operands(self, nodes: list[ast.expr], fr: Frame) -> list[Val]:
        """Evaluates left to right; a cell that a later operand's helper call could
        change is copied first (Python would have read its value already)."""
        out = []
        for i, n in enumerate(nodes):
            v = self.expr(n, fr)
            if v.mutable and any(self.has_calls(m, fr) for m in nodes[i + 1 :]):
                v = self.copy(v)
            out.append(v)
        return out

    def constant(self, node: ast.Constant, fr: Frame) -> Val:
        v = node.value
        if isinstance(v, bool):
            return Val("BOOL", value=v)
        if isinstance(v, int):
            return Val(ANY_INT, value=v)
        if isinstance(v, float):
            return Val(ANY_REAL, value=v)
        if isinstance(v, str) and it.is_time_literal(v):
            try:
                return Val("TIME", value=it.coerce(v, "TIME"))
            except Exception as e:  # noqa: BLE001 - report any parse failure
                raise self.err(fr, node, "TIME literal", str(e)) from None
        if isinstance(v, str):
            return self.string_const(v, fr, node)
        if v is None:
            raise self.err(fr, node, "None", "not a value in a control program")
        raise self.err(
            fr,
            node,
            f"{type(v).__name__} constant",
            "only numbers, True/False, TIME literals ('T#1s500ms') and strings are values",
        )

    def name(self, node: ast.Name, fr: Frame) -> Val:
        n = node.id
        if n in fr.loop_vars:
            return fr.loop_vars[n]
        if n in fr.poisoned:
            raise SilentError(n)
        if n in fr.dead_loop_vars and n not in fr.assigned_names:
            raise self.err(
                fr,
                node,
                "loop variable after its loop",
                f"{n!r} is only defined inside its for loop",
                "copy it to a typed local inside the loop",
            )
        self.check_ambiguous(n, fr, node)
        if n in fr.refs:
            raise self.err(
                fr,
                node,
                "value",
                f"{n} is {describe_shape(fr.refs[n])}, not a value",
                f"read one of its elements or fields, e.g. {n}[i] or {n}.field",
            )
        loc = fr.locals.get(n)
        if loc is not None or n in fr.assigned_names:
            if loc is None or n not in fr.assigned:
                raise self.err(
                    fr,
                    node,
                    "local variable",
                    f"{n!r} may be used before it is assigned",
                    "assign it before the if/for so every path sets it",
                )
            if isinstance(loc, Val):
                return loc
            assert isinstance(loc, Local)
            return Val(loc.t, loc.cell, mutable=True)
        if n == "self":
            raise self.err(fr, node, "self", "use an attribute of self")
        if n in fr.globals:
            gv = fr.globals[n]
        elif n in ("True", "False"):
            return Val("BOOL", value=n == "True")
        else:
            if hasattr(builtins, n):
                raise self.err(
                    fr,
                    node,
                    f"builtin {n}",
                    "not available in compiled programs",
                    "the standard library has MIN, MAX, ABS, LIMIT, SEL, ...",
                )
            raise self.err(fr, node, "name", f"{n!r} is not defined")
        if callable(gv) and not isinstance(gv, (int, float)):
            raise self.err(fr, node, f"{n}", "a function is not a value", "call it")
        return self.const_from_python(fr, node, gv)

    # -- paths ----------------------------------------------------------------------------

    def check_ambiguous(self, n: str, fr: Frame, node: ast.AST) -> None:
        if n in fr.ambiguous:
            raise self.err(
                fr,
                node,
                "local reference",
                f"{n!r} refers to different places on different paths (or to the last turn "
                "of a loop)",
                f"bind {n} where you use it, on the same path",
            )

    def path(self, node: ast.expr, fr: Frame, *, outside: bool = False) -> Entity:
        """What ``self.a``, ``self.a[i].b``, ``param.x`` ... names."""
        root = node
        while isinstance(root, (ast.Attribute, ast.Subscript)):
            root = root.value
        if isinstance(root, ast.Name):
            self.check_ambiguous(root.id, fr, root)
        if isinstance(node, ast.Attribute):
            base = node.value
            if isinstance(base, ast.Name) and base.id == "self":
                if fr.self_scope is None:
                    raise self.err(
                        fr,
                        node,
                        "self",
                        "not available in a module-level helper",
                        "make it a method of the program class",
                    )
                return fr.self_scope.member(self, node.attr, fr, node, outside=False)
            if isinstance(base, ast.Name) and base.id in fr.refs:
                return fr.refs[base.id].member(self, node.attr, fr, node, outside=False)
            if isinstance(base, (ast.Attribute, ast.Subscript)):
                owner = self.path(base, fr)
                return owner.member(self, node.attr, fr, node, outside=True)
            if isinstance(base, (ast.Name, ast.Attribute)) and self.static_object(base, fr):
                # Phase.RED, config.LIMIT: a member or a constant of a module-level name.
                obj = self.static_object(node, fr)
                if isinstance(obj, (bool, int, float, str)):
                    return Constant(self.const_from_python(fr, node, obj))
                raise self.err(
                    fr,
                    node,
                    "module attribute",
                    f"{ast.unparse(node)} is not a number, BOOL, TIME or enumeration member",
                    "use a constant or a member of an IntEnum",
                )
            raise self.err(
                fr,
                node,
                "attribute",
                f"{ast.unparse(node)} is not supported",
                "use self.<variable>, self.<block>.<output> or self.<array>[i]",
            )
        if isinstance(node, ast.Subscript):
            base = node.value
            rooted = isinstance(base, (ast.Attribute, ast.Subscript)) or (
                isinstance(base, ast.Name) and base.id in fr.refs
            )
            if not rooted:
                raise self.err(
                    fr,
                    node,
                    "indexing",
                    f"{ast.unparse(node)} is not supported",
                    "index arrays declared on the class: self.values[i]",
                )
            if isinstance(base, ast.Name):
                owner = fr.refs[base.id]
            else:
                if (
                    isinstance(base, ast.Attribute)
                    and isinstance(base.value, ast.Name)
                    and base.value.id == "self"
                    and fr.self_scope is None
                ):
                    raise self.err(fr, node, "self", "not available in a module-level helper")
                owner = self.path(base, fr)
            idx_nodes = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
            idx = [(n, self.expr(n, fr)) for n in idx_nodes]
            return owner.index(self, idx, fr, node)
        if isinstance(node, ast.Name) and node.id in fr.refs:
            return fr.refs[node.id]
        raise self.err(fr, node, "value", f"{ast.unparse(node)} is not supported")

    # -- operators ------------------------------------------------------------------------

    def string_op(self, op: str, a: Val, b: Val, fr: Frame, node: ast.AST) -> Val:
        """``a + b`` on strings: concatenation into a STRING of both capacities (at most
        254), as :func:`softplc.iectypes.concat`."""
        if op != "+" or not (it.is_string(a.t) and it.is_string(b.t)):
            other = b.t if it.is_string(a.t) else a.t
            raise self.err(
                fr,
                node,
                f"operator {op}",
                f"cannot apply {op} to {a.t} and {b.t}"
                + (" (strings concatenate with +)" if op != "+" else ""),
                "convert the number with TO_STRING(x)"
                if op == "+" and not it.is_string(other)
                else "",
            )
        ca, cb = it.string_capacity(a.t), it.string_capacity(b.t)
        assert ca is not None and cb is not None
        t = it.string_type(min(it.MAX_STRING, ca + cb))
        if a.is_const and b.is_const:
            return Val(t, value=(str(a.value) + str(b.value))[: it.MAX_STRING])
        d = self.temp(t)
        self.b.emit("scat", d, self.cell_of(a), self.cell_of(b))
        return Val(t, d, fresh=True)

    def binop_vals(self, op: str, a: Val, b: Val, fr: Frame, node: ast.AST) -> Val:
        if it.is_string(a.t) or it.is_string(b.t):
            return self.string_op(op, a, b, fr, node)
        for v in (a, b):
            if is_enum(v.t):
                raise self.err(
                    fr,
                    node,
                    f"operator {op}",
                    f"{v.t} is an enumeration: its members are names, not numbers",
                    "compare members with == and != (or use match), or convert with "
                    "TO_INT(x) to compute with the value",
                )
        try:
            rt, ca, cb = it.result_type(op, a.t, b.t)
        except TypeRuleError as e:
            raise self.err(fr, node, f"operator {op}", str(e)) from None
        if a.is_const and b.is_const:
            if op == "*" and type(a.value) is int and type(b.value) is int:
                # Untyped integers have no width, so folding x * x through nested
                # helpers would double the digits at every level.
                bits = abs(a.value).bit_length() + abs(b.value).bit_length()
                if bits > MAX_CONSTANT_BITS:
                    raise self.err(
                        fr,
                        node,
                        "integer constant",
                        f"this product of constants has about {bits} bits; the compiler "
                        f"computes constants of at most {MAX_CONSTANT_BITS} bits",
                        "compiled integers have at most 64 bits (LINT/ULINT): use "
                        "smaller constants",
                    )
            try:
                r = fold_binop(op, a.value, b.value)
            except (ZeroDivisionError, ValueError, ArithmeticError):
                r = None
            if r is not None:
                return Val(it.type_of(r), value=r)
        if rt == ANY_INT:
            return self.any_int_op(op, a, b, fr, node)
        if rt == ANY_REAL:
            ca = cb = ANY_REAL
        if ca == "TIME" and a.t != b.t:
            x = self.as_time_raw(a)
            y = self.as_time_raw(b)
        else:
            x = self.coerce(a, ca, fr, node)
            y = self.coerce(b, cb, fr, node)
        irop = _IR_OPS[op]
        if rt == ANY_REAL:
            d = self.temp("LREAL")
            self.b.emit(irop, d, self.cell_of(x), self.cell_of(y))
            return Val(ANY_REAL, d)
        if op in ("<<", ">>"):
            cnt = y if not y.is_const else Val("LINT", self.b.const("LINT", y.int_value))
            d = self.temp(rt)
            self.b.emit(irop, d, self.cell_of(x), self.cell_of(cnt))
            return Val(rt, d)
        if op == "//" and rt == "LINT" and ca == "TIME":
            tmp = self.temp("TIME")
            self.b.emit("div", tmp, self.cell_of(x), self.cell_of(y))
            d = self.temp("LINT")
            self.b.emit("conv", d, tmp)
            return Val("LINT", d)
        d = self.temp(cell_type(rt))
        self.b.emit(irop, d, self.cell_of(x), self.cell_of(y))
        return Val(rt, d, fresh=True)

    def as_time_raw(self, v: Val) -> Val:
        """The integer operand of TIME * n or TIME // n, as a TIME cell of the same
        number (IEC MUL_TIME/DIV_TIME)."""
        if v.t == "TIME":
            return v
        if v.is_const:
            return Val("TIME", value=it.Time(it.wrap(v.int_value, "TIME")))
        d = self.temp("TIME")
        self.b.emit("conv", d, self.cell_of(v))
        return Val("TIME", d)

    def any_int_op(self, op: str, a: Val, b: Val, fr: Frame, node: ast.AST) -> Val:
        alo, ahi = self.int_bounds(a)
        blo, bhi = self.int_bounds(b)
        if op == "+":
            lo, hi = alo + blo, ahi + bhi
        elif op == "-":
            lo, hi = alo - bhi, ahi - blo
        elif op == "*":
            ps = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
            lo, hi = min(ps), max(ps)
        elif op in ("//", "%"):
            m = max(abs(alo), abs(ahi), abs(blo), abs(bhi))
            lo, hi = -m, m
        elif op in ("&", "|", "^"):
            m = 1 << max(
                abs(alo).bit_length(),
                abs(ahi).bit_length(),
                abs(blo).bit_length(),
                abs(bhi).bit_length(),
            )
            lo, hi = -m, m
        elif op == "<<":
            if blo < 0 or bhi > 62:
                # Python shifts an untyped integer without limit (1 << 70 is a valid
                # int), which a 64-bit cell cannot follow; a typed value wraps instead.
                what = f"ranges over {blo}..{bhi}" if not b.is_const else f"is {blo}"
                left = ast.unparse(node.left) if isinstance(node, ast.BinOp) else "x"
                raise self.err(
                    fr,
                    node,
                    "shift of an untyped integer",
                    f"the shift count {what}; an untyped integer may only be shifted "
                    "left by 0..62 (Python would grow it past 64 bits)",
                    f"give the value a type, e.g. TO_LINT({left}) << n (typed values wrap)",
                )
            m = max(abs(alo), abs(ahi)) << bhi
            lo, hi = -m, m
        else:  # >>
            m = max(abs(alo), abs(ahi))
            lo, hi = -m, m
        if lo < -ANY_INT_LIMIT or hi > ANY_INT_LIMIT:
            raise self.err(
                fr,
                node,
                f"operator {op}",
                "this untyped integer expression may exceed 62 bits",
                "give one operand a type, e.g. TO_LINT(i)",
            )
        # A negative shift count faults in the VM, as Python raises ValueError.
        x, y = self.cell_of(a, "LINT"), self.cell_of(b, "LINT")
        d = self.temp("LINT")
        self.b.emit(_UNTYPED_OPS[op], d, x, y)
        return Val(ANY_INT, d, lo=lo, hi=hi)

    def unary(self, node: ast.UnaryOp, fr: Frame) -> Val:
        v = self.expr(node.operand, fr)
        if is_enum(v.t):
            raise self.err(
                fr,
                node,
                f"unary {ast.unparse(node)[:1]}",
                f"{v.t} is an enumeration, not a number or BOOL",
                "convert with TO_INT(x) to compute with the value",
            )
        if isinstance(node.op, ast.Not):
            if v.t != "BOOL":
                raise self.err(
                    fr,
                    node,
                    "not",
                    f"needs BOOL, got {v.t}",
                    "compare explicitly, e.g. not (x == 0)",
                )
            if v.is_const:
                return Val("BOOL", value=not v.value)
            d = self.temp("BOOL")
            self.b.emit("not", d, self.cell_of(v))
            return Val("BOOL", d)
        if isinstance(node.op, ast.UAdd):
            if v.t == "BOOL":
                raise self.err(fr, node, "unary +", "needs a number")
            return v
        if isinstance(node.op, ast.Invert):
            if v.t not in INT_TYPES and v.t not in BIT_TYPES and v.t != ANY_INT:
                raise self.err(
                    fr,
                    node,
                    "~",
                    f"needs an integer, got {v.t}",
                    "use not for BOOL" if v.t == "BOOL" else "",
                )
            if v.is_const:
                r = ~v.value  # type: ignore[operator]
                return Val(it.type_of(r), value=r)
            lo, hi = self.int_bounds(v)
            d = self.temp(cell_type(v.t))
            self.b.emit("not", d, self.cell_of(v))
            return Val(v.t, d, lo=-hi - 1, hi=-lo - 1)
        # USub
        if v.t == "BOOL" or v.t in BIT_TYPES:
            hint = f"convert it first: TO_{it.number_of(v.t)}(x)" if v.t in BIT_TYPES else ""
            raise self.err(fr, node, "unary -", f"needs a number, got {v.t}", hint)
        if v.is_const:
            r = -v.value  # type: ignore[operator]
            return Val(it.type_of(r) if v.t in (ANY_INT, ANY_REAL) else v.t, value=r)
        lo, hi = self.int_bounds(v)
        d = self.temp(cell_type(v.t))
        self.b.emit("neg", d, self.cell_of(v))
        return Val(v.t, d, lo=-hi, hi=-lo)

    def condition(self, node: ast.expr, fr: Frame, what: str) -> Val:
        c = self.expr(node, fr)
        if c.t != "BOOL":
            raise self.err(
                fr,
                node,
                what,
                f"must be BOOL, got {c.t}",
                "compare explicitly, e.g. if self.count > 0:",
            )
        return c

    def boolop(self, node: ast.BoolOp, fr: Frame) -> Val:
        is_and = isinstance(node.op, ast.And)
        word = "and" if is_and else "or"
        first = self.condition(node.values[0], fr, f"operand of {word}")
        rest = node.values[1:]
        if all(self.is_simple(n, fr) for n in rest):
            acc = first
            for n in rest:
                v = self.condition(n, fr, f"operand of {word}")
                if acc.is_const and v.is_const:
                    acc = Val(
                        "BOOL", value=(acc.value and v.value) if is_and else (acc.value or v.value)
                    )
                    continue
                d = self.temp("BOOL")
                self.b.emit(word, d, self.cell_of(acc), self.cell_of(v))
                acc = Val("BOOL", d, fresh=True)
            return acc
        # Short-circuit: later operands may fault or call helpers.
        d = self.temp("BOOL")
        end = Label()
        self.b.emit("mov", d, self.cell_of(first))
        for n in rest:
            self.b.jump("jz" if is_and else "jnz", end, d)
            v = self.condition(n, fr, f"operand of {word}")
            self.b.emit("mov", d, self.cell_of(v))
        self.b.place(end)
        return Val("BOOL", d)

    def compare_type(self, op: str, ta: str, tb: str, fr: Frame, node: ast.AST) -> str:
        """The type both sides of a comparison are converted to."""
        if is_enum(ta) or is_enum(tb):
            if ta != tb:
                raise self.enum_mismatch(
                    tb if is_enum(ta) else ta, ta if is_enum(ta) else tb, fr, node
                )
            if op not in ("==", "!="):
                raise self.err(
                    fr,
                    node,
                    f"comparison {op}",
                    f"enumeration members ({ta}) compare with == and != only",
                    "compare TO_INT(x) values to order them",
                )
            return ta
        if ta == "BOOL" or tb == "BOOL":
            if ta != tb or op not in ("==", "!="):
                raise self.err(
                    fr,
                    node,
                    f"comparison {op}",
                    f"cannot compare {ta} and {tb}",
                    "BOOL values compare only with == and !=",
                )
            return "BOOL"
        if ta == "TIME" or tb == "TIME":
            if ta != tb:
                raise self.err(
                    fr,
                    node,
                    f"comparison {op}",
                    f"cannot compare {ta} and {tb}",
                    "write durations as ms(...), s(...) or 'T#1s'",
                )
            return "TIME"
        cc = it.common(ta, tb)
        if cc is None:
            raise self.err(
                fr,
                node,
                f"comparison {op}",
                f"cannot compare {ta} and {tb} (no common type)",
                "convert one side explicitly, e.g. TO_LREAL(x)",
            )
        return cc

    def compare_strings(self, op: str, a: Val, b: Val, fr: Frame, node: ast.AST) -> Val:
        """A comparison of two strings, byte by byte (``scmp``)."""
        if not (it.is_string(a.t) and it.is_string(b.t)):
            raise self.err(
                fr,
                node,
                f"comparison {op}",
                f"cannot compare {a.t} and {b.t}",
                "a STRING compares with strings; convert with TO_STRING(x) or TO_<TYPE>(s)",
            )
        if a.is_const and b.is_const:
            return Val("BOOL", value=it.compare(op, it.IecString(str(a.value), 254), b.value))
        d = self.temp("BOOL")
        k = ("==", "!=", "<", "<=", ">", ">=").index(op)
        self.b.emit("scmp", d, self.cell_of(a), self.cell_of(b), k)
        return Val("BOOL", d, fresh=True)

    def compare_vals(self, op: str, a: Val, b: Val, fr: Frame, node: ast.AST) -> Val:
        if it.is_string(a.t) or it.is_string(b.t):
            return self.compare_strings(op, a, b, fr, node)
        c = self.compare_type(op, a.t, b.t, fr, node)
        if a.is_const and b.is_const:
            return Val("BOOL", value=it.compare(op, a.value, b.value))
        if c == ANY_INT:
            x, y = self.cell_of(a, "LINT"), self.cell_of(b, "LINT")
        else:
            x = self.cell_of(self.coerce(a, c, fr, node))
            y = self.cell_of(self.coerce(b, c, fr, node))
        d = self.temp("BOOL")
        self.b.emit(_CMP_IR[op], d, x, y)
        return Val("BOOL", d, fresh=True)

    def compare(self, node: ast.Compare, fr: Frame) -> Val:
        for o in node.ops:
            if type(o) not in CMPOPS:
                hint = "use == / != " if isinstance(o, (ast.Is, ast.IsNot)) else ""
                raise self.err(fr, node, f"comparison {type(o).__name__}", "not supported", hint)
        nodes = [node.left, *node.comparators]
        if len(nodes) == 2:
            a, b = self.operands(nodes, fr)
            return self.compare_vals(CMPOPS[type(node.ops[0])], a, b, fr, node)
        if all(self.is_simple(n, fr) for n in nodes[2:]):
            vals = self.operands(nodes, fr)
            acc: Val | None = None
            for k, o in enumerate(node.ops):
                r = self.compare_vals(CMPOPS[type(o)], vals[k], vals[k + 1], fr, node)
                if acc is None:
                    acc = r
                elif acc.is_const and r.is_const:
                    acc = Val("BOOL", value=acc.value and r.value)
                else:
                    d = self.temp("BOOL")
                    self.b.emit("and", d, self.cell_of(acc), self.cell_of(r))
                    acc = Val("BOOL", d)
            assert acc is not None
            return acc
        d = self.temp("BOOL")
        end = Label()
        left = self.expr(nodes[0], fr)
        left = self.copy(left) if left.mutable else left
        for k, o in enumerate(node.ops):
            right = self.expr(nodes[k + 1], fr)
            right = self.copy(right) if right.mutable else right
            r = self.compare_vals(CMPOPS[type(o)], left, right, fr, node)
            self.b.emit("mov", d, self.cell_of(r))
            if k < len(node.ops) - 1:
                self.b.jump("jz", end, d)
            left = right
        self.b.place(end)
        return Val("BOOL", d)

    def ifexp(self, node: ast.IfExp, fr: Frame) -> Val:
        """``a if c else b``. Branches of different types meet at one type: an untyped
        branch takes the other's type, two typed branches their common type (widening
        only); reference mode converts the branch the same way."""
        c = self.condition(node.test, fr, "condition")
        if self.is_simple(node.body, fr) and self.is_simple(node.orelse, fr):
            a = self.expr(node.body, fr)
            b = self.expr(node.orelse, fr)
            t = self.branch_type(a, b, fr, node)
            a = self.unify(a, t, fr, node.body)
            b = self.unify(b, t, fr, node.orelse)
            if c.is_const:
                return a if c.value else b
            if it.is_string(t):
                # No select on strings: copy the branch taken.
                d = self.temp(t)
                other, end = Label(), Label()
                self.b.jump("jz", other, self.cell_of(c))
                self.b.emit("mov", d, self.cell_of(a))
                self.b.jump("jmp", end)
                self.b.place(other)
                self.b.emit("mov", d, self.cell_of(b))
                self.b.place(end)
                return Val(t, d)
            ct = cell_type(t)
            d = self.temp(ct)
            self.b.emit("sel", d, self.cell_of(c), self.cell_of(b, ct), self.cell_of(a, ct))
            return self.merged(a, b, d)
        # Either branch may fault or call a helper: only one runs. The first branch's
        # value waits in its own cell until the second's type is known.
        els, end, first_done = Label(), Label(), Label()
        self.b.jump("jz", els, self.cell_of(c))
        a = self.expr(node.body, fr)
        ta = self.b.cell(cell_type(a.t))
        self.b.emit("mov", ta, self.cell_of(a, cell_type(a.t)))
        self.b.jump("jmp", first_done)
        self.b.place(els)
        b = self.expr(node.orelse, fr)
        t = self.branch_type(a, b, fr, node)
        ct = cell_type(t)
        d = self.b.cell(ct)
        b = self.unify(b, t, fr, node.orelse)
        self.b.emit("mov", d, self.cell_of(b, ct))
        self.b.jump("jmp", end)
        self.b.place(first_done)
        held = Val(a.t, ta, a.value, a.lo, a.hi) if not a.is_const else a
        a = self.unify(held, t, fr, node.body)
        self.b.emit("mov", d, self.cell_of(a, ct))
        self.b.place(end)
        return self.merged(a, b, d)

    def branch_type(self, a: Val, b: Val, fr: Frame, node: ast.AST) -> str:
        """The type two branches (or values that meet) unify to."""
        if a.t == b.t:
            return a.t
        if it.is_string(a.t) and it.is_string(b.t):
            ca, cb = it.string_capacity(a.t), it.string_capacity(b.t)
            assert ca is not None and cb is not None
            # A literal branch meets the other string; two strings the larger.
            if a.is_const and not b.is_const and len(str(a.value)) <= cb:
                return b.t
            if b.is_const and not a.is_const and len(str(b.value)) <= ca:
                return a.t
            return it.string_type(max(ca, cb))
        if {a.t, b.t} == {ANY_INT, ANY_REAL}:
            return ANY_REAL
        common = it.common(a.t, b.t)
        if a.t in (ANY_INT, ANY_REAL) or b.t in (ANY_INT, ANY_REAL):
            # An untyped branch meets the typed one (a float meeting an integer type
            # goes to the float type that integer widens to, as in arithmetic).
            return common or (b.t if a.t in (ANY_INT, ANY_REAL) else a.t)
        if common is not None and it.widens(a.t, common) and it.widens(b.t, common):
            return common
        if common is not None:
            hint = f"convert both to one type, e.g. TO_{common}(...)"
        elif "BOOL" in (a.t, b.t):
            hint = "BOOL is not a number: SEL(g, 0, 1) turns a BOOL into a number"
        else:
            hint = f"convert one branch explicitly: TO_{a.t}(...) or TO_{b.t}(...)"
        raise self.err(
            fr,
            node,
            "conditional expression",
            f"the branches have different types ({a.t} and {b.t}) and neither converts "
            "to the other implicitly",
            hint,
        )

    def unify(self, v: Val, t: str, fr: Frame, node: ast.expr) -> Val:
        """A branch converted to the unified type ``t`` (and the same conversion
        recorded for reference mode)."""
        if v.t == t:
            return v
        out = self.coerce(v, t, fr, node)
        self.rewrite(fr, node, t)
        return out

    def merged(self, a: Val, b: Val, cell: int) -> Val:
        if a.t == ANY_INT:
            alo, ahi = self.int_bounds(a)
            blo, bhi = self.int_bounds(b)
            return Val(ANY_INT, cell, lo=min(alo, blo), hi=max(ahi, bhi))
        return Val(a.t, cell)
