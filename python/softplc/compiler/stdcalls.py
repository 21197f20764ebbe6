"""The standard library: how each standard function is typed, folded when its
arguments are constants, and lowered to instructions.

Folding calls the reference implementation (:mod:`softplc.stdlib`) on the constant
arguments, so a folded result is what reference mode computes.
"""

from __future__ import annotations

import ast
import enum
from collections.abc import Callable

from softplc import iectypes as it
from softplc import stdlib
from softplc.compiler.calls import Calls
from softplc.compiler.entities import ImageArray, ImageScalar, ProgramScope
from softplc.compiler.irbuilder import Label
from softplc.compiler.model import Frame, Val, cell_type
from softplc.compiler.ops import MATH_OPS
from softplc.compiler.typenames import enum_type, is_enum
from softplc.iectypes import (
    ANY_INT,
    ANY_REAL,
    BIT_TYPES,
    FLOAT_TYPES,
    INT_BITS,
    INT_TYPES,
    TypeRuleError,
)
from softplc.types import enum_members

__all__ = ["StdCalls"]

_MATH = {op.upper(): op for op in MATH_OPS}
_ARTICLE = {"output": "an", "memory": "a"}
_TIME_SCALE = {"ms": 1_000_000, "s": 1_000_000_000, "us": 1_000}


class StdCalls(Calls):
    """Compiles calls of the standard functions."""

    def stdlib_call(self, name: str, node: ast.Call, fr: Frame) -> Val:
        if node.keywords:
            raise self.err(fr, node, f"{name}()", "takes positional arguments only")
        if name in ("QUALITY", "AGE"):
            return self.quality_call(name, node, fr)
        args = self.operands(list(node.args), fr)

        def want(n: int) -> None:
            if len(args) != n:
                raise self.err(
                    fr,
                    node,
                    f"{name}()",
                    f"takes {n} argument{'s' if n != 1 else ''}, got {len(args)}",
                )

        def fold() -> Val | None:
            if all(a.is_const for a in args):
                try:
                    r = stdlib.FUNCTIONS[name](*[a.value for a in args])
                except (ZeroDivisionError, ValueError, ArithmeticError, IndexError):
                    return None
                except TypeRuleError as e:
                    raise self.err(fr, node, f"{name}()", str(e)) from None
                return Val(it.type_of(r), value=r)
            return None

        lower = _LOWERING.get(name)
        if lower is None and name.startswith("TO_"):
            lower = StdCalls.conversion
        if lower is None:  # pragma: no cover - every standard function has a lowering
            raise self.err(fr, node, f"{name}()", "not available in compiled programs")
        return lower(self, name, args, node, fr, want, fold)

    # -- one lowering per function family ---------------------------------------------------

    def now_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        want(0)
        d = self.temp("TIME")
        self.b.emit("now", d)
        return Val("TIME", d)

    def to_time(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        want(1)
        folded = fold()
        if folded is not None:
            return folded
        scale = _TIME_SCALE[name]
        a = args[0]
        if a.t in INT_TYPES or a.t == ANY_INT:
            tm = self.temp("TIME")
            self.b.emit("conv", tm, self.cell_of(a))
            d = self.temp("TIME")
            self.b.emit("mul", d, tm, self.b.const("TIME", scale))
            return Val("TIME", d)
        if a.t in FLOAT_TYPES or a.t == ANY_REAL:
            x = self.coerce(a, "LREAL", fr, node) if a.t != ANY_REAL else Val("LREAL", a.cell)
            m = self.temp("LREAL")
            self.b.emit("mul", m, self.cell_of(x), self.b.const("LREAL", float(scale)))
            d = self.temp("TIME")
            self.b.emit("conv", d, m)
            return Val("TIME", d)
        raise self.err(fr, node, f"{name}()", f"needs a number, got {a.t}")

    def abs_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        want(1)
        a = args[0]
        if a.t in ("BOOL", "TIME") or a.t in BIT_TYPES:
            raise self.err(fr, node, "ABS()", f"needs a number, got {a.t}")
        folded = fold()
        if folded is not None:
            return folded
        lo, hi = self.int_bounds(a) if a.t == ANY_INT else (0, 0)
        d = self.temp(cell_type(a.t))
        self.b.emit("abs", d, self.cell_of(a))
        return Val(a.t, d, lo=0, hi=max(abs(lo), abs(hi)))

    def math_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        want(1)
        a = args[0]
        if a.t not in ("REAL", "LREAL", ANY_REAL, ANY_INT):
            raise self.err(
                fr,
                node,
                f"{name}()",
                f"needs REAL or LREAL, got {a.t}",
                "convert with TO_REAL(x) or TO_LREAL(x)",
            )
        folded = fold()
        if folded is not None:
            return folded
        t = "REAL" if a.t == "REAL" else "LREAL"
        x = self.coerce(a, t if a.t != ANY_REAL else ANY_REAL, fr, node)
        d = self.temp(t)
        self.b.emit(_MATH[name], d, self.cell_of(x, t))
        return Val(t, d)

    def minmax_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        if len(args) < 2:
            raise self.err(fr, node, f"{name}()", "needs at least two values")
        folded = fold()
        if folded is not None:
            return folded
        return self.minmax(name, args, fr, node)

    def limit_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        want(3)
        folded = fold()
        if folded is not None:
            return folded
        mx = self.minmax("MAX", [args[1], args[0]], fr, node)
        return self.minmax("MIN", [mx, args[2]], fr, node)

    def sel_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        want(3)
        g = args[0]
        if g.t != "BOOL":
            raise self.err(fr, node, "SEL()", f"the selector must be BOOL, got {g.t}")
        t = self.common_of(name, args[1:], fr, node)
        folded = fold()
        if folded is not None:
            return folded
        a, b = self.coerce(args[1], t, fr, node), self.coerce(args[2], t, fr, node)
        ct = cell_type(t)
        d = self.temp(ct)
        self.b.emit("sel", d, self.cell_of(g), self.cell_of(a, ct), self.cell_of(b, ct))
        return self.merged(a, b, d) if t == ANY_INT else Val(t, d)

    def mux_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        if len(args) < 3:
            raise self.err(fr, node, "MUX()", "needs a selector and at least two inputs")
        k = args[0]
        if k.t not in INT_TYPES and k.t != ANY_INT:
            raise self.err(fr, node, "MUX()", f"the selector must be an integer, got {k.t}")
        t = self.common_of(name, args[1:], fr, node)
        folded = fold()
        if folded is not None:
            return folded
        return self.mux(k, [self.coerce(a, t, fr, node) for a in args[1:]], t, fr, node)

    def bits_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        want(2 if name == "GET_BIT" else 3)
        x, n = args[0], args[1]
        if x.t not in INT_TYPES and x.t not in BIT_TYPES:
            raise self.err(
                fr,
                node,
                f"{name}()",
                f"needs a typed integer or bit string, got {x.t}",
                "convert with TO_UINT(x), TO_WORD(x) etc.",
            )
        if n.t not in INT_TYPES and n.t != ANY_INT:
            raise self.err(fr, node, f"{name}()", f"the bit number must be an integer, got {n.t}")
        if n.is_const and not 0 <= n.int_value < INT_BITS[x.t][0]:
            raise self.err(
                fr,
                node,
                f"{name}()",
                f"bit {n.value} is out of range 0..{INT_BITS[x.t][0] - 1} for {x.t}",
            )
        folded = fold()
        if folded is not None:
            return folded
        if name == "GET_BIT":
            d = self.temp("BOOL")
            self.b.emit("getbit", d, self.cell_of(x), self.cell_of(n))
            return Val("BOOL", d)
        if args[2].t != "BOOL":
            raise self.err(fr, node, "SET_BIT()", f"the value must be BOOL, got {args[2].t}")
        d = self.temp(x.t)
        self.b.emit("setbit", d, self.cell_of(x), self.cell_of(n), self.cell_of(args[2]))
        return Val(x.t, d)

    def shift_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        """SHL, SHR, ROL, ROR of a bit string by an integer count."""
        want(2)
        x, n = args
        if x.t not in BIT_TYPES:
            raise self.err(
                fr,
                node,
                f"{name}()",
                f"needs a bit string (BYTE, WORD, DWORD, LWORD), got {x.t}",
                f"convert with TO_WORD(x) etc., or shift an integer with "
                f"{'<<' if name in ('SHL', 'ROL') else '>>'}",
            )
        if n.t not in INT_TYPES and n.t != ANY_INT:
            raise self.err(fr, node, f"{name}()", f"the count must be an integer, got {n.t}")
        if n.is_const and n.int_value < 0:
            raise self.err(fr, node, f"{name}()", f"negative count {n.int_value}")
        folded = fold()
        if folded is not None:
            return folded
        cnt = n if not n.is_const else Val("LINT", self.b.const("LINT", n.int_value))
        d = self.temp(x.t)
        op = {"SHL": "shl", "SHR": "shr", "ROL": "rol", "ROR": "ror"}[name]
        self.b.emit(op, d, self.cell_of(x), self.cell_of(cnt))
        return Val(x.t, d)

    def trunc_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        want(1)
        a = args[0]
        if a.t not in FLOAT_TYPES and a.t != ANY_REAL:
            raise self.err(fr, node, "TRUNC()", f"needs REAL or LREAL, got {a.t}")
        folded = fold()
        if folded is not None:
            return folded
        d = self.temp("LINT")
        self.b.emit("trunc", d, self.cell_of(a))
        return Val("LINT", d)

    def time_to(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        want(1)
        a = args[0]
        if a.t != "TIME":
            raise self.err(fr, node, f"{name}()", f"needs TIME, got {a.t}")
        folded = fold()
        if folded is not None:
            return folded
        if name == "TIME_TO_MS":
            q = self.temp("TIME")
            self.b.emit("div", q, self.cell_of(a), self.b.const("TIME", 1_000_000))
            d = self.temp("LINT")
            self.b.emit("conv", d, q)
            return Val("LINT", d)
        secs = self.temp("LREAL")
        self.b.emit("conv", secs, self.cell_of(a))
        d = self.temp("LREAL")
        self.b.emit("div", d, secs, self.b.const("LREAL", 1e9))
        return Val("LREAL", d)

    def conversion(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        want(1)
        t = name[3:]
        a = args[0]
        if it.is_string(a.t):
            # TO_INT(s), TO_REAL(s): the number the text spells, 0 when none.
            if t not in INT_TYPES and t not in BIT_TYPES and t not in FLOAT_TYPES:
                raise self.err(
                    fr,
                    node,
                    f"{name}()",
                    f"no conversion from STRING to {t}",
                    "compare the text instead (s == 'TRUE')" if t == "BOOL" else "",
                )
            folded = fold()
            if folded is not None:
                return folded
            d = self.temp(t)
            self.b.emit("stof" if t in FLOAT_TYPES else "stoi", d, self.cell_of(a))
            return Val(t, d)
        if is_enum(a.t):
            if t not in INT_TYPES and t not in BIT_TYPES:
                raise self.err(
                    fr,
                    node,
                    f"{name}()",
                    f"{a.t} is an enumeration; it converts to integer types only",
                    "TO_INT(x) gives its value",
                )
            folded = fold()
            if folded is not None:
                return folded
            d = self.temp(t)
            self.b.emit("conv", d, self.cell_of(a))
            return Val(t, d)
        try:
            probe: object = (
                it.make(a.t, 0)
                if a.t not in (ANY_INT, ANY_REAL)
                else (0 if a.t == ANY_INT else 0.0)
            )
            it.convert(probe, t)
        except TypeRuleError as e:
            raise self.err(fr, node, f"{name}()", str(e)) from None
        folded = fold()
        if folded is not None:
            return folded
        if a.t == t:
            return a
        d = self.temp(t)
        self.b.emit("conv", d, self.cell_of(a))
        return Val(t, d)

    # -- strings --------------------------------------------------------------------------

    def string_arg(self, name: str, v: Val, fr: Frame, node: ast.AST) -> int:
        if not it.is_string(v.t):
            raise self.err(
                fr,
                node,
                f"{name}()",
                f"takes a STRING, got {v.t}",
                "convert a number with TO_STRING(x)" if v.t in it.NUM_TYPES else "",
            )
        return self.cell_of(v)

    def count_arg(self, name: str, v: Val, fr: Frame, node: ast.AST) -> int:
        """A count or position as the LINT cell the string operations read."""
        if v.t not in INT_TYPES and v.t != ANY_INT:
            raise self.err(fr, node, f"{name}()", f"takes an integer count or position, got {v.t}")
        if v.is_const:
            return self.b.const("LINT", it.wrap(v.int_value, "LINT"))
        if cell_type(v.t) == "LINT":
            return self.cell_of(v)
        d = self.temp("LINT")
        self.b.emit("conv", d, self.cell_of(v))
        return d

    def strings_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        """LEN, LEFT, RIGHT, MID, FIND (see :mod:`softplc.stdlib.strings`)."""
        want({"LEN": 1, "MID": 3}.get(name, 2))
        s = self.string_arg(name, args[0], fr, node)
        if name == "FIND":
            self.string_arg(name, args[1], fr, node)
        else:
            for a in args[1:]:
                self.count_arg(name, Val(a.t, value=0) if a.is_const else a, fr, node)
        folded = fold()
        if folded is not None:
            return folded
        if name in ("LEN", "FIND"):
            d = self.temp("INT")
            if name == "LEN":
                self.b.emit("slen", d, s)
            else:
                self.b.emit("sfind", d, s, self.cell_of(args[1]))
            return Val("INT", d)
        d = self.temp(args[0].t)
        counts = [self.count_arg(name, a, fr, node) for a in args[1:]]
        self.b.emit({"LEFT": "sleft", "RIGHT": "sright", "MID": "smid"}[name], d, s, *counts)
        return Val(args[0].t, d, fresh=True)

    def concat_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        """CONCAT(a, b, ...): ``a + b + ...``."""
        if len(args) < 2:
            raise self.err(fr, node, "CONCAT()", f"takes two or more strings, got {len(args)}")
        acc = args[0]
        for a in args[1:]:
            for v in (acc, a):
                self.string_arg(name, v, fr, node)
            acc = self.string_op("+", acc, a, fr, node)
        return acc

    def to_string_(
        self, name: str, args: list[Val], node: ast.Call, fr: Frame, want: _Want, fold: _Fold
    ) -> Val:
        """TO_STRING(x): a STRING(80) (see :func:`softplc.iectypes.to_string`)."""
        want(1)
        a = args[0]
        t = it.string_type(it.DEFAULT_STRING)
        if it.is_string(a.t):
            return self.coerce(a, t, fr, node)
        if is_enum(a.t) or a.t == "TIME":
            raise self.err(
                fr,
                node,
                "TO_STRING()",
                f"no conversion from {a.t} to STRING",
                "convert it to a number first: TO_INT(x)"
                if is_enum(a.t)
                else "convert it to a number first: TIME_TO_MS(t)",
            )
        folded = fold()
        if folded is not None:
            return folded
        d = self.temp(t)
        self.b.emit("tostr", d, self.cell_of(a))
        return Val(t, d)

    # -- enumerations ---------------------------------------------------------------------

    def enum_call(self, cls: type[enum.IntEnum], node: ast.Call, fr: Frame) -> Val:
        """``Phase(n)``: the member whose value is the integer ``n``; a value that is no
        member faults, as Python raises ValueError."""
        t = enum_type(cls)
        if node.keywords or len(node.args) != 1:
            raise self.err(fr, node, f"{cls.__name__}()", "takes one integer")
        a = self.expr(node.args[0], fr)
        if a.t == t:
            return a
        if a.t not in INT_TYPES and a.t != ANY_INT:
            raise self.err(
                fr,
                node,
                f"{cls.__name__}()",
                f"needs an integer, got {a.t}",
                "convert a member of another enumeration with TO_INT(x) first"
                if is_enum(a.t)
                else "",
            )
        values = [v for _, v in enum_members(cls)]
        if a.is_const:
            if a.int_value not in values:
                raise self.err(
                    fr,
                    node,
                    f"{cls.__name__}()",
                    f"{a.int_value} is not a value of {cls.__name__} "
                    f"(values: {', '.join(map(str, values))})",
                )
            return Val(t, value=a.int_value)
        at = cell_type(a.t)
        x = self.cell_of(a)
        valid = sorted(v for v in values if it.fits(v, at))
        ok = Label()
        hit = self.temp("BOOL")
        if valid and valid == list(range(valid[0], valid[-1] + 1)):
            low = self.temp("BOOL")
            self.b.emit("ge", low, x, self.b.const(at, valid[0]))
            self.b.emit("le", hit, x, self.b.const(at, valid[-1]))
            self.b.emit("and", hit, hit, low)
            self.b.jump("jnz", ok, hit)
        else:
            for v in valid:
                self.b.emit("eq", hit, x, self.b.const(at, v))
                self.b.jump("jnz", ok, hit)
        self.b.emit(
            "trap", self.b.message(f"{cls.__name__}(n): n is not a value of {cls.__name__}")
        )
        self.b.place(ok)
        d = self.temp(t)
        self.b.emit("conv", d, x)
        return Val(t, d)

    # -- quality and age ------------------------------------------------------------------

    def quality_call(self, name: str, node: ast.Call, fr: Frame) -> Val:
        """``QUALITY(self.x)`` / ``AGE(self.x)``: the argument names an input variable
        of the program (``self.x`` or ``self.arr[i]``); its value is not read."""
        hint = "pass an input of the program directly: QUALITY(self.level), AGE(self.levels[i])"
        if len(node.args) != 1:
            raise self.err(fr, node, f"{name}()", f"takes 1 argument, got {len(node.args)}", hint)
        arg = node.args[0]
        is_attr = (
            isinstance(arg, ast.Attribute)
            and isinstance(arg.value, ast.Name)
            and arg.value.id == "self"
        )
        is_elem = (
            isinstance(arg, ast.Subscript)
            and isinstance(arg.value, ast.Attribute)
            and isinstance(arg.value.value, ast.Name)
            and arg.value.value.id == "self"
        )
        if not (is_attr or is_elem):
            raise self.err(
                fr,
                arg,
                f"{name}()",
                f"{ast.unparse(arg)} is not a variable of the program ({name} takes the "
                "variable itself, not a value)",
                hint,
            )
        sc = fr.self_scope
        if sc is None:
            raise self.err(
                fr,
                arg,
                "self",
                "not available in a module-level helper",
                "make it a method of the program class",
            )
        if not isinstance(sc, ProgramScope):
            owner = getattr(sc, "cls", type(sc))
            raise self.err(
                fr,
                arg,
                f"{name}()",
                f"{ast.unparse(arg)} is a variable of function block {owner.__name__}, "
                "not of the program",
                "read the quality in the program and pass it to the block as an input",
            )
        ent = self.path(arg, fr)
        if isinstance(ent, ImageArray):
            raise self.err(
                fr,
                arg,
                f"{name}()",
                f"{ast.unparse(arg)} is an array",
                f"pass one element: {name}({ast.unparse(arg)}[i])",
            )
        if not isinstance(ent, ImageScalar):
            raise self.err(
                fr,
                arg,
                f"{name}()",
                f"{ast.unparse(arg)} is not a process-image variable of the program",
                hint,
            )
        if ent.area != "input":
            raise self.err(
                fr,
                arg,
                f"{name}()",
                f"{ast.unparse(arg)} is {_ARTICLE[ent.area]} {ent.area} variable; quality and "
                "age are kept for inputs",
                "declare data that a driver delivers as Input(...)",
            )
        t = "USINT" if name == "QUALITY" else "TIME"
        op = "quality" if name == "QUALITY" else "age"
        d = self.temp(t)
        terms = ent.loc.terms
        if not terms:
            self.b.emit(op, d, self.b.var(ent.loc.name, ent.t))
        else:
            tab, i = ent.table_index(self)
            pc = self.b.emit(op + "x", d, tab, self.cell_of(i))
            if len(terms) == 1:
                self.b.indexed(pc, terms[0].label)
        return Val(t, d)

    # -- shared pieces --------------------------------------------------------------------

    def common_of(self, name: str, args: list[Val], fr: Frame, node: ast.AST) -> str:
        t = args[0].t
        for a in args[1:]:
            u = a.t
            c = t if t == u else it.common(t, u)
            if c is None:
                raise self.err(
                    fr,
                    node,
                    f"{name}()",
                    f"cannot mix {t} and {u}",
                    "convert explicitly, e.g. TO_LREAL(x)",
                )
            t = c
        return t

    def minmax(self, name: str, args: list[Val], fr: Frame, node: ast.AST) -> Val:
        t = self.common_of(name, args, fr, node)
        if t == "BOOL" or is_enum(t):
            raise self.err(fr, node, f"{name}()", f"needs numbers or TIME, got {t}")
        vals = [self.coerce(a, t, fr, node) for a in args]
        ct = cell_type(t)
        acc = vals[0]
        for v in vals[1:]:
            d = self.temp(ct)
            self.b.emit(name.lower(), d, self.cell_of(acc, ct), self.cell_of(v, ct))
            acc = self.merged(acc, v, d) if t == ANY_INT else Val(t, d)
        return acc

    def mux(self, k: Val, ins: list[Val], t: str, fr: Frame, node: ast.AST) -> Val:
        n = len(ins)
        ct = cell_type(t)
        if k.is_const:
            kk = k.int_value
            if not 0 <= kk < n:
                raise self.err(fr, node, "MUX()", f"selector {kk} is out of range 0..{n - 1}")
            return ins[kk]
        kt = cell_type(k.t)
        bits, signed = INT_BITS[kt]
        top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        bad = self.temp("BOOL")
        if n <= top:
            self.b.emit("ge", bad, self.cell_of(k), self.b.const(kt, n))
        else:
            self.b.emit("mov", bad, self.b.const("BOOL", False))
        if signed:
            neg = self.temp("BOOL")
            self.b.emit("lt", neg, self.cell_of(k), self.b.const(kt, 0))
            self.b.emit("or", bad, bad, neg)
        ok = Label()
        self.b.jump("jz", ok, bad)
        self.b.emit("trap", self.b.message(f"MUX selector out of range 0..{n - 1}"))
        self.b.place(ok)
        d = self.temp(ct)
        self.b.emit("mov", d, self.cell_of(ins[0], ct))
        hit = self.temp("BOOL")
        for j in range(1, n):
            self.b.emit("eq", hit, self.cell_of(k), self.b.const(kt, j))
            self.b.emit("sel", d, hit, d, self.cell_of(ins[j], ct))
        if t == ANY_INT:
            bounds = [self.int_bounds(v) for v in ins]
            return Val(ANY_INT, d, lo=min(b[0] for b in bounds), hi=max(b[1] for b in bounds))
        return Val(t, d)


_Want = Callable[[int], None]
_Fold = Callable[[], "Val | None"]
_Lowering = Callable[[StdCalls, str, list[Val], ast.Call, Frame, _Want, _Fold], Val]

#: The lowering of each standard function (conversions TO_* use StdCalls.conversion).
_LOWERING: dict[str, _Lowering] = {
    "now": StdCalls.now_,
    "ms": StdCalls.to_time,
    "s": StdCalls.to_time,
    "us": StdCalls.to_time,
    "ABS": StdCalls.abs_,
    **{m: StdCalls.math_ for m in _MATH},
    "MIN": StdCalls.minmax_,
    "MAX": StdCalls.minmax_,
    "LIMIT": StdCalls.limit_,
    "SEL": StdCalls.sel_,
    "MUX": StdCalls.mux_,
    "GET_BIT": StdCalls.bits_,
    "SET_BIT": StdCalls.bits_,
    "TRUNC": StdCalls.trunc_,
    "SHL": StdCalls.shift_,
    "SHR": StdCalls.shift_,
    "ROL": StdCalls.shift_,
    "ROR": StdCalls.shift_,
    "TIME_TO_MS": StdCalls.time_to,
    "TIME_TO_S": StdCalls.time_to,
    "LEN": StdCalls.strings_,
    "LEFT": StdCalls.strings_,
    "RIGHT": StdCalls.strings_,
    "MID": StdCalls.strings_,
    "FIND": StdCalls.strings_,
    "CONCAT": StdCalls.concat_,
    "TO_STRING": StdCalls.to_string_,
}
