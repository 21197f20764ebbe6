"""Statements: blocks, assignment (to locals, variables, block inputs, array
elements), ``if``, ``for``, ``break``/``continue`` and ``return``.

A block compiles statement by statement; when the compiler collects errors (as
``softplc check`` does), a statement that fails is recorded and skipped, the locals it
would have assigned are marked so that their later uses are not reported again, and
compilation goes on with the next statement.
"""

from __future__ import annotations

import ast
import inspect
import itertools
from dataclasses import dataclass

from softplc import iectypes as it
from softplc.compiler.core import CompilerCore
from softplc.compiler.entities import (
    BuiltinFb,
    CellArray,
    CellScalar,
    CellStruct,
    ImageArray,
    ImageScalar,
    ImageStruct,
    ProgramScope,
    Scalar,
    UserFb,
    aggregate_shape,
    describe_shape,
)
from softplc.compiler.errors import CompileError
from softplc.compiler.irbuilder import Label
from softplc.compiler.model import Entity, Frame, Local, LoopCtx, Val, cell_type, is_untyped
from softplc.compiler.shapes import ArrayShape, UserFbShape
from softplc.compiler.source import assigned_names, assigns, function_info
from softplc.compiler.typenames import is_enum
from softplc.iectypes import ANY_INT, ANY_REAL
from softplc.limits import MAX_LOOP_TURNS, MAX_UNROLLED_TURNS

__all__ = ["BINOPS", "JTAB_DENSITY", "JTAB_MIN_CASES", "UNSUPPORTED", "SilentError", "Statements"]

BINOPS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
}

# Unsupported statements and expressions: construct name and hint.
UNSUPPORTED: dict[type, tuple[str, str]] = {
    ast.While: ("while loop", "use for i in range(N) with a constant N; a scan must end"),
    ast.Try: ("try statement", "errors fault the program; test conditions with if"),
    ast.With: ("with statement", "not available in a scan"),
    ast.Raise: ("raise statement", "set an alarm output instead"),
    ast.Assert: ("assert statement", "set an alarm output instead"),
    ast.Delete: ("del statement", "variables of a program cannot be deleted"),
    ast.Global: ("global statement", "declare the variable as Memory(...) on the class"),
    ast.Nonlocal: ("nonlocal statement", "declare the variable as Memory(...) on the class"),
    ast.Import: ("import statement", "import at module level"),
    ast.ImportFrom: ("import statement", "import at module level"),
    ast.FunctionDef: ("nested function", "define helper functions at module level"),
    ast.AsyncFunctionDef: ("async function", "scans are synchronous"),
    ast.ClassDef: ("nested class", "define classes at module level"),
    ast.AsyncFor: ("async for", "use for i in range(N)"),
    ast.AsyncWith: ("async with", "not available in a scan"),
    ast.Lambda: ("lambda", "define a helper function at module level"),
    ast.ListComp: ("list comprehension", "use a for loop over an ARRAY"),
    ast.SetComp: ("set comprehension", "use a for loop"),
    ast.DictComp: ("dict comprehension", "use a for loop"),
    ast.GeneratorExp: ("generator expression", "use a for loop"),
    ast.List: ("list", "declare an ARRAY(type, n) variable instead"),
    ast.Tuple: ("tuple", "assign one value at a time"),
    ast.Dict: ("dict", "declare separate variables"),
    ast.Set: ("set", "declare separate variables"),
    ast.JoinedStr: ("f-string", "strings are not values in a control program"),
    ast.NamedExpr: ("assignment expression (:=)", "assign in a separate statement"),
    ast.Await: ("await", "scans are synchronous"),
    ast.Yield: ("yield", "scans are synchronous"),
    ast.YieldFrom: ("yield from", "scans are synchronous"),
    ast.Starred: ("starred expression", "pass arguments one by one"),
    ast.Slice: ("slice", "index one element at a time"),
}


#: A match takes a jump table from this many distinct values on ...
JTAB_MIN_CASES = 3
#: ... when the values span at most this many times their number (plus 16): a
#: table is one instruction whatever the case, a chain of comparisons two per value.
JTAB_DENSITY = 4


@dataclass(frozen=True)
class CasePlan:
    """What a case of a match checks: its values (None: any), capture and guard."""

    values: list[int] | None
    capture: str | None
    guard: ast.expr | None


class SilentError(Exception):
    """A statement uses a local whose assignment already failed to compile: skipped
    without a second report."""


class Statements(CompilerCore):
    """Compiles statements."""

    # -- what the other parts provide ---------------------------------------------------

    def call(self, node: ast.Call, fr: Frame, statement: bool) -> Val | None:
        raise NotImplementedError

    def condition(self, node: ast.expr, fr: Frame, what: str) -> Val:
        raise NotImplementedError

    def binop_vals(self, op: str, a: Val, b: Val, fr: Frame, node: ast.AST) -> Val:
        raise NotImplementedError

    def name(self, node: ast.Name, fr: Frame) -> Val:
        raise NotImplementedError

    def has_calls(self, node: ast.AST, fr: Frame) -> bool:
        raise NotImplementedError

    def record(self, e: CompileError) -> None:
        raise NotImplementedError

    def argument(self, node: ast.expr, fr: Frame) -> Val | Entity:
        raise NotImplementedError

    @property
    def collecting(self) -> bool:
        raise NotImplementedError

    # -- blocks ---------------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt], fr: Frame) -> None:
        for st in stmts:
            if fr.terminated:
                break
            self.b.at(fr.file, st.lineno)
            self.stmt_at = (fr, st)
            if not fr.helper:
                self.top_stmt = (fr, st)
            mark = len(self.live)
            try:
                self.stmt(st, fr)
            except (CompileError, SilentError) as e:
                if not self.collecting:
                    raise
                if isinstance(e, CompileError):
                    self.record(e)
                # Its locals count as assigned, with no type: their uses stay quiet.
                for n in assigned_names([st]):
                    if n not in fr.locals and n not in fr.loop_vars:
                        fr.poisoned.add(n)
                        fr.assigned.add(n)
            self.b.release(self.live, mark)

    def stmt(self, st: ast.stmt, fr: Frame) -> None:
        if isinstance(st, ast.Pass):
            return
        if isinstance(st, ast.Expr):
            if isinstance(st.value, ast.Constant) and isinstance(st.value.value, str):
                return  # docstring
            if isinstance(st.value, ast.Call):
                self.call(st.value, fr, statement=True)
                return
            raise self.err(
                fr,
                st,
                "expression statement",
                "the value is not used",
                "assign it to a variable or remove it",
            )
        if isinstance(st, ast.Assign):
            if len(st.targets) == 1 and self.may_name_aggregate(st.value, fr):
                src = self.argument(st.value, fr)
                if isinstance(src, Entity):
                    self.assign_aggregate(st.targets[0], src, fr)
                    return
                self.assign(st.targets[0], src, fr, st.value)
                return
            if len(st.targets) != 1:
                # a = b = expr: evaluate once, assign left to right (as Python does).
                v = self.expr(st.value, fr)
                v = self.copy(v) if v.mutable else v.used()
                for tgt in st.targets:
                    self.assign(tgt, v, fr, st.value)
                return
            v = self.expr(st.value, fr)
            self.assign(st.targets[0], v, fr, st.value)
            return
        if isinstance(st, ast.AugAssign):
            self.aug_assign(st, fr)
            return
        if isinstance(st, ast.AnnAssign):
            self.ann_assign(st, fr)
            return
        if isinstance(st, ast.If):
            self.if_stmt(st, fr)
            return
        if isinstance(st, ast.For):
            self.for_stmt(st, fr)
            return
        if isinstance(st, ast.Match):
            self.match_stmt(st, fr)
            return
        if isinstance(st, (ast.Break, ast.Continue)):
            self.loop_jump(st, fr)
            return
        if isinstance(st, ast.Return):
            self.return_stmt(st, fr)
            return
        info = UNSUPPORTED.get(type(st))
        if info is not None:
            raise self.err(fr, st, info[0], "not supported in compiled programs", info[1])
        raise self.err(fr, st, type(st).__name__, "not supported in compiled programs")

    def loop_jump(self, st: ast.Break | ast.Continue, fr: Frame) -> None:
        """break (to the end of the innermost loop) or continue (to its next turn)."""
        is_break = isinstance(st, ast.Break)
        if not fr.loops:
            raise self.err(fr, st, "break" if is_break else "continue", "outside a loop")
        loop = fr.loops[-1]
        self.b.jump("jmp", loop.brk if is_break else loop.cont)
        fr.terminated = True

    def return_stmt(self, st: ast.Return, fr: Frame) -> None:
        if not fr.helper:
            if st.value is not None:
                raise self.err(
                    fr,
                    st,
                    "return value",
                    "scan() returns nothing",
                    "write results to Output or Memory variables",
                )
            self.b.jump("jmp", fr.exit)
            fr.terminated = True
            return
        if st.value is None:
            if fr.result_seen:
                raise self.err(
                    fr,
                    st,
                    "return",
                    "this function returns a value on other paths",
                    "return a value on every path",
                )
            fr.bare_return = True
            self.b.jump("jmp", fr.exit)
            fr.terminated = True
            return
        if fr.bare_return:
            raise self.err(
                fr,
                st,
                "return",
                "this function returns no value on other paths",
                "return a value on every path",
            )
        v = self.expr(st.value, fr)
        if fr.result is None and not fr.result_seen:
            fr.result_seen = True
            if is_untyped(v.t):
                c = self.b.cell(cell_type(v.t))
                lo, hi = self.int_bounds(v) if v.t == ANY_INT else (0, 0)
                fr.result = Val(v.t, c, lo=lo, hi=hi)
            else:
                t = self.string_local_type(v, v.t)
                fr.result = Val(t, self.b.cell(t))
        res = fr.result
        assert res is not None and res.cell is not None
        if it.is_string(v.t) and it.is_string(res.t) and v.t != res.t:
            # Strings meet at the result's type (truncated, as every string write).
            v = self.coerce(v, res.t, fr, st.value)
            self.rewrite(fr, st.value, res.t)
        if v.t != res.t:
            raise self.err(
                fr,
                st.value,
                "return value",
                f"returns {v.t} here but {res.t} elsewhere",
                "convert every return value to the same type (TO_<TYPE>(x))",
            )
        if v.t == ANY_INT:
            lo, hi = self.int_bounds(v)
            fr.result = Val(res.t, res.cell, lo=min(res.lo, lo), hi=max(res.hi, hi))
        self.b.emit("mov", res.cell, self.cell_of(v))
        self.b.jump("jmp", fr.exit)
        fr.terminated = True

    def jump_unless(self, node: ast.expr, fr: Frame, target: Label, what: str) -> None:
        """Jumps to ``target`` when condition ``node`` is false, evaluating ``and``,
        ``or`` and ``not`` by jumps (short-circuit, as Python does) instead of
        computing a BOOL first."""
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            for v in node.values:
                self.jump_unless(v, fr, target, "operand of and")
            return
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            taken = Label()
            for v in node.values[:-1]:
                self.jump_if(v, fr, taken, "operand of or")
            self.jump_unless(node.values[-1], fr, target, "operand of or")
            self.b.place(taken)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.jump_if(node.operand, fr, target, "not")
            return
        c = self.condition(node, fr, what)
        if c.is_const:
            if not c.value:
                self.b.jump("jmp", target)
            return
        self.b.jump("jz", target, self.cell_of(c))

    def jump_if(self, node: ast.expr, fr: Frame, target: Label, what: str) -> None:
        """Jumps to ``target`` when condition ``node`` is true (see :meth:`jump_unless`)."""
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            for v in node.values:
                self.jump_if(v, fr, target, "operand of or")
            return
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            fails = Label()
            for v in node.values[:-1]:
                self.jump_unless(v, fr, fails, "operand of and")
            self.jump_if(node.values[-1], fr, target, "operand of and")
            self.b.place(fails)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.jump_unless(node.operand, fr, target, "not")
            return
        c = self.condition(node, fr, what)
        if c.is_const:
            if c.value:
                self.b.jump("jmp", target)
            return
        self.b.jump("jnz", target, self.cell_of(c))

    def if_stmt(self, st: ast.If, fr: Frame) -> None:
        els, end = Label(), Label()
        self.jump_unless(st.test, fr, els, "if condition")
        before = set(fr.assigned)
        refs = dict(fr.refs)
        self.block(st.body, fr)
        body_term, after_body, refs_body = fr.terminated, set(fr.assigned), fr.refs
        fr.terminated = False
        fr.assigned = set(before)
        fr.refs = dict(refs)
        if st.orelse:
            self.b.jump("jmp", end)
        self.b.place(els)
        self.block(st.orelse, fr)
        else_term, after_else = fr.terminated, set(fr.assigned)
        self.b.place(end)
        self.merge_paths(fr, [(body_term, after_body), (else_term, after_else)])
        self.merge_refs(fr, [refs_body, fr.refs])

    @staticmethod
    def merge_refs(fr: Frame, branches: list[dict[str, Entity]]) -> None:
        """After branches: a local that refers to the same place on every branch keeps
        it; one bound differently (or on some branches only) names no one place."""
        names = set().union(*branches)
        fr.refs = {}
        for n in names:
            first = branches[0].get(n)
            if first is not None and all(b.get(n) is first for b in branches):
                fr.refs[n] = first
            else:
                fr.ambiguous.add(n)

    @staticmethod
    def merge_paths(fr: Frame, paths: list[tuple[bool, set[str]]]) -> None:
        """After branches: terminated when every branch is; a local counts as assigned
        when every branch that goes on assigns it."""
        going = [a for term, a in paths if not term]
        if not going:
            fr.terminated = True
            fr.assigned = set().union(*(a for _, a in paths))
            return
        fr.terminated = False
        fr.assigned = set.intersection(*going)

    def for_stmt(self, st: ast.For, fr: Frame) -> None:
        if st.orelse:
            raise self.err(fr, st, "for ... else", "not supported", "use a flag variable")
        if not isinstance(st.target, ast.Name):
            raise self.err(
                fr,
                st.target,
                "loop target",
                "only a single name is supported",
                "for i in range(N):",
            )
        it_ = st.iter
        if not (
            isinstance(it_, ast.Call)
            and isinstance(it_.func, ast.Name)
            and it_.func.id == "range"
            and not it_.keywords
            and 1 <= len(it_.args) <= 3
        ):
            raise self.err(
                fr,
                it_,
                "for loop",
                "only for i in range(...) with constant bounds is supported",
                "iterate over indices: for i in range(N): ... self.values[i]",
            )
        bounds = []
        for a in it_.args:
            v = self.expr(a, fr)
            if not v.is_const or v.t != ANY_INT:
                raise self.err(
                    fr,
                    a,
                    "range bound",
                    "must be a constant integer",
                    "use a literal or a module-level constant",
                )
            if not it.fits(v.int_value, "LINT"):
                raise self.err(
                    fr,
                    a,
                    "range bound",
                    f"{v.value} does not fit in 64 bits (the loop counter is a LINT)",
                    "use bounds between -2**63 and 2**63 - 1",
                )
            bounds.append(v.int_value)
        if len(bounds) == 3 and bounds[2] == 0:
            raise self.err(fr, it_, "range", "step must not be zero")
        rng = range(*bounds) if len(bounds) > 1 else range(bounds[0])
        # The turns, counted without walking the range (len() would overflow on a
        # 64-bit range; a compiled loop is a loop, whatever its length).
        step = rng.step
        span = (rng.stop - rng.start) if step > 0 else (rng.start - rng.stop)
        turns = max(0, (span + abs(step) - 1) // abs(step))
        if turns > MAX_LOOP_TURNS:
            raise self.err(
                fr,
                it_,
                "range",
                f"{turns} turns; a loop may turn at most {MAX_LOOP_TURNS} times, the number "
                "of loop turns one scan may take (a longer loop faults every scan)",
                "a scan must end within its cycle: do part of the work each scan and keep "
                "the position in a Memory variable",
            )
        last = rng.start + (turns - 1) * step
        if turns and not it.fits(last + step, "LINT"):
            raise self.err(
                fr,
                it_,
                "range",
                f"the loop counter would pass the 64-bit limit after its last turn ({last})",
                "keep the bounds one step inside -2**63 .. 2**63 - 1",
            )
        var = st.target.id
        if var in fr.locals or var in fr.loop_vars:
            raise self.err(
                fr,
                st.target,
                "loop variable",
                f"{var!r} is already a variable here",
                "use a new name",
            )
        if assigns(st.body, var):
            raise self.err(
                fr,
                st.target,
                "loop variable",
                f"{var!r} is assigned inside the loop",
                "use another local",
            )
        before = set(fr.assigned)
        if turns <= MAX_UNROLLED_TURNS and self.needs_unroll(st, fr):
            self.unrolled_loop(st, fr, var, rng)
            fr.dead_loop_vars.add(var)
            fr.assigned = before
            return
        lo, hi = (min(rng.start, last), max(rng.start, last)) if turns else (0, 0)
        ctr = self.b.cell("LINT")
        self.b.emit("mov", ctr, self.b.const("LINT", rng.start))
        top, brk, cont = Label(), Label(), Label()
        self.b.place(top)
        cond = self.b.cell("BOOL")
        stop = self.b.const("LINT", rng.stop)
        self.b.emit("lt" if rng.step > 0 else "gt", cond, ctr, stop)
        self.b.jump("jz", brk, cond)
        fr.loop_vars[var] = Val(ANY_INT, ctr, lo=lo, hi=hi)
        fr.loops.append(LoopCtx(brk, cont))
        refs = dict(fr.refs)
        try:
            self.block(st.body, fr)
        finally:
            fr.loops.pop()
            del fr.loop_vars[var]
        # A reference bound in the body names the last turn's place, if any turn ran.
        self.merge_refs(fr, [refs, fr.refs])
        fr.terminated = False
        self.b.place(cont)
        self.b.emit("add", ctr, ctr, self.b.const("LINT", rng.step))
        self.b.loop_back(top)
        self.b.place(brk)
        fr.dead_loop_vars.add(var)
        fr.assigned = before

    def unrolled_loop(self, st: ast.For, fr: Frame, var: str, rng: range) -> None:
        """Compiles the body once per turn, the loop index a constant in each: every
        block of an array of user blocks is then addressed directly (no index checks,
        no tables), which is what makes a loop over channels of blocks fast."""
        brk = Label()
        if not rng:
            # Nothing runs, but the body must still compile: once, as dead code.
            self.b.jump("jmp", brk)
        refs = dict(fr.refs)
        for k in rng or [rng.start]:
            if k != rng.start:
                # The first turn is counted with the function that holds the loop.
                self.spend(self.node_count(st.body), (fr, st))
            cont = Label()
            fr.loop_vars[var] = Val(ANY_INT, value=k)
            fr.loops.append(LoopCtx(brk, cont))
            try:
                self.block(st.body, fr)
            finally:
                fr.loops.pop()
                del fr.loop_vars[var]
            fr.terminated = False
            self.b.place(cont)
        self.b.place(brk)
        self.merge_refs(fr, [refs, fr.refs])

    def needs_unroll(self, st: ast.For, fr: Frame) -> bool:
        """True when the loop indexes an array of user blocks of ``self``, in its body or
        in a method the body calls (at any depth)."""
        if fr.self_scope is None:
            return False
        return self.indexes_user_blocks(st, fr.self_scope, set())

    def indexes_user_blocks(self, root: ast.AST, sc: Entity, seen: set[object]) -> bool:
        for n in ast.walk(root):
            if (
                isinstance(n, ast.Subscript)
                and isinstance(n.value, ast.Attribute)
                and isinstance(n.value.value, ast.Name)
                and n.value.value.id == "self"
                and user_block_array(sc, n.value.attr)
            ):
                return True
            if (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and isinstance(n.func.value, ast.Name)
                and n.func.value.id == "self"
            ):
                # A method of the same class sees the same self. (Module-level helpers
                # have no self, so they cannot index the block arrays.)
                method = getattr(getattr(sc, "cls", None), n.func.attr, None)
                if inspect.isfunction(method) and method not in seen:
                    seen.add(method)
                    try:
                        mnode = function_info(method).node
                    except CompileError:
                        continue  # reported when the call itself is compiled
                    if self.indexes_user_blocks(mnode, sc, seen):
                        return True
        return False

    # -- match ----------------------------------------------------------------------------

    def match_stmt(self, st: ast.Match, fr: Frame) -> None:
        """``match`` over an integer, bit string, BOOL or enumeration: the subject is
        evaluated once; cases are tried in order and the first that matches runs.
        Cases of constant values without guards compile to one jump table when the
        values are dense enough (:data:`JTAB_MIN_CASES`), else to a chain of
        comparisons."""
        subj = self.expr(st.subject, fr)
        t = subj.t
        if not (t in it.INT_TYPES or t in it.BIT_TYPES or t in ("BOOL", ANY_INT) or is_enum(t)):
            hint = (
                "a match compares exactly, and floats are rarely equal: compare ranges "
                "with if/elif (if x < 1.5: ...)"
                if t in (*it.FLOAT_TYPES, ANY_REAL)
                else "match over integers, bit strings, BOOL or an enumeration"
            )
            raise self.err(fr, st.subject, "match subject", f"cannot match over {t}", hint)
        if subj.mutable:
            subj = self.copy(subj)  # the cases may change the variable; Python read it once
        subj = subj.used()
        cases = [self.case_plan(c, t, fr) for c in st.cases]
        x = self.cell_of(subj)
        before = set(fr.assigned)
        refs = dict(fr.refs)
        branch_refs: list[dict[str, Entity]] = []
        paths: list[tuple[bool, set[str]]] = []
        end = Label()
        table = self.jump_table(cases, t)
        bodies = [Label() for _ in cases]
        if table is not None:
            lo, slots, default = table
            fallthrough = Label()
            # A value of no case goes to the default case (_), or past the match.
            other = bodies[default] if default is not None else fallthrough
            self.b.jtab(x, lo, [bodies[k] if k is not None else other for k in slots], other)
            for k, (case, plan) in enumerate(zip(st.cases, cases, strict=True)):
                self.b.place(bodies[k])
                self.case_body(case, plan, subj, fr, before, paths, end, refs, branch_refs)
            self.b.place(fallthrough)
        else:
            for case, plan in zip(st.cases, cases, strict=True):
                nxt = Label()
                if plan.values is not None:
                    body = Label()
                    hit = self.temp("BOOL")
                    for v in plan.values:
                        self.b.emit("eq", hit, x, self.b.const(cell_type(t), v))
                        self.b.jump("jnz", body, hit)
                    self.b.jump("jmp", nxt)
                    self.b.place(body)
                self.case_body(case, plan, subj, fr, before, paths, end, refs, branch_refs, nxt)
                self.b.place(nxt)
        if not any(p.values is None and p.guard is None for p in cases):
            paths.append((False, set(before)))  # no case matched
            branch_refs.append(refs)
        self.b.place(end)
        self.merge_paths(fr, paths)
        self.merge_refs(fr, branch_refs)

    def case_body(
        self,
        case: ast.match_case,
        plan: CasePlan,
        subj: Val,
        fr: Frame,
        before: set[str],
        paths: list[tuple[bool, set[str]]],
        end: Label,
        refs: dict[str, Entity],
        branch_refs: list[dict[str, Entity]],
        nxt: Label | None = None,
    ) -> None:
        """One case after its pattern matched: the capture, the guard, the body."""
        fr.assigned = set(before)
        fr.terminated = False
        fr.refs = dict(refs)
        if plan.capture is not None:
            self.capture(plan.capture, subj, fr, case.pattern)
        if case.guard is not None:
            assert nxt is not None
            g = self.condition(case.guard, fr, "case guard")
            self.b.jump("jz", nxt, self.cell_of(g))
        self.block(case.body, fr)
        paths.append((fr.terminated, set(fr.assigned)))
        branch_refs.append(dict(fr.refs))
        if not fr.terminated:
            self.b.jump("jmp", end)
        fr.terminated = False

    def capture(self, name: str, subj: Val, fr: Frame, node: ast.AST) -> None:
        """``case n:`` binds the subject to local ``n`` (of the subject's type)."""
        cur = fr.locals.get(name)
        if name in fr.loop_vars or name in fr.refs or name == "self":
            raise self.err(fr, node, "case capture", f"{name!r} cannot be assigned here")
        if cur is None:
            t = self.literal_type(subj, fr, node) if is_untyped(subj.t) else subj.t
            if t != subj.t:
                # Python would bind the untyped value unconverted.
                raise self.err(
                    fr,
                    node,
                    "case capture",
                    f"the subject is an untyped {subj.t}; {name!r} would hold it with no type",
                    "match over a typed value, e.g. match TO_DINT(i):",
                )
            cur = Local(self.b.cell(t), t)
            fr.locals[name] = cur
        if not isinstance(cur, Local) or cur.t != subj.t:
            have = cur.t if isinstance(cur, Local) else "a constant"
            raise self.err(
                fr,
                node,
                "case capture",
                f"{name!r} is {have}, the subject is {subj.t} (a capture takes the "
                "subject as it is)",
                "capture into a new name",
            )
        self.b.emit("mov", cur.cell, self.cell_of(subj))
        fr.assigned.add(name)

    def case_plan(self, case: ast.match_case, t: str, fr: Frame) -> CasePlan:
        """The values a case's pattern matches (None: any value), its capture and
        guard."""
        values, capture = self.pattern(case.pattern, t, fr)
        return CasePlan(values, capture, case.guard)

    def pattern(self, p: ast.pattern, t: str, fr: Frame) -> tuple[list[int] | None, str | None]:
        if isinstance(p, ast.MatchAs):
            if p.pattern is None:
                return None, p.name
            values, inner = self.pattern(p.pattern, t, fr)
            if inner is not None:
                raise self.err(fr, p, "case pattern", "a pattern binds one name")
            return values, p.name
        if isinstance(p, ast.MatchOr):
            out: list[int] = []
            for q in p.patterns:
                values, cap = self.pattern(q, t, fr)
                if values is None or cap is not None:
                    raise self.err(fr, q, "case pattern", "alternatives are values (1 | 2 | 3)")
                out += [v for v in values if v not in out]
            return out, None
        if isinstance(p, ast.MatchSingleton):
            if not isinstance(p.value, bool):
                raise self.err(fr, p, "case pattern", "None is not a value of a control program")
            return self.pattern_value(Val("BOOL", value=p.value), t, fr, p), None
        if isinstance(p, ast.MatchValue):
            v = self.expr(p.value, fr)
            if not v.is_const:
                raise self.err(fr, p, "case pattern", f"{ast.unparse(p.value)} is not a constant")
            return self.pattern_value(v, t, fr, p), None
        raise self.err(
            fr,
            p,
            "case pattern",
            f"{type(p).__name__} patterns are not supported",
            "match literals, enumeration members (Phase.RED), alternatives (1 | 2), _, or "
            "a name with a guard (case n if n > 5:)",
        )

    def pattern_value(self, v: Val, t: str, fr: Frame, node: ast.AST) -> list[int]:
        """The value of a constant pattern as the subject's cells hold it; a value the
        subject's type cannot hold never matches (as in Python)."""
        if v.t == "BOOL" or t == "BOOL":
            if v.t != t:
                raise self.err(fr, node, "case pattern", f"cannot match {v.t} against {t}")
            return [int(bool(v.value))]
        if is_enum(t) or is_enum(v.t):
            if v.t != t:
                raise self.enum_mismatch(v.t, t, fr, node)
            return [v.int_value]
        if v.t not in it.INT_TYPES and v.t not in it.BIT_TYPES and v.t != ANY_INT:
            raise self.err(
                fr, node, "case pattern", f"cannot match {v.t} against {t}", "use integer values"
            )
        k = v.int_value
        return [k] if (t == ANY_INT and it.fits(k, "LINT")) or it.fits(k, cell_type(t)) else []

    def jump_table(
        self, cases: list[CasePlan], t: str
    ) -> tuple[int, list[int | None], int | None] | None:
        """A jump table for ``cases`` when they allow one and it pays: the lowest value,
        the case of each value up from it, and the case every other value goes to."""
        if t == "BOOL" or any(c.guard is not None for c in cases):
            return None
        owner: dict[int, int] = {}
        default: int | None = None
        for k, c in enumerate(cases):
            if c.values is None:
                default = k
                break  # a case after an irrefutable one never runs
            if c.capture is not None:
                return None
            for v in c.values:
                owner.setdefault(v, k)
        if len(owner) < JTAB_MIN_CASES:
            return None
        lo, hi = min(owner), max(owner)
        span = hi - lo + 1
        if span > JTAB_DENSITY * len(owner) + 16 or not (
            it.fits(lo, "LINT") and it.fits(hi, "LINT")
        ):
            return None
        return lo, [owner.get(lo + i) for i in range(span)], default

    # -- aggregates -----------------------------------------------------------------------

    @staticmethod
    def may_name_aggregate(node: ast.expr, fr: Frame) -> bool:
        """True when ``node`` is a path that may name an array, structure or block."""
        return isinstance(node, (ast.Attribute, ast.Subscript)) or (
            isinstance(node, ast.Name) and node.id in fr.refs
        )

    def assign_aggregate(self, tgt: ast.expr, src: Entity, fr: Frame) -> None:
        """``r = self.recs[i]`` binds a reference; ``self.a = self.b`` copies every
        leaf (the two must have the same structure or array type)."""
        if isinstance(tgt, ast.Name):
            self.bind_ref(tgt, src, fr)
            return
        if not isinstance(tgt, (ast.Attribute, ast.Subscript)):
            raise self.err(fr, tgt, "assignment target", "cannot be assigned to")
        self.copy_aggregate(self.path(tgt, fr), src, fr, tgt)

    def bind_ref(self, tgt: ast.Name, ent: Entity, fr: Frame) -> None:
        """A local that names an aggregate, as a Python name refers to an object: the
        place is fixed when it is bound (its indices are copied)."""
        name = tgt.id
        self.check_local_target(tgt, fr)
        if name in fr.locals:
            raise self.err(
                fr,
                tgt,
                "local variable type",
                f"{name!r} holds a value; this makes it refer to {ent.what()} (a local keeps "
                "one kind)",
                "use another name",
            )
        prev = fr.refs.get(name)
        if prev is not None and aggregate_shape(prev) != aggregate_shape(ent):
            raise self.err(
                fr,
                tgt,
                "local variable type",
                f"{name!r} refers to {describe_shape(prev)}; this makes it refer to "
                f"{describe_shape(ent)}",
                "use another name",
            )
        fr.refs[name] = ent.pinned(self.pin)
        fr.ambiguous.discard(name)
        fr.assigned.add(name)

    def pin(self, v: Val) -> Val:
        """An index value copied into a cell of its own (not a temporary)."""
        if v.is_const:
            return v
        c = self.b.cell(cell_type(v.t))
        self.b.emit("mov", c, self.cell_of(v))
        return Val(v.t, c, v.value, v.lo, v.hi)

    def copy_aggregate(self, dst: Entity, src: Entity, fr: Frame, node: ast.AST) -> None:
        """Copies ``src`` into ``dst`` leaf by leaf."""
        ds, ss = aggregate_shape(dst), aggregate_shape(src)
        if ds is None or ss is None or ds != ss:
            raise self.err(
                fr,
                node,
                "assignment",
                f"{ast.unparse(node)} is {describe_shape(dst)}; this assigns {describe_shape(src)}",
                "assign a variable of the same structure or array type, or the fields one by one",
            )
        pairs = list(
            zip(self.leaf_entities(dst, fr, node), self.leaf_entities(src, fr, node), strict=True)
        )
        for d, _ in pairs:
            d.check_store(self, fr, node, subscript=isinstance(node, ast.Subscript))
        for d, sv in pairs:
            d.store(self, sv.load(self, fr, node), fr, node)

    def leaf_entities(self, ent: Entity, fr: Frame, node: ast.AST) -> list[Entity]:
        """The scalar places of an aggregate, in layout order."""
        if isinstance(ent, Scalar):
            return [ent]
        if isinstance(ent, (ImageStruct, CellStruct)):
            return [
                leaf
                for name in ent.shape.fields
                for leaf in self.leaf_entities(
                    ent.member(self, name, fr, node, outside=False), fr, node
                )
            ]
        if isinstance(ent, (ImageArray, CellArray)):
            shape = aggregate_shape(ent)
            assert isinstance(shape, ArrayShape)
            out: list[Entity] = []
            for ix in itertools.product(*(range(n) for n in shape.dims)):
                idx: list[tuple[ast.expr, Val]] = [
                    (ast.Constant(k), Val(ANY_INT, value=k)) for k in ix
                ]
                out += self.leaf_entities(ent.index(self, idx, fr, node), fr, node)
            return out
        raise self.err(fr, node, "assignment", f"{ent.what()} cannot be copied")

    def footprint(self, ent: Entity, fr: Frame, node: ast.AST) -> set[object]:
        """Every image variable or cell an aggregate (with any index values) covers."""
        if isinstance(ent, (BuiltinFb, UserFb)):
            return {c + k for c in ent.loc.cells() for k in range(ent.shape.cells)}
        out: set[object] = set()
        for leaf in self.leaf_entities(ent, fr, node):
            if isinstance(leaf, ImageScalar):
                out.update(leaf.loc.names())
            elif isinstance(leaf, CellScalar):
                out.update(leaf.loc.cells())
        return out

    # -- assignment -----------------------------------------------------------------------

    def assign(self, tgt: ast.expr, v: Val, fr: Frame, value: ast.expr | None) -> None:
        if isinstance(tgt, ast.Name):
            self.assign_local(tgt, v, fr, value)
            return
        if isinstance(tgt, (ast.Attribute, ast.Subscript)):
            ent = self.target(tgt, fr)
            ent.store(self, v, fr, tgt)
            return
        info = UNSUPPORTED.get(type(tgt), ("assignment target", "assign one variable"))
        raise self.err(fr, tgt, info[0], "cannot be assigned to", info[1])

    def target(self, tgt: ast.Attribute | ast.Subscript, fr: Frame) -> Entity:
        """The place an assignment writes, checked to be writable."""
        ent = self.path(tgt, fr)
        ent.check_store(self, fr, tgt, subscript=isinstance(tgt, ast.Subscript))
        return ent

    def annotation_type(self, node: ast.expr, fr: Frame) -> str:
        """The IEC type an annotation names (``INT``, ``softplc.REAL``)."""
        from softplc.types import IecType, StringType

        if isinstance(node, ast.Call) and isinstance(self.static_object(node.func, fr), StringType):
            # STRING(20)
            arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
            cap = arg.value if isinstance(arg, ast.Constant) else None
            if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= it.MAX_STRING:
                raise self.err(
                    fr,
                    node,
                    "annotation",
                    f"{ast.unparse(node)}: a STRING's capacity is a number from 1 to "
                    f"{it.MAX_STRING}",
                    "write STRING(20), or STRING for STRING(80)",
                )
            return it.string_type(cap)
        t = self.static_object(node, fr)
        if isinstance(t, IecType):
            return t.name
        raise self.err(
            fr,
            node,
            "annotation",
            f"{ast.unparse(node)} is not an IEC type",
            "annotate a local with a type such as INT, DINT, REAL or BOOL",
        )

    def static_object(self, node: ast.expr, fr: Frame) -> object:
        """The module-level object a name or dotted name refers to (None if none)."""
        if isinstance(node, ast.Name):
            return fr.globals.get(node.id)
        if isinstance(node, ast.Attribute):
            owner = self.static_object(node.value, fr)
            return getattr(owner, node.attr, None) if owner is not None else None
        return None

    def ann_assign(self, st: ast.AnnAssign, fr: Frame) -> None:
        """``n: INT = value`` (or ``n: INT``) declares a local of that type."""
        tgt = st.target
        if not isinstance(tgt, ast.Name):
            raise self.err(
                fr,
                st,
                "annotated assignment",
                "only a local variable can be annotated",
                "declare variables of the program on the class: x = Memory(INT)",
            )
        t = self.annotation_type(st.annotation, fr)
        self.check_local_target(tgt, fr)
        cur = fr.locals.get(tgt.id)
        if isinstance(cur, Local) and cur.t != t:
            raise self.err(
                fr,
                st.annotation,
                "local variable type",
                f"{tgt.id!r} is already {cur.t}; this annotates it {t} (a local keeps one type)",
                "annotate a local once, at or before its first assignment",
            )
        if cur is None:
            fr.locals[tgt.id] = Local(self.b.cell(t), t)
        if st.value is not None:
            self.assign_local(tgt, self.expr(st.value, fr), fr, st.value)

    def check_local_target(self, tgt: ast.Name, fr: Frame) -> None:
        name = tgt.id
        if name in fr.loop_vars:
            raise self.err(fr, tgt, "loop variable", f"{name!r} cannot be assigned")
        if name in fr.bound_params:
            raise self.err(
                fr,
                tgt,
                "parameter",
                f"{name!r} is bound to an untyped constant or a read-only value",
                "copy it into a new local with a typed value",
            )
        if name == "self":
            raise self.err(fr, tgt, "assignment to self", "not allowed")

    def literal_type(self, v: Val, fr: Frame, node: ast.AST) -> str:
        """The type a local takes from an untyped first value: DINT for an integer
        (LINT when it does not fit a DINT), LREAL for a float."""
        if v.t == ANY_REAL:
            return "LREAL"
        lo, hi = self.int_bounds(v)
        if it.fits(lo, "DINT") and it.fits(hi, "DINT"):
            return "DINT"
        if it.fits(lo, "LINT") and it.fits(hi, "LINT"):
            return "LINT"
        raise self.err(
            fr,
            node,
            "integer constant",
            f"{v.value if v.is_const else f'{lo}..{hi}'} does not fit in 64 bits",
            "compiled integers have at most 64 bits (LINT/ULINT)",
        )

    @staticmethod
    def string_local_type(v: Val, t: str) -> str:
        """A local first assigned a string constant is a STRING(80), or of the
        constant's length when longer (IEC's default length); other values keep their
        type."""
        if v.is_const and it.is_string(t):
            return it.string_type(max(it.DEFAULT_STRING, len(str(v.value))))
        return t

    def assign_local(self, tgt: ast.Name, v: Val, fr: Frame, value: ast.expr | None) -> None:
        """Assigns a local. Its type is fixed by its annotation or its first value (an
        untyped number gives DINT/LINT or LREAL); later values convert implicitly to
        it, and reference mode converts them the same way."""
        name = tgt.id
        self.check_local_target(tgt, fr)
        cur = fr.locals.get(name)
        if cur is None:
            t = self.literal_type(v, fr, value or tgt) if is_untyped(v.t) else v.t
            t = self.string_local_type(v, t)
            cur = Local(self.b.cell(t), t)
            fr.locals[name] = cur
        assert isinstance(cur, Local)
        if v.t != cur.t:
            try:
                v = self.coerce(v, cur.t, fr, tgt)
            except CompileError:
                hint = (
                    f"convert explicitly: {name} = TO_{cur.t}(...)"
                    if cur.t != "TIME"
                    else "use a TIME value"
                )
                raise self.err(
                    fr,
                    tgt,
                    "local variable type",
                    f"{name!r} is {cur.t}; this assigns {v.t}, which does not convert to "
                    f"{cur.t} implicitly (a local keeps one type)",
                    hint,
                ) from None
            if value is not None:
                self.rewrite(fr, value, cur.t)
        if not (v.fresh and v.cell is not None and self.b.retarget(v.cell, cur.cell)):
            self.b.emit("mov", cur.cell, self.cell_of(v))
        fr.assigned.add(name)

    def aug_assign(self, st: ast.AugAssign, fr: Frame) -> None:
        op = BINOPS.get(type(st.op))
        if op is None:
            raise self.err(fr, st, "operator", f"{type(st.op).__name__} is not supported")
        tgt = st.target
        if isinstance(tgt, ast.Name):
            cur = self.name(tgt, fr)
            v = self.binop_vals(op, cur, self.expr(st.value, fr), fr, st)
            self.assign_local(tgt, v, fr, None)
            return
        if not isinstance(tgt, (ast.Attribute, ast.Subscript)):
            raise self.err(fr, tgt, "augmented assignment target", "not supported")
        ent = self.target(tgt, fr)
        cur = ent.load(self, fr, tgt)
        if cur.mutable and self.has_calls(st.value, fr):
            # Python reads the target before it evaluates the right-hand side, which
            # may call a method that changes it (self.m += self.bump()).
            cur = self.copy(cur)
        v = self.binop_vals(op, cur, self.expr(st.value, fr), fr, st)
        ent.store(self, v, fr, tgt)


def user_block_array(sc: Entity, attr: str) -> bool:
    """True when ``self.<attr>`` of scope ``sc`` is an array of user blocks."""
    if isinstance(sc, ProgramScope):
        ent = sc.attrs.get(attr)
        return isinstance(ent, CellArray) and isinstance(ent.shape.elem, UserFbShape)
    if isinstance(sc, UserFb):
        f = sc.shape.fields.get(attr)
        return (
            f is not None
            and isinstance(f.shape, ArrayShape)
            and isinstance(f.shape.elem, UserFbShape)
        )
    return False
