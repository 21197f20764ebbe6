"""Calls: helper functions and methods (inlined), and function block calls.

A helper's body is compiled in place of each call, in a frame of its own. Scalar
arguments are passed by value, as Python does with numbers; an argument that names an
aggregate (an array, a block) is passed by reference: the parameter names the caller's
place, as a Python parameter names the caller's object.
"""

from __future__ import annotations

import ast
import builtins
import enum
import inspect
from collections.abc import Callable
from types import FunctionType

from softplc.compiler.entities import (
    BuiltinFb,
    CellArray,
    CellStruct,
    Constant,
    ImageArray,
    ImageScalar,
    ImageStruct,
    MethodRef,
    Scalar,
    UserFb,
)
from softplc.compiler.expressions import Expressions
from softplc.compiler.model import Entity, Frame, Local, Val
from softplc.compiler.source import first_store, is_self_path, root_name
from softplc.iectypes import ANY_INT, ANY_REAL
from softplc.limits import MAX_INLINE_DEPTH
from softplc.types import is_enum_class

__all__ = ["Arg", "Calls"]

#: An argument: a value, or a place passed by reference.
Arg = Val | Entity


class Calls(Expressions):
    """Compiles calls of helpers, methods and blocks."""

    # -- what the other parts provide ---------------------------------------------------

    def stdlib_call(self, name: str, node: ast.Call, fr: Frame) -> Val:
        raise NotImplementedError

    def enum_call(self, cls: type[enum.IntEnum], node: ast.Call, fr: Frame) -> Val:
        raise NotImplementedError

    # -- dispatch -------------------------------------------------------------------------

    def call(self, node: ast.Call, fr: Frame, statement: bool) -> Val | None:
        f = node.func
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.err(
                    fr, a, "starred argument", "not supported", "pass arguments one by one"
                )
        for kw in node.keywords:
            if kw.arg is None:
                raise self.err(
                    fr, kw.value, "**kwargs", "not supported", "pass keyword arguments by name"
                )
        if isinstance(f, (ast.Attribute, ast.Subscript)) and (
            is_self_path(f) or root_name(f) in fr.refs
        ):
            ent = self.path(f, fr)
            if isinstance(ent, MethodRef):
                args = self.call_args(node, fr)
                return self.helper_call(ent.fn, ent.owner, args, node, fr, statement)
            if isinstance(ent, (BuiltinFb, UserFb)):
                if not statement:
                    raise self.err(
                        fr,
                        node,
                        "function block call",
                        "a block call is a statement, not a value",
                        f"call it on its own line, then read its outputs ({ast.unparse(f)}.Q)",
                    )
                self.fb_call(ent, node, fr)
                return None
            if isinstance(ent, CellArray) and ent.role == "block":
                raise self.err(
                    fr, node, "call of a block array", "call one element", "self.blocks[i](...)"
                )
            raise self.err(fr, node, "call", f"{ast.unparse(f)} is not callable")
        if isinstance(f, ast.Name):
            return self.call_name(f.id, node, fr, statement)
        raise self.err(fr, node, "call", f"{ast.unparse(f)} cannot be called in a compiled program")

    def call_name(self, n: str, node: ast.Call, fr: Frame, statement: bool) -> Val | None:
        if n in fr.locals or n in fr.loop_vars or n in fr.refs:
            raise self.err(fr, node, "call", f"{n!r} is a variable, not a function")
        target = fr.globals.get(n)
        if target is None:
            if n == "abs":
                return self.stdlib_call("ABS", node, fr)
            if n in ("min", "max"):
                raise self.err(
                    fr,
                    node,
                    f"builtin {n}",
                    "not available in compiled programs",
                    f"use {n.upper()}(a, b, ...) from softplc",
                )
            if n in ("int", "float", "bool", "round"):
                raise self.err(
                    fr,
                    node,
                    f"builtin {n}",
                    "not available in compiled programs",
                    "use an explicit IEC conversion: TO_INT(x), TO_REAL(x), TO_BOOL(x)",
                )
            if n == "range":
                raise self.err(fr, node, "range", "only allowed in a for statement")
            if hasattr(builtins, n):
                raise self.err(fr, node, f"builtin {n}", "not available in compiled programs")
            raise self.err(fr, node, "call", f"{n!r} is not defined")
        sname = self.stdlib_ids.get(id(target))
        if sname is not None:
            return self.stdlib_call(sname, node, fr)
        if is_enum_class(target):
            assert isinstance(target, type)
            return self.enum_call(target, node, fr)
        if target is abs:
            return self.stdlib_call("ABS", node, fr)
        if id(target) in self.fb_ids:
            raise self.err(
                fr,
                node,
                f"{n}(...)",
                "function blocks are declared on the class",
                f"declare it: timer = {n}(...) on the class, then call self.timer(...)",
            )
        if inspect.isfunction(target):
            args = self.call_args(node, fr)
            return self.helper_call(target, None, args, node, fr, statement)
        raise self.err(
            fr,
            node,
            "call",
            f"{n} ({type(target).__name__}) cannot be called in a compiled program",
            "call standard library functions, helper functions, methods or blocks",
        )

    # -- helpers and methods --------------------------------------------------------------

    def argument(self, node: ast.expr, fr: Frame) -> Arg:
        """An argument's value, or the aggregate it names (passed by reference)."""
        if isinstance(node, (ast.Attribute, ast.Subscript)) or (
            isinstance(node, ast.Name) and node.id in fr.refs
        ):
            ent = self.path(node, fr)
            if isinstance(ent, (Scalar, Constant)):
                return ent.load(self, fr, node)
            if isinstance(ent, (ImageArray, CellArray, ImageStruct, CellStruct, UserFb, BuiltinFb)):
                return ent
            return ent.load(self, fr, node)
        return self.expr(node, fr)

    def arguments(self, nodes: list[ast.expr], fr: Frame) -> list[Arg]:
        """Evaluates arguments left to right; a cell that a later argument's helper call
        could change is copied first."""
        vals: list[Arg] = []
        for i, n in enumerate(nodes):
            v = self.argument(n, fr)
            if (
                isinstance(v, Val)
                and v.mutable
                and any(self.has_calls(m, fr) for m in nodes[i + 1 :])
            ):
                v = self.copy(v)
            vals.append(v)
        return vals

    def call_args(self, node: ast.Call, fr: Frame) -> tuple[list[Arg], dict[str, Arg]]:
        """The positional and keyword arguments of a call, evaluated left to right."""
        vals = self.arguments([*node.args, *(k.value for k in node.keywords)], fr)
        pos = vals[: len(node.args)]
        kws = {str(k.arg): v for k, v in zip(node.keywords, vals[len(node.args) :], strict=True)}
        return pos, kws

    def helper_call(
        self,
        fn: FunctionType,
        owner: Entity | None,
        args: tuple[list[Arg], dict[str, Arg]],
        node: ast.Call,
        fr: Frame,
        statement: bool,
    ) -> Val | None:
        pos, kws = args
        pos = [self.copy(v) if isinstance(v, Val) and v.mutable else v for v in pos]
        kws = {k: (self.copy(v) if isinstance(v, Val) and v.mutable else v) for k, v in kws.items()}
        res = self.inline_body(fn, owner, pos, dict(kws), node, caller=fr)
        if res is None and not statement:
            raise self.err(fr, node, f"call of {fn.__name__}", "the helper returns no value")
        if res is not None and not res.is_const and res.cell is not None:
            res = Val(res.t, res.cell, res.value, res.lo, res.hi, True, res.src)
        return res

    def inline_body(
        self,
        fn: FunctionType,
        self_scope: Entity | None,
        args: list[Arg],
        kwargs: dict[str, Arg],
        call_node: ast.AST | None,
        *,
        top: bool = False,
        caller: Frame | None = None,
        scan_of: str | None = None,
    ) -> Val | None:
        """Inlines ``fn``; ``scan_of`` names the program or block when ``fn`` is its
        scan() (which takes no arguments)."""
        fn = getattr(fn, "__func__", fn)
        if fn in self.inline_stack:
            assert caller is not None and call_node is not None
            cycle = [f.__name__ for f in self.inline_stack[self.inline_stack.index(fn) :]]
            how = (
                f"{fn.__name__} calls itself"
                if len(cycle) == 1
                else f"{fn.__name__} calls itself through {', '.join(cycle[1:])} "
                f"({' > '.join([*cycle, fn.__name__])})"
            )
            raise self.err(
                caller,
                call_node,
                "recursive call",
                f"{how}; calls are inlined, so recursion has no end",
                "use a for loop",
            )
        if len(self.inline_stack) > MAX_INLINE_DEPTH:
            assert caller is not None and call_node is not None
            raise self.err(
                caller,
                call_node,
                f"call of {fn.__name__}",
                f"calls of helpers, methods and blocks nest more than {MAX_INLINE_DEPTH} "
                f"deep here{self.call_chain()}",
                "flatten the chain of helpers",
            )
        info = self.function_info(fn)
        node, assigned = info.node, info.assigned
        self.spend(info.size, (caller, call_node) if caller and call_node else None)
        fr = Frame(
            name=fn.__name__,
            file=info.display,
            lines=info.lines,
            globals=fn.__globals__,
            self_scope=self_scope,
            assigned_names=assigned,
            fn=fn,
            helper=not top,
        )
        params = node.args
        if params.vararg or params.kwarg or params.kwonlyargs or params.posonlyargs:
            raise self.err(
                fr,
                node,
                "function signature",
                "*args, **kwargs and keyword-only parameters are not supported",
                "use plain positional parameters",
            )
        names = [a.arg for a in params.args]
        if self_scope is not None:
            if not names or names[0] != "self":
                raise self.err(fr, node, "method", "the first parameter must be self")
            names = names[1:]
        if scan_of is not None and names:
            # The engine calls scan() of a class-form program (and a block call runs the
            # block's scan()) without arguments; inputs are attributes of self.
            raise self.err(
                fr,
                params.args[1],
                "scan signature",
                f"scan() of {scan_of} takes only self, not {', '.join(names)}",
                "write def scan(self): and read inputs as self.<name> (declared with "
                "Input(...)); an object with scan(io) is a plain Python program, "
                "which is not compiled",
            )
        defaults = list(fn.__defaults__ or ())
        bound: dict[str, Arg] = {}
        # Where each argument is written (the call's argument, or the default in the
        # helper), for errors about it.
        where: dict[str, tuple[Frame, ast.AST]] = {}
        call_args = call_node.args if isinstance(call_node, ast.Call) else []
        call_kws = (
            {k.arg: k.value for k in call_node.keywords} if isinstance(call_node, ast.Call) else {}
        )
        for i, n in enumerate(names):
            if i < len(args):
                bound[n] = args[i]
                if caller is not None and i < len(call_args):
                    where[n] = (caller, call_args[i])
            elif n in kwargs:
                bound[n] = kwargs.pop(n)
                if caller is not None and n in call_kws:
                    where[n] = (caller, call_kws[n])
            else:
                k = i - (len(names) - len(defaults))
                if k < 0:
                    assert caller is not None and call_node is not None
                    raise self.err(
                        caller, call_node, f"call of {fn.__name__}", f"missing argument {n!r}"
                    )
                dnode = params.defaults[k]
                bound[n] = self.const_from_python(fr, dnode, defaults[k])
                where[n] = (fr, dnode)
        if len(args) > len(names) or kwargs:
            assert caller is not None and call_node is not None
            raise self.err(caller, call_node, f"call of {fn.__name__}", "too many arguments")
        if caller is not None and call_node is not None:
            self.check_aliasing(fn, bound, caller, call_node)
        for n, v in bound.items():
            self.bind_param(fn, fr, n, v, where.get(n), caller, call_node)
        self.inline_stack.append(fn)
        if caller is not None and call_node is not None:
            self.call_sites.append((caller, call_node, fn.__name__))
        back = (self.b.files[self.b.file], self.b.line)
        try:
            self.block(node.body, fr)
        finally:
            self.inline_stack.pop()
            if caller is not None and call_node is not None:
                self.call_sites.pop()
        if fr.result_seen and not fr.terminated:
            raise self.err(
                fr,
                node.body[-1],
                f"function {fn.__name__}",
                "may reach its end without returning a value (Python would return None)",
                "end every path with a return",
            )
        self.b.place(fr.exit)
        self.b.at(*back)  # what follows the call belongs to the caller's line
        if top:
            return None
        return fr.result

    def check_aliasing(
        self, fn: FunctionType, bound: dict[str, Arg], caller: Frame, call_node: ast.AST
    ) -> None:
        """Two arguments passed by reference may not name overlapping places when the
        helper writes through either (IEC's rule for VAR_IN_OUT): writes through one
        name would change what the other reads, in the middle of the helper."""
        refs = [(n, v) for n, v in bound.items() if isinstance(v, Entity)]
        if len(refs) < 2:
            return
        fglobals = fn.__globals__
        written = writes_through(
            self.function_info(fn).node,
            lambda n: id(fglobals.get(n)) in self.stdlib_ids or n == "abs",
        )
        prints = {n: self.footprint(v, caller, call_node) for n, v in refs}
        for i, (a, ea) in enumerate(refs):
            for b, eb in refs[i + 1 :]:
                if (a in written or b in written) and prints[a] & prints[b]:
                    w = a if a in written else b
                    raise self.err(
                        caller,
                        call_node,
                        "aliased arguments",
                        f"{a!r} ({ea.what()}) and {b!r} ({eb.what()}) of {fn.__name__} may "
                        f"name the same place, and {fn.__name__} writes through {w!r}",
                        "pass places that cannot overlap (different variables, or constant "
                        "indices that differ), or copy one first",
                    )

    def bind_param(
        self,
        fn: FunctionType,
        fr: Frame,
        n: str,
        v: Arg,
        where: tuple[Frame, ast.AST] | None,
        caller: Frame | None,
        call_node: ast.AST | None,
    ) -> None:
        """Binds parameter ``n`` of ``fn`` in its frame ``fr``."""
        node = fr_node = self.function_info(fn).node
        wfr, wnode = where or (caller or fr, call_node or fr_node)
        if isinstance(v, Entity):
            if n in fr.assigned_names:
                raise self.err(
                    wfr,
                    wnode,
                    f"argument {n!r} of {fn.__name__}",
                    f"{n!r} refers to {v.what()} (passed by reference), and "
                    f"{fn.__name__} assigns {n!r} ({fr.file}:{first_store(node.body, n)})",
                    f"assign its elements or fields instead, or use another local in {fn.__name__}",
                )
            fr.refs[n] = v
            fr.assigned.add(n)
            return
        if n not in fr.assigned_names:
            fr.locals[n] = v.used() if not v.mutable else self.copy(v)
            fr.bound_params.add(n)
        elif v.t in (ANY_INT, ANY_REAL):
            # The helper assigns the parameter, so it is a local; a local keeps one
            # type, and an untyped number has none yet.
            line = first_store(node.body, n)
            kind = "integer" if v.t == ANY_INT else "float"
            raise self.err(
                wfr,
                wnode,
                f"argument {n!r} of {fn.__name__}",
                f"{fn.__name__} assigns {n!r} ({fr.file}:{line}), so {n!r} is a local "
                f"and needs a typed value; this passes an untyped {kind}",
                f"pass a typed value, e.g. TO_INT(...) or TO_REAL(...), or assign a new "
                f"local in {fn.__name__} instead of {n!r}",
            )
        else:
            # A local of the helper, initialised with the argument (typed constants
            # such as TO_INT(-5) included; a string constant makes a STRING(80)).
            t = self.string_local_type(v, v.t)
            c = self.b.cell(t)
            self.b.emit("mov", c, self.cell_of(self.coerce(v, t, wfr, wnode)))
            fr.locals[n] = Local(c, t)
        fr.assigned.add(n)

    # -- blocks ---------------------------------------------------------------------------

    def fb_call(self, ent: BuiltinFb | UserFb, node: ast.Call, fr: Frame) -> None:
        if node.args:
            raise self.err(
                fr,
                node,
                "block call",
                "inputs are passed by keyword",
                "self.timer(IN=x, PT=ms(500))",
            )
        kws = node.keywords
        names = [str(k.arg) for k in kws]
        targets = [self.fb_input(ent, kw, name, fr) for kw, name in zip(kws, names, strict=True)]
        # Python evaluates every keyword value before the block stores any of them. A
        # value is stored at once when no later value could tell (no later value calls
        # a helper or names the block); otherwise it waits, copied first if an earlier
        # store would change the cell it was read from (self.sr(S1=self.sr.R, R=...)).
        fb_root = self_attr_root(node.func)
        waiting: list[tuple[ast.expr, Entity, Arg]] = []
        for k, (kw, target) in enumerate(zip(kws, targets, strict=True)):
            v = self.argument(kw.value, fr)
            later = [x.value for x in kws[k + 1 :]]
            if not waiting and all(self.blind_to(m, fb_root, fr) for m in later):
                self.store_input(ent, target, v, fr, kw.value)
                continue
            if isinstance(v, Val) and v.mutable:
                v = self.copy(v)
            elif isinstance(v, Val):
                v = v.used()
            waiting.append((kw.value, target, v))
        for value_node, target, v in waiting:
            self.store_input(ent, target, v, fr, value_node)
        if isinstance(ent, UserFb):
            self.inline_user_fb(ent, node, fr)
        else:
            ent.run(self)

    def blind_to(self, node: ast.expr, fb_root: str | None, fr: Frame) -> bool:
        """True when evaluating ``node`` cannot see an input of the block change: it
        calls no helper, reads nothing under the attribute of ``self`` the block is in
        (``self.rss`` for ``self.rss[k]``: any element may be the block), and names no
        local reference that could be the block (one into the process image cannot)."""
        if self.has_calls(node, fr) or fb_root is None:
            return False
        if any(
            isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name)
            and n.value.id == "self"
            and n.attr == fb_root
            for n in ast.walk(node)
        ):
            return False
        image = (ImageScalar, ImageArray, ImageStruct)
        return not any(
            isinstance(n, ast.Name) and n.id in fr.refs and not isinstance(fr.refs[n.id], image)
            for n in ast.walk(node)
        )

    def fb_input(self, ent: BuiltinFb | UserFb, kw: ast.keyword, name: str, fr: Frame) -> Entity:
        """The input ``name`` of block ``ent`` (an error naming the inputs if none)."""
        if isinstance(ent, UserFb):
            f = ent.shape.fields.get(name)
            if f is None or f.role != "input":
                ins = [k for k, x in ent.shape.fields.items() if x.role == "input"]
                raise self.err(
                    fr,
                    kw.value,
                    "block input",
                    f"{ent.cls.__name__} has no input {name!r}",
                    f"inputs: {', '.join(ins)}",
                )
            return ent.field_entity(name, f, False)
        spec = ent.shape.fields.get(name)
        if spec is None or spec.role != "input":
            ins = [k for k, x in ent.shape.fields.items() if x.role == "input"]
            raise self.err(
                fr,
                kw.value,
                f"{ent.kind} input",
                f"{ent.kind} has no input {name!r}",
                f"inputs: {', '.join(ins)}",
            )
        return ent.member(self, name, fr, kw.value, outside=True)

    def store_input(
        self, ent: BuiltinFb | UserFb, target: Entity, v: Arg, fr: Frame, node: ast.expr
    ) -> None:
        if isinstance(v, Entity):
            if isinstance(ent, BuiltinFb):
                raise self.err(fr, node, f"{ent.kind} input", f"{target.label} takes a value")
            self.copy_aggregate(target, v, fr, node)
        else:
            target.store(self, v, fr, node)

    def inline_user_fb(self, ent: Entity, node: ast.Call, fr: Frame) -> None:
        assert isinstance(ent, UserFb)
        self.inline_body(
            ent.cls.scan,  # type: ignore[attr-defined]
            ent,
            [],
            {},
            node,
            caller=fr,
            scan_of=f"block {ent.cls.__name__}",
        )


def writes_through(node: ast.FunctionDef, is_stdlib: Callable[[str], bool]) -> set[str]:
    """The names a function may write through: assigned through a path rooted at them
    (``p.x = ...``, ``p[i] += ...``), called as a block (``p.fb(...)``), or passed on to
    a helper or method (which may write); a standard function only reads."""
    out: set[str] = set()
    for n in ast.walk(node):
        targets: list[ast.expr] = []
        if isinstance(n, ast.Assign):
            targets = [t for t in n.targets if isinstance(t, (ast.Attribute, ast.Subscript))]
        elif isinstance(n, (ast.AugAssign, ast.AnnAssign)):
            if isinstance(n.target, (ast.Attribute, ast.Subscript)):
                targets = [n.target]
        elif isinstance(n, ast.Call):
            if isinstance(n.func, (ast.Attribute, ast.Subscript)):
                targets = [n.func]
            if not (isinstance(n.func, ast.Name) and is_stdlib(n.func.id)):
                targets += [*n.args, *(k.value for k in n.keywords)]
        for t in targets:
            r = root_name(t)
            if r is not None:
                out.add(r)
    return out


def self_attr_root(node: ast.expr) -> str | None:
    """The attribute of ``self`` a path starts with (``rss`` of ``self.rss[k].x``), or
    None for a path not rooted at ``self``."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            return node.attr
        node = node.value
    return None
