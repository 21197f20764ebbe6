"""Python AST -> typed intermediate form.

The compiler reads the source of a program class (and of the helper functions and user
function blocks it uses), types every expression with the rules of
:mod:`softplc.iectypes` (the same rules the reference mode applies at run time), and
emits register-style instructions on typed cells. Constant expressions are folded by
evaluating them with the reference semantics, so both forms agree by construction.

Static types mirror the dynamic types of the reference mode exactly: typed IEC values
where the program reads declared variables, block outputs or typed calls, and the
untyped ``ANY_INT``/``ANY_REAL`` of Python literals and loop indices. That is why a
local variable must get a typed value (``n = TO_INT(0)``, not ``n = 0``): in Python it
would otherwise hold an untyped number whose type changes the meaning of later
arithmetic.
"""

from __future__ import annotations

import ast
import inspect
import math
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

from softplc import iectypes as it
from softplc import stdlib
from softplc.authoring import is_function_block
from softplc.compiler.errors import CompileError, LimitReached
from softplc.compiler.irbuilder import IrBuilder, Label
from softplc.iectypes import ANY_INT, ANY_REAL, FLOAT_TYPES, INT_BITS, INT_TYPES, TypeRuleError
from softplc.limits import (
    MAX_CONSTANT_BITS,
    MAX_INLINE_DEPTH,
    MAX_INLINED_NODES,
    MAX_LOOP_TURNS,
    MAX_UNROLLED_TURNS,
)

__all__ = ["compile_instance", "declaration_site"]

# Bounds for untyped integer arithmetic done in 64-bit cells: results must stay inside,
# so the wrap-around of the cell never differs from Python's unbounded integers.
_ANY_INT_LIMIT = 1 << 62
_EXACT_FLOAT_INT = 1 << 53

_BINOPS: dict[type, str] = {
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
_CMPOPS: dict[type, str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_CMP_IR = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_MATH = {
    "SQRT": "sqrt",
    "SIN": "sin",
    "COS": "cos",
    "TAN": "tan",
    "ASIN": "asin",
    "ACOS": "acos",
    "ATAN": "atan",
    "EXP": "exp",
    "LN": "ln",
    "LOG": "log",
}
_ARTICLE = {"output": "an", "memory": "a"}
_TIME_LITERAL = re.compile(r"^\s*(L?TIME#|L?T#)", re.IGNORECASE)

# Unsupported statements and expressions: construct name and hint.
_UNSUPPORTED: dict[type, tuple[str, str]] = {
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
    ast.Match: ("match statement", "use if/elif/else"),
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


# ---------------------------------------------------------------------------------------
# Values and entities


@dataclass(frozen=True)
class Val:
    """A typed operand: a constant (``cell is None``) or a cell."""

    t: str
    cell: int | None = None
    value: Any = None
    lo: int = 0
    hi: int = 0
    mutable: bool = False
    # Where a constant was written (frame, node), for errors raised when it is used.
    src: tuple[Frame, ast.AST] | None = field(default=None, compare=False, hash=False)

    @property
    def is_const(self) -> bool:
        return self.cell is None


def cell_type(t: str) -> str:
    """The cell type that holds a value of static type ``t``."""
    if t == ANY_INT:
        return "LINT"
    if t == ANY_REAL:
        return "LREAL"
    return t


@dataclass
class ImageVar:
    name: str
    t: str
    area: str


@dataclass
class ImageArray:
    names: list[str]
    t: str
    area: str


@dataclass
class CellVar:
    cell: int
    t: str
    role: str


@dataclass
class CellArray:
    base: int
    t: str
    n: int
    role: str


@dataclass
class BuiltinFb:
    kind: str
    base: int


@dataclass
class BuiltinFbArray:
    kind: str
    base: int
    stride: int
    n: int


@dataclass
class UserFb:
    scope: Scope


@dataclass
class UserFbArray:
    scopes: list[Scope]


@dataclass
class FbField:
    """A field of one builtin block instance (cell known) or of an array element."""

    kind: str
    name: str
    t: str
    role: str
    cell: int | None = None
    base: int = 0
    stride: int = 0
    n: int = 0
    index: Val | None = None


@dataclass
class Scope:
    """What ``self.<attr>`` means inside a program or a user function block."""

    obj: Any
    # The @program / @function_block class: the decorator sets its _softplc_* attributes
    # at run time, so no static type describes them.
    cls: Any
    kind: str  # "program" or "fb"
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)


def _fb_fields(kind: str) -> dict[str, tuple[int, str, str]]:
    cls = stdlib.FB_TYPES[kind]
    return {n: (i, t, r) for i, (n, t, r, _) in enumerate(cls.FIELDS)}


# ---------------------------------------------------------------------------------------
# Frames


@dataclass
class Local:
    cell: int
    t: str


@dataclass
class LoopCtx:
    brk: Label
    cont: Label


@dataclass
class Frame:
    name: str
    file: str
    lines: list[str]
    globals: dict[str, Any]
    self_scope: Scope | None
    assigned_names: set[str]
    locals: dict[str, Local | Val] = field(default_factory=dict)
    bound_params: set[str] = field(default_factory=set)
    assigned: set[str] = field(default_factory=set)
    loop_vars: dict[str, Val] = field(default_factory=dict)
    dead_loop_vars: set[str] = field(default_factory=set)
    loops: list[LoopCtx] = field(default_factory=list)
    exit: Label = field(default_factory=Label)
    result: Val | None = None
    result_seen: bool = False
    helper: bool = False
    terminated: bool = False
    bare_return: bool = False


# ---------------------------------------------------------------------------------------
# Source access


_PARSED: dict[str, tuple[float, ast.Module, list[str]]] = {}


def _parse_file(path: str) -> tuple[ast.Module, list[str]]:
    mtime = os.path.getmtime(path)
    hit = _PARSED.get(path)
    if hit is not None and hit[0] == mtime:
        return hit[1], hit[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tree = ast.parse(text, filename=path)
    lines = text.splitlines()
    _PARSED[path] = (mtime, tree, lines)
    return tree, lines


def _source_file(obj: Any, what: str) -> str:
    try:
        path = inspect.getsourcefile(obj)
    except (TypeError, OSError):
        path = None
    if path is None and isinstance(obj, type):
        # A module loaded without registering in sys.modules: use a method's code.
        for v in vars(obj).values():
            code = getattr(v, "__code__", None)
            if code is not None:
                path = code.co_filename
                break
    if path is None or not os.path.exists(path):
        raise CompileError(
            "<unknown>",
            0,
            0,
            what,
            "its source code is not available",
            "define programs, blocks and helpers in a .py file",
        )
    return path


def _first_line(node: ast.ClassDef | ast.FunctionDef) -> int:
    return min([d.lineno for d in node.decorator_list] + [node.lineno])


def _find_class(cls: type) -> tuple[str, ast.ClassDef, list[str]]:
    path = _source_file(cls, f"class {cls.__name__}")
    tree, lines = _parse_file(path)
    try:
        start = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        start = None
    candidates = [
        n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__
    ]
    scan = getattr(cls.__dict__.get("scan"), "__code__", None)
    if scan is not None:
        # The class whose body holds scan() is the one (several classes may share a name).
        for n in candidates:
            end = getattr(n, "end_lineno", None) or n.lineno
            if n.lineno <= scan.co_firstlineno <= end:
                return path, n, lines
    for n in candidates:
        if start is None or _first_line(n) == start or n.lineno == start:
            return path, n, lines
    if candidates:
        return path, candidates[0], lines
    raise CompileError(path, 1, 1, f"class {cls.__name__}", "not found in its source file")


def _find_function(fn: Any) -> tuple[str, ast.FunctionDef, list[str]]:
    path = _source_file(fn, f"function {fn.__name__}")
    tree, lines = _parse_file(path)
    first = fn.__code__.co_firstlineno
    for n in ast.walk(tree):
        if (
            isinstance(n, ast.FunctionDef)
            and n.name == fn.__name__
            and first in (_first_line(n), n.lineno)
        ):
            return path, n, lines
    raise CompileError(path, first, 1, f"function {fn.__name__}", "source not found")


@dataclass(frozen=True)
class FnInfo:
    """What the compiler needs of a function's source, found once per function (a
    helper inlined at many calls would otherwise be searched for and walked at each)."""

    node: ast.FunctionDef
    lines: list[str]
    display: str
    assigned: set[str]
    size: int


def _node_count(node: ast.AST) -> int:
    return sum(1 for _ in ast.walk(node))


def declaration_site(cls: type, attr: str) -> tuple[str, int, int]:
    """Where ``attr`` is declared on ``cls`` (or the base class that declares it):
    display path, line and 1-based column; the class line when not found, and
    ``("<unknown>", 0, 0)`` when the source is not available."""
    owner = next((k for k in cls.__mro__ if attr in vars(k)), cls)
    try:
        path, node, _ = _find_class(owner)
    except CompileError:
        return "<unknown>", 0, 0
    for st in node.body:
        targets = st.targets if isinstance(st, ast.Assign) else []
        if isinstance(st, ast.AnnAssign):
            targets = [st.target]
        if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
            return _display_path(path), st.lineno, st.col_offset + 1
    return _display_path(path), node.lineno, node.col_offset + 1


# ---------------------------------------------------------------------------------------
# The compiler


class Compiler:
    """Compiles one program instance."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.cls = type(obj)
        self.prog_name = str(obj.__dict__["_softplc_name"])
        path, self.class_node, _ = _find_class(self.cls)
        self.b = IrBuilder(self.prog_name, _display_path(path))
        self.live: list[tuple[str, int]] = []
        self.inline_stack: list[Any] = []
        self.unroll_consts: dict[str, int] = {}
        # The statement being compiled: where errors point that have no better node.
        self.stmt_at: tuple[Frame, ast.AST] | None = None
        self.stdlib_ids = {id(f): n for n, f in stdlib.FUNCTIONS.items()}
        self.fb_ids = {id(c): n for n, c in stdlib.FB_TYPES.items()}
        # Limits (softplc.limits): what has been spent, and where the compiler is, so
        # that an error can say which statement and which chain of calls went past.
        self.fn_info: dict[Any, FnInfo] = {}
        self.node_counts: dict[int, int] = {}
        self.inlined_nodes = 0
        self.call_sites: list[tuple[Frame, ast.AST, str]] = []
        self.top_stmt: tuple[Frame, ast.AST] | None = None
        self.declaring: tuple[type, str] | None = None

    # -- errors -----------------------------------------------------------------------

    def err(
        self, fr: Frame, node: ast.AST, construct: str, detail: str, hint: str = ""
    ) -> CompileError:
        line = getattr(node, "lineno", 0)
        col = getattr(node, "col_offset", -1)
        if 0 < line <= len(fr.lines) and col >= 0:
            raw = fr.lines[line - 1].encode("utf-8")[:col]
            col = len(raw.decode("utf-8", errors="replace"))
        return CompileError(fr.file, line, col + 1, construct, detail, hint)

    # -- entry --------------------------------------------------------------------------

    def compile(self) -> bytes:
        try:
            scope = self.program_scope()
            scan = self.cls.__dict__.get("scan") or self.cls.scan
            self.inline_body(
                scan, scope, [], {}, None, top=True, scan_of=f"program {self.cls.__name__}"
            )
        except LimitReached as e:
            raise self.size_error(e) from None
        except RecursionError:
            # Only reachable through nesting the other limits do not cover (deeply
            # nested block declarations); an error at the statement, not a traceback.
            where = self.top_stmt or self.stmt_at
            if where is None:
                raise CompileError(
                    *self.class_site(), "nesting", "the program nests too deeply to compile"
                ) from None
            raise self.err(
                *where,
                "nesting",
                "this statement nests calls, blocks or expressions too deeply to compile",
                "flatten it: fewer nested calls or blocks",
            ) from None
        return self.b.encode()

    # -- limits -------------------------------------------------------------------------

    def class_site(self) -> tuple[str, int, int]:
        line = _first_line(self.class_node)
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
            "of a helper, method or block is replaced by its body and loops over block "
            "arrays are unrolled"
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

    def function_info(self, fn: Any) -> FnInfo:
        info = self.fn_info.get(fn)
        if info is None:
            path, node, lines = _find_function(fn)
            info = FnInfo(
                node,
                lines,
                _display_path(path),
                _assigned_names(node.body),
                _node_count(node),
            )
            self.fn_info[fn] = info
        return info

    def node_count(self, nodes: list[ast.stmt]) -> int:
        # Keyed by the first node: the cached syntax trees keep every node alive.
        key = id(nodes[0]) if nodes else 0
        n = self.node_counts.get(key)
        if n is None:
            n = sum(_node_count(x) for x in nodes)
            self.node_counts[key] = n
        return n

    def program_scope(self) -> Scope:
        sc = Scope(self.obj, self.cls, "program", self.prog_name)
        for attr, var in self.cls._softplc_fields.items():
            full = f"{self.prog_name}.{attr}"
            if var.length is None:
                sc.attrs[attr] = ImageVar(full, var.elem_type, var.area)
            else:
                sc.attrs[attr] = ImageArray(
                    [f"{full}[{i}]" for i in range(var.length)], var.elem_type, var.area
                )
        self.add_blocks(sc)
        return sc

    def fb_scope(self, inst: Any, label: str) -> Scope:
        cls = type(inst)
        sc = Scope(inst, cls, "fb", label)
        vals = inst.__dict__["_softplc_vals"]
        for attr, var in cls._softplc_fb_fields.items():
            t = var.elem_type
            if var.length is None:
                sc.attrs[attr] = CellVar(self.b.cell(t, vals[attr]), t, var.area)
            else:
                cells = [self.b.cell(t, vals[attr][i]) for i in range(var.length)]
                sc.attrs[attr] = CellArray(cells[0], t, var.length, var.area)
        self.add_blocks(sc)
        return sc

    def alloc_fb(self, inst: stdlib.FunctionBlock) -> int:
        base = len(self.b.cells)
        for n, t, _, _ in inst.FIELDS:
            self.b.cell(t, inst.__dict__[n])
        return base

    def add_blocks(self, sc: Scope) -> None:
        for attr in sc.cls._softplc_blocks:
            if sc.kind == "program":
                # Named if the blocks need more cells than a program may have.
                self.declaring = (sc.cls, attr)
            inst = sc.obj.__dict__[attr]
            if isinstance(inst, list):
                if isinstance(inst[0], stdlib.FunctionBlock):
                    bases = [self.alloc_fb(x) for x in inst]
                    stride = len(inst[0].FIELDS)
                    sc.attrs[attr] = BuiltinFbArray(
                        type(inst[0]).__name__, bases[0], stride, len(inst)
                    )
                else:
                    sc.attrs[attr] = UserFbArray(
                        [self.fb_scope(x, f"{sc.label}.{attr}[{i}]") for i, x in enumerate(inst)]
                    )
            elif isinstance(inst, stdlib.FunctionBlock):
                sc.attrs[attr] = BuiltinFb(type(inst).__name__, self.alloc_fb(inst))
            elif is_function_block(inst):
                sc.attrs[attr] = UserFb(self.fb_scope(inst, f"{sc.label}.{attr}"))

    # -- inlining -----------------------------------------------------------------------

    def inline_body(
        self,
        fn: Any,
        self_scope: Scope | None,
        args: list[Val],
        kwargs: dict[str, Val],
        call_node: ast.AST | None,
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
        node, lines, assigned = info.node, info.lines, info.assigned
        self.spend(info.size, (caller, call_node) if caller and call_node else None)
        fr = Frame(
            name=fn.__name__,
            file=info.display,
            lines=lines,
            globals=fn.__globals__,
            self_scope=self_scope,
            assigned_names=assigned,
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
        bound: dict[str, Val] = {}
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
        for n, v in bound.items():
            if n not in assigned:
                fr.locals[n] = v if not v.mutable else self.copy(v)
                fr.bound_params.add(n)
            elif v.t in (ANY_INT, ANY_REAL):
                # The helper assigns the parameter, so it is a local; a local keeps one
                # type, and an untyped number has none yet.
                wfr, wnode = where.get(n, (caller or fr, call_node or node))
                line = _first_store(node.body, n)
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
                # such as TO_INT(-5) included).
                c = self.b.cell(v.t)
                self.b.emit("mov", c, self.cell_of(v))
                fr.locals[n] = Local(c, v.t)
            fr.assigned.add(n)
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

    # -- statements ---------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt], fr: Frame) -> None:
        for st in stmts:
            if fr.terminated:
                break
            self.b.at(fr.file, st.lineno)
            self.stmt_at = (fr, st)
            if not fr.helper:
                self.top_stmt = (fr, st)
            mark = len(self.live)
            self.stmt(st, fr)
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
            if len(st.targets) != 1:
                # a = b = expr: evaluate once, assign left to right (as Python does).
                v = self.expr(st.value, fr)
                v = self.copy(v) if v.mutable else v
                for tgt in st.targets:
                    self.assign(tgt, v, fr, st)
                return
            v = self.expr(st.value, fr)
            self.assign(st.targets[0], v, fr, st)
            return
        if isinstance(st, ast.AugAssign):
            self.aug_assign(st, fr)
            return
        if isinstance(st, ast.AnnAssign):
            raise self.err(
                fr,
                st,
                "annotated assignment",
                "annotations are not evaluated in Python, so they cannot type a local",
                "write x = TO_INT(0) (a typed value) instead of x: INT = 0",
            )
        if isinstance(st, ast.If):
            self.if_stmt(st, fr)
            return
        if isinstance(st, ast.For):
            self.for_stmt(st, fr)
            return
        if isinstance(st, (ast.Break, ast.Continue)):
            self.loop_jump(st, fr)
            return
        if isinstance(st, ast.Return):
            self.return_stmt(st, fr)
            return
        info = _UNSUPPORTED.get(type(st))
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
            if v.t in (ANY_INT, ANY_REAL):
                c = self.b.cell(cell_type(v.t))
                lo, hi = self.int_bounds(v)
                fr.result = Val(v.t, c, lo=lo, hi=hi)
            else:
                fr.result = Val(v.t, self.b.cell(v.t))
        res = fr.result
        assert res is not None and res.cell is not None
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
            fr.result = replace(res, lo=min(res.lo, lo), hi=max(res.hi, hi))
        self.b.emit("mov", res.cell, self.cell_of(v))
        self.b.jump("jmp", fr.exit)
        fr.terminated = True

    def if_stmt(self, st: ast.If, fr: Frame) -> None:
        c = self.condition(st.test, fr, "if condition")
        els, end = Label(), Label()
        self.b.jump("jz", els, self.cell_of(c))
        before = set(fr.assigned)
        self.block(st.body, fr)
        body_term, after_body = fr.terminated, set(fr.assigned)
        fr.terminated = False
        fr.assigned = set(before)
        if st.orelse:
            self.b.jump("jmp", end)
        self.b.place(els)
        self.block(st.orelse, fr)
        else_term, after_else = fr.terminated, set(fr.assigned)
        self.b.place(end)
        if body_term and else_term:
            fr.terminated = True
            fr.assigned = after_body | after_else
        elif body_term:
            fr.terminated = False
            fr.assigned = after_else
        elif else_term:
            fr.terminated = False
            fr.assigned = after_body
        else:
            fr.terminated = False
            fr.assigned = after_body & after_else

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
            if not it.fits(int(v.value), "LINT"):
                raise self.err(
                    fr,
                    a,
                    "range bound",
                    f"{v.value} does not fit in 64 bits (the loop counter is a LINT)",
                    "use bounds between -2**63 and 2**63 - 1",
                )
            bounds.append(int(v.value))
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
        if _assigns(st.body, var):
            raise self.err(
                fr,
                st.target,
                "loop variable",
                f"{var!r} is assigned inside the loop",
                "use another local",
            )
        before = set(fr.assigned)
        if self.needs_unroll(st, fr):
            if turns > MAX_UNROLLED_TURNS:
                raise self.err(
                    fr,
                    it_,
                    "unrolled loop",
                    f"{turns} turns; this loop indexes an array of function blocks, so each "
                    "turn is compiled separately (each element is its own block), and at "
                    f"most {MAX_UNROLLED_TURNS} turns are",
                    "loop over fewer blocks at a time, or use builtin blocks, which a "
                    "loop indexes without unrolling",
                )
            brk = Label()
            if not rng:
                # Nothing runs, but the body must still compile: once, as dead code.
                self.b.jump("jmp", brk)
            for k in rng or [rng.start]:
                if k != rng.start:
                    # The first turn is counted with the function that holds the loop.
                    self.spend(self.node_count(st.body), (fr, st))
                cont = Label()
                fr.loop_vars[var] = Val(ANY_INT, value=k)
                fr.loops.append(LoopCtx(brk, cont))
                self.block(st.body, fr)
                fr.loops.pop()
                fr.terminated = False
                self.b.place(cont)
            self.b.place(brk)
        else:
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
            self.block(st.body, fr)
            fr.loops.pop()
            fr.terminated = False
            self.b.place(cont)
            self.b.emit("add", ctr, ctr, self.b.const("LINT", rng.step))
            self.b.loop_back(top)
            self.b.place(brk)
        del fr.loop_vars[var]
        fr.dead_loop_vars.add(var)
        fr.assigned = before

    def needs_unroll(self, st: ast.For, fr: Frame) -> bool:
        """Loops that index arrays of user function blocks, in their body or in a method
        the body calls (at any depth), are unrolled, so every block instance is
        addressed with a constant index."""
        if fr.self_scope is None:
            return False
        return self.indexes_user_blocks(st, fr.self_scope, set())

    def indexes_user_blocks(self, root: ast.AST, sc: Scope, seen: set[Any]) -> bool:
        for n in ast.walk(root):
            if (
                isinstance(n, ast.Subscript)
                and isinstance(n.value, ast.Attribute)
                and isinstance(n.value.value, ast.Name)
                and n.value.value.id == "self"
                and isinstance(sc.attrs.get(n.value.attr), UserFbArray)
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
                method = getattr(sc.cls, n.func.attr, None)
                if inspect.isfunction(method) and method not in seen:
                    seen.add(method)
                    try:
                        _, mnode, _ = _find_function(method)
                    except CompileError:
                        continue  # reported when the call itself is compiled
                    if self.indexes_user_blocks(mnode, sc, seen):
                        return True
        return False

    # -- assignment -----------------------------------------------------------------

    def assign(self, tgt: ast.expr, v: Val, fr: Frame, st: ast.stmt) -> None:
        if isinstance(tgt, ast.Name):
            self.assign_local(tgt, v, fr)
            return
        if isinstance(tgt, ast.Attribute):
            ent = self.attribute_target(tgt, fr)
            self.store(ent, v, fr, tgt)
            return
        if isinstance(tgt, ast.Subscript):
            ent = self.subscript_target(tgt, fr)
            self.store(ent, v, fr, tgt)
            return
        info = _UNSUPPORTED.get(type(tgt), ("assignment target", "assign one variable"))
        raise self.err(fr, tgt, info[0], "cannot be assigned to", info[1])

    def assign_local(self, tgt: ast.Name, v: Val, fr: Frame) -> None:
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
        cur = fr.locals.get(name)
        if cur is None:
            if v.t in (ANY_INT, ANY_REAL):
                kind = "integer" if v.t == ANY_INT else "float"
                raise self.err(
                    fr,
                    tgt,
                    "untyped local",
                    f"{name!r} would hold an untyped {kind}, whose meaning depends on what "
                    "it meets",
                    f"give it a type: {name} = TO_DINT(...) or TO_REAL(...)",
                )
            c = self.b.cell(v.t)
            cur = Local(c, v.t)
            fr.locals[name] = cur
        assert isinstance(cur, Local)
        if v.t != cur.t:
            raise self.err(
                fr,
                tgt,
                "local variable type",
                f"{name!r} is {cur.t}; this assigns {v.t} (a local keeps one type)",
                f"convert explicitly: {name} = TO_{cur.t}(...)"
                if cur.t != "TIME"
                else "use a TIME value",
            )
        self.b.emit("mov", cur.cell, self.cell_of(v))
        fr.assigned.add(name)

    def store(self, ent: Any, v: Val, fr: Frame, node: ast.AST) -> None:
        if isinstance(ent, ImageVar):
            v = self.coerce(v, ent.t, fr, node)
            self.b.emit("st", self.b.var(ent.name, ent.t), self.cell_of(v))
        elif isinstance(ent, CellVar):
            v = self.coerce(v, ent.t, fr, node)
            self.b.emit("mov", ent.cell, self.cell_of(v))
        elif isinstance(ent, tuple) and ent[0] == "image_index":
            _, arr, idx = ent
            v = self.coerce(v, arr.t, fr, node)
            tab = self.b.table(arr.names, arr.t)
            self.b.emit("stx", tab, self.cell_of(idx), self.cell_of(v))
        elif isinstance(ent, tuple) and ent[0] == "cell_index":
            _, arr, idx = ent
            v = self.coerce(v, arr.t, fr, node)
            self.b.emit("stc", arr.base, 1, arr.n, self.cell_of(idx), self.cell_of(v))
        elif isinstance(ent, FbField):
            v = self.coerce(v, ent.t, fr, node)
            if ent.cell is not None:
                self.b.emit("mov", ent.cell, self.cell_of(v))
            else:
                assert ent.index is not None
                self.b.emit(
                    "stc", ent.base, ent.stride, ent.n, self.cell_of(ent.index), self.cell_of(v)
                )
        else:  # pragma: no cover - attribute_target filters
            raise self.err(fr, node, "assignment", "cannot assign here")

    def aug_assign(self, st: ast.AugAssign, fr: Frame) -> None:
        op = _BINOPS.get(type(st.op))
        if op is None:
            raise self.err(fr, st, "operator", f"{type(st.op).__name__} is not supported")
        tgt = st.target
        if isinstance(tgt, ast.Name):
            cur = self.name(tgt, fr)
            v = self.binop_vals(op, cur, self.expr(st.value, fr), fr, st)
            self.assign_local(tgt, v, fr)
            return
        if isinstance(tgt, ast.Attribute):
            ent = self.attribute_target(tgt, fr)
        elif isinstance(tgt, ast.Subscript):
            ent = self.subscript_target(tgt, fr)
        else:
            raise self.err(fr, tgt, "augmented assignment target", "not supported")
        cur = self.load(ent, fr, tgt)
        if cur.mutable and _has_calls(st.value, self, fr):
            # Python reads the target before it evaluates the right-hand side, which
            # may call a method that changes it (self.m += self.bump()).
            cur = self.copy(cur)
        v = self.binop_vals(op, cur, self.expr(st.value, fr), fr, st)
        self.store(ent, v, fr, tgt)

    def attribute_target(self, tgt: ast.Attribute, fr: Frame) -> Any:
        ent = self.attribute(tgt, fr, for_store=True)
        if isinstance(ent, ImageVar):
            if ent.area == "input":
                raise self.err(
                    fr,
                    tgt,
                    "assignment to an input",
                    f"{tgt.attr} is an Input (written by drivers)",
                    "declare it as Memory or Output if the program sets it",
                )
            return ent
        if isinstance(ent, CellVar):
            return ent
        if isinstance(ent, FbField):
            if ent.role != "input":
                raise self.err(
                    fr,
                    tgt,
                    "assignment to a block output",
                    f"{ent.kind}.{ent.name} is an {ent.role}",
                    "only inputs can be set",
                )
            return ent
        raise self.err(fr, tgt, "assignment", f"cannot assign to {ast.unparse(tgt)}")

    def subscript_target(self, tgt: ast.Subscript, fr: Frame) -> Any:
        ent = self.subscript(tgt, fr)
        if isinstance(ent, ImageVar) and ent.area == "input":
            raise self.err(fr, tgt, "assignment to an input", "inputs are written by drivers")
        if isinstance(ent, tuple) and ent[0] == "image_index" and ent[1].area == "input":
            raise self.err(fr, tgt, "assignment to an input", "inputs are written by drivers")
        if isinstance(ent, FbField) and ent.role != "input":
            raise self.err(fr, tgt, "assignment to a block output", f"{ent.name} is an {ent.role}")
        if isinstance(ent, (ImageVar, CellVar, FbField, tuple)):
            return ent
        raise self.err(fr, tgt, "assignment", f"cannot assign to {ast.unparse(tgt)}")

    # -- loads --------------------------------------------------------------------------

    def load(self, ent: Any, fr: Frame, node: ast.AST) -> Val:
        if isinstance(ent, ImageVar):
            c = self.b.temp(ent.t, self.live)
            self.b.emit("ld", c, self.b.var(ent.name, ent.t))
            return Val(ent.t, c)
        if isinstance(ent, CellVar):
            return Val(ent.t, ent.cell, mutable=True)
        if isinstance(ent, tuple) and ent[0] == "image_index":
            _, arr, idx = ent
            c = self.b.temp(arr.t, self.live)
            self.b.emit("ldx", c, self.b.table(arr.names, arr.t), self.cell_of(idx))
            return Val(arr.t, c)
        if isinstance(ent, tuple) and ent[0] == "cell_index":
            _, arr, idx = ent
            c = self.b.temp(arr.t, self.live)
            self.b.emit("ldc", c, arr.base, 1, arr.n, self.cell_of(idx))
            return Val(arr.t, c)
        if isinstance(ent, FbField):
            if ent.cell is not None:
                return Val(ent.t, ent.cell, mutable=True)
            assert ent.index is not None
            c = self.b.temp(ent.t, self.live)
            self.b.emit("ldc", c, ent.base, ent.stride, ent.n, self.cell_of(ent.index))
            return Val(ent.t, c)
        if isinstance(ent, Val):
            return ent
        what = type(ent).__name__
        hint = "read one of its outputs, e.g. self.timer.Q" if "Fb" in what else ""
        raise self.err(fr, node, "value", f"{ast.unparse(node)} is not a value", hint)

    # -- expressions --------------------------------------------------------------------

    def expr(self, node: ast.expr, fr: Frame) -> Val:
        v = self.expr_(node, fr)
        if v.is_const and v.src is None:
            v = replace(v, src=(fr, node))
        return v

    def expr_(self, node: ast.expr, fr: Frame) -> Val:
        self.b.at(fr.file, getattr(node, "lineno", self.b.line))
        if isinstance(node, ast.Constant):
            return self.constant(node, fr)
        if isinstance(node, ast.Name):
            return self.name(node, fr)
        if isinstance(node, ast.Attribute):
            ent = self.attribute(node, fr)
            return self.load(ent, fr, node)
        if isinstance(node, ast.Subscript):
            ent = self.subscript(node, fr)
            return self.load(ent, fr, node)
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
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
        info = _UNSUPPORTED.get(type(node))
        if info is not None:
            raise self.err(fr, node, info[0], "not supported in compiled programs", info[1])
        raise self.err(fr, node, type(node).__name__, "not supported in compiled programs")

    def operands(self, nodes: list[ast.expr], fr: Frame) -> list[Val]:
        """Evaluates left to right; a cell that a later operand's helper call could
        change is copied first (Python would have read its value already)."""
        out = []
        for i, n in enumerate(nodes):
            v = self.expr(n, fr)
            if v.mutable and any(_has_calls(m, self, fr) for m in nodes[i + 1 :]):
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
        if isinstance(v, str) and _TIME_LITERAL.match(v):
            try:
                return Val("TIME", value=it.coerce(v, "TIME"))
            except Exception as e:  # noqa: BLE001 - report any parse failure
                raise self.err(fr, node, "TIME literal", str(e)) from None
        if v is None:
            raise self.err(fr, node, "None", "not a value in a control program")
        raise self.err(
            fr,
            node,
            f"{type(v).__name__} constant",
            "only numbers, True/False and TIME literals ('T#1s500ms') are values",
        )

    def const_from_python(self, fr: Frame, node: ast.AST, v: Any) -> Val:
        if isinstance(v, bool):
            return Val("BOOL", value=v)
        if isinstance(v, (it.IecInt, it.IecReal)):
            return Val(v.iec, value=v)
        if isinstance(v, int):
            return Val(ANY_INT, value=v)
        if isinstance(v, float):
            return Val(ANY_REAL, value=v)
        if isinstance(v, str) and _TIME_LITERAL.match(v):
            return Val("TIME", value=it.coerce(v, "TIME"))
        raise self.err(
            fr, node, "constant", f"{v!r} ({type(v).__name__}) is not a number, BOOL or TIME"
        )

    def name(self, node: ast.Name, fr: Frame) -> Val:
        n = node.id
        if n in fr.loop_vars:
            return fr.loop_vars[n]
        if n in fr.dead_loop_vars and n not in fr.assigned_names:
            raise self.err(
                fr,
                node,
                "loop variable after its loop",
                f"{n!r} is only defined inside its for loop",
                "copy it to a typed local inside the loop",
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
            return Val(loc.t, loc.cell, mutable=True)
        if n == "self":
            raise self.err(fr, node, "self", "use an attribute of self")
        if n in fr.globals:
            gv = fr.globals[n]
        elif n in ("True", "False"):
            return Val("BOOL", value=n == "True")
        else:
            import builtins

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

    def attribute(self, node: ast.Attribute, fr: Frame, for_store: bool = False) -> Any:
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
            return self.self_attr(fr.self_scope, node.attr, fr, node)
        owner = None
        if isinstance(base, ast.Attribute):
            owner = self.attribute(base, fr)
        elif isinstance(base, ast.Subscript):
            owner = self.subscript(base, fr)
        elif isinstance(base, ast.Name) and base.id in fr.globals:
            raise self.err(
                fr,
                node,
                "module attribute",
                f"{ast.unparse(node)} is not supported",
                "import the constant by name (from mod import NAME)",
            )
        if isinstance(owner, BuiltinFb):
            fields = _fb_fields(owner.kind)
            if node.attr not in fields:
                raise self.err(
                    fr,
                    node,
                    f"{owner.kind} field",
                    f"{owner.kind} has no {node.attr!r}",
                    f"fields: {', '.join(n for n, (_, _, r) in fields.items() if r != 'internal')}",
                )
            off, t, role = fields[node.attr]
            if role == "internal":
                raise self.err(fr, node, f"{owner.kind} field", f"{node.attr} is internal state")
            return FbField(owner.kind, node.attr, t, role, cell=owner.base + off)
        if isinstance(owner, tuple) and owner[0] == "fb_index":
            _, arr, idx = owner
            fields = _fb_fields(arr.kind)
            if node.attr not in fields or fields[node.attr][2] == "internal":
                raise self.err(fr, node, f"{arr.kind} field", f"{arr.kind} has no {node.attr!r}")
            off, t, role = fields[node.attr]
            return FbField(
                arr.kind,
                node.attr,
                t,
                role,
                base=arr.base + off,
                stride=arr.stride,
                n=arr.n,
                index=idx,
            )
        if isinstance(owner, UserFb):
            ent = owner.scope.attrs.get(node.attr)
            if isinstance(ent, CellVar):
                if ent.role == "memory":
                    raise self.err(
                        fr,
                        node,
                        "block variable",
                        f"{node.attr} is internal to {owner.scope.cls.__name__}",
                        "declare it as Output to read it from outside",
                    )
                if for_store and ent.role != "input":
                    raise self.err(
                        fr,
                        node,
                        "assignment to a block output",
                        f"{owner.scope.cls.__name__}.{node.attr} is an output",
                    )
                return ent
            if ent is None:
                raise self.err(
                    fr,
                    node,
                    "block variable",
                    f"{owner.scope.cls.__name__} has no variable {node.attr!r}",
                )
            raise self.err(fr, node, "block member", f"{node.attr} cannot be accessed from outside")
        raise self.err(
            fr,
            node,
            "attribute",
            f"{ast.unparse(node)} is not supported",
            "use self.<variable>, self.<block>.<output> or self.<array>[i]",
        )

    def self_attr(self, sc: Scope, attr: str, fr: Frame, node: ast.AST) -> Any:
        ent = sc.attrs.get(attr)
        if ent is not None:
            return ent
        raw = getattr(sc.cls, attr, None)
        if raw is None:
            raise self.err(
                fr,
                node,
                "attribute",
                f"{sc.cls.__name__} has no variable {attr!r}",
                "declare it on the class: Input(...), Output(...) or Memory(...)",
            )
        if inspect.isfunction(raw):
            return ("method", raw)
        if isinstance(raw, (bool, int, float, str)):
            return self.const_from_python(fr, node, raw)
        raise self.err(fr, node, "attribute", f"{attr} ({type(raw).__name__}) is not supported")

    def subscript(self, node: ast.Subscript, fr: Frame) -> Any:
        base = node.value
        if not (
            isinstance(base, ast.Attribute)
            and isinstance(base.value, ast.Name)
            and base.value.id == "self"
        ):
            if isinstance(base, ast.Attribute):
                owner = self.attribute(base, fr)
                if isinstance(owner, CellArray):
                    arr = owner
                    return self.cell_index(arr, node, fr)
            raise self.err(
                fr,
                node,
                "indexing",
                f"{ast.unparse(node)} is not supported",
                "index arrays declared on the class: self.values[i]",
            )
        if fr.self_scope is None:
            raise self.err(fr, node, "self", "not available in a module-level helper")
        ent = self.self_attr(fr.self_scope, base.attr, fr, base)
        if isinstance(ent, ImageArray):
            idx = self.index(node.slice, len(ent.names), fr)
            if idx.is_const:
                return ImageVar(ent.names[int(idx.value)], ent.t, ent.area)
            return ("image_index", ent, idx)
        if isinstance(ent, CellArray):
            return self.cell_index(ent, node, fr)
        if isinstance(ent, BuiltinFbArray):
            idx = self.index(node.slice, ent.n, fr)
            if idx.is_const:
                return BuiltinFb(ent.kind, ent.base + int(idx.value) * ent.stride)
            return ("fb_index", ent, idx)
        if isinstance(ent, UserFbArray):
            idx = self.index(node.slice, len(ent.scopes), fr)
            if not idx.is_const:
                raise self.err(
                    fr,
                    node.slice,
                    "index of a user block array",
                    "must be a constant or a for-loop index (each element is a separate "
                    "block, so the compiler needs to know which one)",
                    "loop over it: for i in range(N): self.blocks[i](...), directly in the "
                    "loop or in a method the loop calls with i",
                )
            return UserFb(ent.scopes[int(idx.value)])
        raise self.err(fr, node, "indexing", f"self.{base.attr} is not an array")

    def cell_index(self, arr: CellArray, node: ast.Subscript, fr: Frame) -> Any:
        idx = self.index(node.slice, arr.n, fr)
        if idx.is_const:
            return CellVar(arr.base + int(idx.value), arr.t, arr.role)
        return ("cell_index", arr, idx)

    def index(self, node: ast.expr, n: int, fr: Frame) -> Val:
        v = self.expr(node, fr)
        if v.t not in INT_TYPES and v.t != ANY_INT:
            raise self.err(fr, node, "array index", f"must be an integer, got {v.t}")
        if v.is_const:
            k = int(v.value)
            if not 0 <= k < n:
                raise self.err(fr, node, "array index", f"{k} is out of range 0..{n - 1}")
            return Val(ANY_INT, value=k)
        if v.mutable:
            v = self.copy(v)
        return v

    # -- operators ----------------------------------------------------------------------

    def int_bounds(self, v: Val) -> tuple[int, int]:
        """The range of an integer value: its value for a constant, the tracked range
        for an untyped cell, and the whole range of the type for a typed cell (the
        compiler does not track ranges of typed values)."""
        if v.is_const:
            return int(v.value), int(v.value)
        if v.t in INT_TYPES:
            bits, signed = INT_BITS[v.t]
            if signed:
                return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            return 0, (1 << bits) - 1
        return v.lo, v.hi

    def binop_vals(self, op: str, a: Val, b: Val, fr: Frame, node: ast.AST) -> Val:
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
                r = _fold_binop(op, a.value, b.value)
            except (ZeroDivisionError, ValueError, ArithmeticError):
                r = None
            if r is not None:
                return Val(it.type_of(r), value=r)
        if rt == ANY_INT:
            return self.any_int_op(op, a, b, fr, node)
        if rt == ANY_REAL:
            ca = cb = ANY_REAL
        if ca == "TIME" and a.t != b.t:
            x = self.as_time_raw(a, fr, node)
            y = self.as_time_raw(b, fr, node)
        else:
            x = self.coerce(a, ca, fr, node)
            y = self.coerce(b, cb, fr, node)
        irop = {
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
        }[op]
        if rt == ANY_REAL:
            d = self.b.temp("LREAL", self.live)
            self.b.emit(irop, d, self.cell_of(x), self.cell_of(y))
            return Val(ANY_REAL, d)
        if op in ("<<", ">>"):
            cnt = y if not y.is_const else Val("LINT", self.b.const("LINT", int(y.value)))
            d = self.b.temp(rt, self.live)
            self.b.emit(irop, d, self.cell_of(x), self.cell_of(cnt))
            return Val(rt, d)
        if op == "//" and rt == "LINT" and ca == "TIME":
            tmp = self.b.temp("TIME", self.live)
            self.b.emit("div", tmp, self.cell_of(x), self.cell_of(y))
            d = self.b.temp("LINT", self.live)
            self.b.emit("conv", d, tmp)
            return Val("LINT", d)
        d = self.b.temp(cell_type(rt), self.live)
        self.b.emit(irop, d, self.cell_of(x), self.cell_of(y))
        return Val(rt, d)

    def as_time_raw(self, v: Val, fr: Frame, node: ast.AST) -> Val:
        """The integer operand of TIME * n or TIME // n, as a TIME cell of the same
        number (IEC MUL_TIME/DIV_TIME)."""
        if v.t == "TIME":
            return v
        if v.is_const:
            return Val("TIME", value=it.Time(it.wrap(int(v.value), "TIME")))
        d = self.b.temp("TIME", self.live)
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
        if lo < -_ANY_INT_LIMIT or hi > _ANY_INT_LIMIT:
            raise self.err(
                fr,
                node,
                f"operator {op}",
                "this untyped integer expression may exceed 62 bits",
                "give one operand a type, e.g. TO_LINT(i)",
            )
        irop = {
            "+": "add",
            "-": "sub",
            "*": "mul",
            "//": "floordiv",
            "%": "floormod",
            "&": "and",
            "|": "or",
            "^": "xor",
            "<<": "shl",
            ">>": "shr",
        }[op]
        x, y = self.cell_of(a, "LINT"), self.cell_of(b, "LINT")
        if op in ("<<", ">>") and blo < 0:
            pass  # the VM faults on a negative count, as Python raises ValueError
        d = self.b.temp("LINT", self.live)
        self.b.emit(irop, d, x, y)
        return Val(ANY_INT, d, lo=lo, hi=hi)

    def unary(self, node: ast.UnaryOp, fr: Frame) -> Val:
        v = self.expr(node.operand, fr)
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
            d = self.b.temp("BOOL", self.live)
            self.b.emit("not", d, self.cell_of(v))
            return Val("BOOL", d)
        if isinstance(node.op, ast.UAdd):
            if v.t == "BOOL":
                raise self.err(fr, node, "unary +", "needs a number")
            return v
        if isinstance(node.op, ast.Invert):
            if v.t not in INT_TYPES and v.t != ANY_INT:
                raise self.err(
                    fr,
                    node,
                    "~",
                    f"needs an integer, got {v.t}",
                    "use not for BOOL" if v.t == "BOOL" else "",
                )
            if v.is_const:
                r = ~v.value
                return Val(it.type_of(r), value=r)
            lo, hi = self.int_bounds(v)
            d = self.b.temp(cell_type(v.t), self.live)
            self.b.emit("not", d, self.cell_of(v))
            return Val(v.t, d, lo=-hi - 1, hi=-lo - 1)
        # USub
        if v.t == "BOOL":
            raise self.err(fr, node, "unary -", "needs a number, got BOOL")
        if v.is_const:
            r = -v.value
            return Val(it.type_of(r) if v.t in (ANY_INT, ANY_REAL) else v.t, value=r)
        lo, hi = self.int_bounds(v)
        d = self.b.temp(cell_type(v.t), self.live)
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
        if all(_is_simple(n, self, fr) for n in rest):
            acc = first
            for n in rest:
                v = self.condition(n, fr, f"operand of {word}")
                if acc.is_const and v.is_const:
                    acc = Val(
                        "BOOL", value=(acc.value and v.value) if is_and else (acc.value or v.value)
                    )
                    continue
                d = self.b.temp("BOOL", self.live)
                self.b.emit(word, d, self.cell_of(acc), self.cell_of(v))
                acc = Val("BOOL", d)
            return acc
        # Short-circuit: later operands may fault or call helpers.
        d = self.b.temp("BOOL", self.live)
        end = Label()
        self.b.emit("mov", d, self.cell_of(first))
        for n in rest:
            self.b.jump("jz" if is_and else "jnz", end, d)
            v = self.condition(n, fr, f"operand of {word}")
            self.b.emit("mov", d, self.cell_of(v))
        self.b.place(end)
        return Val("BOOL", d)

    def compare_vals(self, op: str, a: Val, b: Val, fr: Frame, node: ast.AST) -> Val:
        ta, tb = a.t, b.t
        if ta == "BOOL" or tb == "BOOL":
            if ta != tb or op not in ("==", "!="):
                raise self.err(
                    fr,
                    node,
                    f"comparison {op}",
                    f"cannot compare {ta} and {tb}",
                    "BOOL values compare only with == and !=",
                )
            c = "BOOL"
        elif ta == "TIME" or tb == "TIME":
            if ta != tb:
                raise self.err(
                    fr,
                    node,
                    f"comparison {op}",
                    f"cannot compare {ta} and {tb}",
                    "write durations as ms(...), s(...) or 'T#1s'",
                )
            c = "TIME"
        else:
            cc = it.common(ta, tb)
            if cc is None:
                raise self.err(
                    fr,
                    node,
                    f"comparison {op}",
                    f"cannot compare {ta} and {tb} (no common type)",
                    "convert one side explicitly, e.g. TO_LREAL(x)",
                )
            c = cc
        if a.is_const and b.is_const:
            return Val("BOOL", value=it.compare(op, a.value, b.value))
        if c == ANY_INT:
            x, y = self.cell_of(a, "LINT"), self.cell_of(b, "LINT")
        elif c == ANY_REAL:
            x, y = (
                self.cell_of(self.coerce(a, ANY_REAL, fr, node)),
                self.cell_of(self.coerce(b, ANY_REAL, fr, node)),
            )
        else:
            x, y = (
                self.cell_of(self.coerce(a, c, fr, node)),
                self.cell_of(self.coerce(b, c, fr, node)),
            )
        d = self.b.temp("BOOL", self.live)
        self.b.emit(_CMP_IR[op], d, x, y)
        return Val("BOOL", d)

    def compare(self, node: ast.Compare, fr: Frame) -> Val:
        for o in node.ops:
            if type(o) not in _CMPOPS:
                hint = "use == / != " if isinstance(o, (ast.Is, ast.IsNot)) else ""
                raise self.err(fr, node, f"comparison {type(o).__name__}", "not supported", hint)
        nodes = [node.left, *node.comparators]
        if len(nodes) == 2:
            a, b = self.operands(nodes, fr)
            return self.compare_vals(_CMPOPS[type(node.ops[0])], a, b, fr, node)
        if all(_is_simple(n, self, fr) for n in nodes[2:]):
            vals = self.operands(nodes, fr)
            acc: Val | None = None
            for k, o in enumerate(node.ops):
                r = self.compare_vals(_CMPOPS[type(o)], vals[k], vals[k + 1], fr, node)
                if acc is None:
                    acc = r
                elif acc.is_const and r.is_const:
                    acc = Val("BOOL", value=acc.value and r.value)
                else:
                    d = self.b.temp("BOOL", self.live)
                    self.b.emit("and", d, self.cell_of(acc), self.cell_of(r))
                    acc = Val("BOOL", d)
            assert acc is not None
            return acc
        d = self.b.temp("BOOL", self.live)
        end = Label()
        left = self.expr(nodes[0], fr)
        left = self.copy(left) if left.mutable else left
        for k, o in enumerate(node.ops):
            right = self.expr(nodes[k + 1], fr)
            right = self.copy(right) if right.mutable else right
            r = self.compare_vals(_CMPOPS[type(o)], left, right, fr, node)
            self.b.emit("mov", d, self.cell_of(r))
            if k < len(node.ops) - 1:
                self.b.jump("jz", end, d)
            left = right
        self.b.place(end)
        return Val("BOOL", d)

    def ifexp(self, node: ast.IfExp, fr: Frame) -> Val:
        c = self.condition(node.test, fr, "condition")
        if _is_simple(node.body, self, fr) and _is_simple(node.orelse, self, fr):
            a = self.expr(node.body, fr)
            b = self.expr(node.orelse, fr)
            self.same_type(a, b, fr, node)
            if c.is_const:
                return a if c.value else b
            t = cell_type(a.t)
            d = self.b.temp(t, self.live)
            self.b.emit("sel", d, self.cell_of(c), self.cell_of(b, t), self.cell_of(a, t))
            return self.merged(a, b, d)
        els, end = Label(), Label()
        self.b.jump("jz", els, self.cell_of(c))
        a = self.expr(node.body, fr)
        d = self.b.cell(cell_type(a.t))
        self.b.emit("mov", d, self.cell_of(a, cell_type(a.t)))
        self.b.jump("jmp", end)
        self.b.place(els)
        b = self.expr(node.orelse, fr)
        self.same_type(a, b, fr, node)
        self.b.emit("mov", d, self.cell_of(b, cell_type(a.t)))
        self.b.place(end)
        return self.merged(a, b, d)

    def same_type(self, a: Val, b: Val, fr: Frame, node: ast.AST) -> None:
        if a.t != b.t:
            raise self.err(
                fr,
                node,
                "conditional expression",
                f"the branches have different types ({a.t} and {b.t})",
                "convert both to one type, e.g. TO_REAL(...)",
            )

    def merged(self, a: Val, b: Val, cell: int) -> Val:
        if a.t == ANY_INT:
            alo, ahi = self.int_bounds(a)
            blo, bhi = self.int_bounds(b)
            return Val(ANY_INT, cell, lo=min(alo, blo), hi=max(ahi, bhi))
        return Val(a.t, cell)

    # -- conversions and cells ------------------------------------------------------------

    def cell_of(self, v: Val, as_type: str | None = None) -> int:
        """The cell holding ``v`` (constants get a constant cell)."""
        t = as_type or cell_type(v.t)
        if v.is_const:
            val = v.value
            if t == "LINT" and v.t == ANY_INT and not it.fits(int(val), "LINT"):
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
                val = float(val)
            return self.b.const(t, val)
        assert v.cell is not None
        return v.cell

    def copy(self, v: Val) -> Val:
        if v.is_const:
            return v
        d = self.b.temp(cell_type(v.t), self.live)
        self.b.emit("mov", d, self.cell_of(v))
        return replace(v, cell=d, mutable=False)

    def coerce(self, v: Val, t: str, fr: Frame, node: ast.AST) -> Val:
        """Implicit conversion of ``v`` to ``t`` (widening or an untyped number)."""
        if v.t == t:
            return v
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
            if t in INT_TYPES:
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
                if max(abs(lo), abs(hi)) > _EXACT_FLOAT_INT:
                    raise self.err(fr, node, "conversion", "integer too large to convert exactly")
            else:
                raise self.err(fr, node, "conversion", f"cannot use an integer as {t}")
            d = self.b.temp(cell_type(t), self.live)
            self.b.emit("conv", d, self.cell_of(v))
            return Val(t, d)
        if v.t == ANY_REAL:
            if t == "LREAL":
                return Val(t, v.cell)
            if t == "REAL":
                d = self.b.temp("REAL", self.live)
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
        d = self.b.temp(t, self.live)
        self.b.emit("conv", d, self.cell_of(v))
        return Val(t, d)

    # -- calls --------------------------------------------------------------------------

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
        if isinstance(f, (ast.Attribute, ast.Subscript)) and _is_self_path(f):
            ent = self.attribute(f, fr) if isinstance(f, ast.Attribute) else self.subscript(f, fr)
            if isinstance(ent, tuple) and ent[0] == "method":
                args = self.call_args(node, fr)
                return self.helper_call(ent[1], fr.self_scope, args, node, fr, statement)
            if isinstance(ent, (BuiltinFb, UserFb)) or (
                isinstance(ent, tuple) and ent[0] == "fb_index"
            ):
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
            if isinstance(ent, (BuiltinFbArray, UserFbArray)):
                raise self.err(
                    fr, node, "call of a block array", "call one element", "self.blocks[i](...)"
                )
            raise self.err(fr, node, "call", f"{ast.unparse(f)} is not callable")
        if isinstance(f, ast.Name):
            n = f.id
            if n in fr.locals or n in fr.loop_vars:
                raise self.err(fr, node, "call", f"{n!r} is a variable, not a function")
            target = fr.globals.get(n)
            if target is None:
                import builtins

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
        raise self.err(fr, node, "call", f"{ast.unparse(f)} cannot be called in a compiled program")

    def call_args(self, node: ast.Call, fr: Frame) -> tuple[list[Val], dict[str, Val]]:
        vals = self.operands([*node.args, *(k.value for k in node.keywords)], fr)
        pos = vals[: len(node.args)]
        kws = {k.arg: v for k, v in zip(node.keywords, vals[len(node.args) :], strict=False)}
        return pos, kws  # type: ignore[return-value]

    def helper_call(
        self,
        fn: Any,
        sc: Scope | None,
        args: tuple[list[Val], dict[str, Val]],
        node: ast.Call,
        fr: Frame,
        statement: bool,
    ) -> Val | None:
        pos, kws = args
        pos = [self.copy(v) if v.mutable else v for v in pos]
        kws = {k: (self.copy(v) if v.mutable else v) for k, v in kws.items()}
        res = self.inline_body(fn, sc, pos, dict(kws), node, caller=fr)
        if res is None and not statement:
            raise self.err(fr, node, f"call of {fn.__name__}", "the helper returns no value")
        if res is not None and not res.is_const and res.cell is not None:
            res = replace(res, mutable=True)
        return res

    def fb_call(self, ent: Any, node: ast.Call, fr: Frame) -> None:
        if node.args:
            raise self.err(
                fr,
                node,
                "block call",
                "inputs are passed by keyword",
                "self.timer(IN=x, PT=ms(500))",
            )
        names = [k.arg for k in node.keywords]
        vals = self.operands([k.value for k in node.keywords], fr)
        # Python evaluates every keyword value before the block stores any of them: a
        # value read from a cell that an earlier keyword of this call stores into
        # (self.sr(S1=self.sr.R, R=self.sr.S1)) is copied before the stores begin.
        targets = self.fb_input_cells(ent, names)
        vals = [
            self.copy(v) if v.mutable and v.cell in set().union(*targets[:k]) else v
            for k, v in enumerate(vals)
        ]
        if isinstance(ent, UserFb):
            sc = ent.scope
            for kw, name, v in zip(node.keywords, names, vals, strict=False):
                var = sc.attrs.get(name)  # type: ignore[arg-type]
                if not isinstance(var, CellVar) or var.role != "input":
                    ins = [
                        k
                        for k, e in sc.attrs.items()
                        if isinstance(e, CellVar) and e.role == "input"
                    ]
                    raise self.err(
                        fr,
                        kw.value,
                        "block input",
                        f"{sc.cls.__name__} has no input {name!r}",
                        f"inputs: {', '.join(ins)}",
                    )
                v = self.coerce(v, var.t, fr, kw.value)
                self.b.emit("mov", var.cell, self.cell_of(v))
            self.inline_body(
                sc.cls.scan, sc, [], {}, node, caller=fr, scan_of=f"block {sc.cls.__name__}"
            )
            return
        if isinstance(ent, BuiltinFb):
            kind, fields = ent.kind, _fb_fields(ent.kind)
        else:
            kind, fields = ent[1].kind, _fb_fields(ent[1].kind)
        for kw, name, v in zip(node.keywords, names, vals, strict=False):
            spec = fields.get(name)  # type: ignore[arg-type]
            if spec is None or spec[2] != "input":
                ins = [k for k, (_, _, r) in fields.items() if r == "input"]
                raise self.err(
                    fr,
                    kw.value,
                    f"{kind} input",
                    f"{kind} has no input {name!r}",
                    f"inputs: {', '.join(ins)}",
                )
            off, t, _ = spec
            v = self.coerce(v, t, fr, kw.value)
            if isinstance(ent, BuiltinFb):
                self.b.emit("mov", ent.base + off, self.cell_of(v))
            else:
                _, arr, idx = ent
                self.b.emit(
                    "stc", arr.base + off, arr.stride, arr.n, self.cell_of(idx), self.cell_of(v)
                )
        if isinstance(ent, BuiltinFb):
            self.b.emit(f"fb.{kind}", ent.base)
        else:
            _, arr, idx = ent
            self.b.emit(f"fbx.{kind}", arr.base, arr.stride, arr.n, self.cell_of(idx))

    def fb_input_cells(self, ent: Any, names: list[str | None]) -> list[set[int]]:
        """For each keyword of a block call, the cells its store may write (every
        element's cell when the block is indexed by a variable)."""
        out: list[set[int]] = []
        for name in names:
            cells: set[int] = set()
            if isinstance(ent, UserFb):
                var = ent.scope.attrs.get(name or "")
                if isinstance(var, CellVar):
                    cells.add(var.cell)
            else:
                kind = ent.kind if isinstance(ent, BuiltinFb) else ent[1].kind
                spec = _fb_fields(kind).get(name or "")
                if spec is not None:
                    if isinstance(ent, BuiltinFb):
                        cells.add(ent.base + spec[0])
                    else:
                        arr = ent[1]
                        cells.update(arr.base + spec[0] + j * arr.stride for j in range(arr.n))
            out.append(cells)
        return out

    # -- the standard library -------------------------------------------------------------

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

        if name == "now":
            want(0)
            d = self.b.temp("TIME", self.live)
            self.b.emit("now", d)
            return Val("TIME", d)
        if name in ("ms", "s", "us"):
            want(1)
            folded = fold()
            if folded is not None:
                return folded
            scale = {"ms": 1_000_000, "s": 1_000_000_000, "us": 1_000}[name]
            a = args[0]
            if a.t in INT_TYPES or a.t == ANY_INT:
                tm = self.b.temp("TIME", self.live)
                self.b.emit("conv", tm, self.cell_of(a))
                d = self.b.temp("TIME", self.live)
                self.b.emit("mul", d, tm, self.b.const("TIME", scale))
                return Val("TIME", d)
            if a.t in FLOAT_TYPES or a.t == ANY_REAL:
                x = self.coerce(a, "LREAL", fr, node) if a.t != ANY_REAL else Val("LREAL", a.cell)
                m = self.b.temp("LREAL", self.live)
                self.b.emit("mul", m, self.cell_of(x), self.b.const("LREAL", float(scale)))
                d = self.b.temp("TIME", self.live)
                self.b.emit("conv", d, m)
                return Val("TIME", d)
            raise self.err(fr, node, f"{name}()", f"needs a number, got {a.t}")
        if name in ("ABS",):
            want(1)
            a = args[0]
            if a.t in ("BOOL", "TIME"):
                raise self.err(fr, node, "ABS()", f"needs a number, got {a.t}")
            folded = fold()
            if folded is not None:
                return folded
            lo, hi = self.int_bounds(a) if a.t == ANY_INT else (0, 0)
            d = self.b.temp(cell_type(a.t), self.live)
            self.b.emit("abs", d, self.cell_of(a))
            return Val(a.t, d, lo=0, hi=max(abs(lo), abs(hi)))
        if name in _MATH:
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
            d = self.b.temp(t, self.live)
            self.b.emit(_MATH[name], d, self.cell_of(x, t))
            return Val(t, d)
        if name in ("MIN", "MAX"):
            if len(args) < 2:
                raise self.err(fr, node, f"{name}()", "needs at least two values")
            folded = fold()
            if folded is not None:
                return folded
            return self.minmax(name, args, fr, node)
        if name == "LIMIT":
            want(3)
            folded = fold()
            if folded is not None:
                return folded
            mx = self.minmax("MAX", [args[1], args[0]], fr, node)
            return self.minmax("MIN", [mx, args[2]], fr, node)
        if name == "SEL":
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
            d = self.b.temp(ct, self.live)
            self.b.emit("sel", d, self.cell_of(g), self.cell_of(a, ct), self.cell_of(b, ct))
            return self.merged(a, b, d) if t == ANY_INT else Val(t, d)
        if name == "MUX":
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
        if name in ("GET_BIT", "SET_BIT"):
            want(2 if name == "GET_BIT" else 3)
            x, n = args[0], args[1]
            if x.t not in INT_TYPES:
                raise self.err(
                    fr,
                    node,
                    f"{name}()",
                    f"needs a typed integer, got {x.t}",
                    "convert with TO_UINT(x) etc.",
                )
            if n.t not in INT_TYPES and n.t != ANY_INT:
                raise self.err(
                    fr, node, f"{name}()", f"the bit number must be an integer, got {n.t}"
                )
            if n.is_const and not 0 <= int(n.value) < INT_BITS[x.t][0]:
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
                d = self.b.temp("BOOL", self.live)
                self.b.emit("getbit", d, self.cell_of(x), self.cell_of(n))
                return Val("BOOL", d)
            if args[2].t != "BOOL":
                raise self.err(fr, node, "SET_BIT()", f"the value must be BOOL, got {args[2].t}")
            d = self.b.temp(x.t, self.live)
            self.b.emit("setbit", d, self.cell_of(x), self.cell_of(n), self.cell_of(args[2]))
            return Val(x.t, d)
        if name == "TRUNC":
            want(1)
            a = args[0]
            if a.t not in FLOAT_TYPES and a.t != ANY_REAL:
                raise self.err(fr, node, "TRUNC()", f"needs REAL or LREAL, got {a.t}")
            folded = fold()
            if folded is not None:
                return folded
            d = self.b.temp("LINT", self.live)
            self.b.emit("trunc", d, self.cell_of(a))
            return Val("LINT", d)
        if name in ("TIME_TO_MS", "TIME_TO_S"):
            want(1)
            a = args[0]
            if a.t != "TIME":
                raise self.err(fr, node, f"{name}()", f"needs TIME, got {a.t}")
            folded = fold()
            if folded is not None:
                return folded
            if name == "TIME_TO_MS":
                q = self.b.temp("TIME", self.live)
                self.b.emit("div", q, self.cell_of(a), self.b.const("TIME", 1_000_000))
                d = self.b.temp("LINT", self.live)
                self.b.emit("conv", d, q)
                return Val("LINT", d)
            secs = self.b.temp("LREAL", self.live)
            self.b.emit("conv", secs, self.cell_of(a))
            d = self.b.temp("LREAL", self.live)
            self.b.emit("div", d, secs, self.b.const("LREAL", 1e9))
            return Val("LREAL", d)
        if name.startswith("TO_"):
            want(1)
            t = name[3:]
            a = args[0]
            try:
                probe = (
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
            d = self.b.temp(t, self.live)
            self.b.emit("conv", d, self.cell_of(a))
            return Val(t, d)
        raise self.err(
            fr, node, f"{name}()", "not available in compiled programs"
        )  # pragma: no cover

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
        if sc.kind != "program":
            raise self.err(
                fr,
                arg,
                f"{name}()",
                f"{ast.unparse(arg)} is a variable of function block {sc.cls.__name__}, "
                "not of the program",
                "read the quality in the program and pass it to the block as an input",
            )
        if is_attr:
            assert isinstance(arg, ast.Attribute)
            ent = self.self_attr(sc, arg.attr, fr, arg)
        else:
            assert isinstance(arg, ast.Subscript)
            ent = self.subscript(arg, fr)
        if isinstance(ent, ImageArray):
            raise self.err(
                fr,
                arg,
                f"{name}()",
                f"{ast.unparse(arg)} is an array",
                f"pass one element: {name}({ast.unparse(arg)}[i])",
            )
        if isinstance(ent, ImageVar):
            area = ent.area
        elif isinstance(ent, tuple) and ent[0] == "image_index":
            area = ent[1].area
        else:
            raise self.err(
                fr,
                arg,
                f"{name}()",
                f"{ast.unparse(arg)} is not a process-image variable of the program",
                hint,
            )
        if area != "input":
            raise self.err(
                fr,
                arg,
                f"{name}()",
                f"{ast.unparse(arg)} is {_ARTICLE[area]} {area} variable; quality and age are kept "
                "for inputs",
                "declare data that a driver delivers as Input(...)",
            )
        t = "USINT" if name == "QUALITY" else "TIME"
        op = "quality" if name == "QUALITY" else "age"
        d = self.b.temp(t, self.live)
        if isinstance(ent, ImageVar):
            self.b.emit(op, d, self.b.var(ent.name, ent.t))
        else:
            _, arr, idx = ent
            self.b.emit(op + "x", d, self.b.table(arr.names, arr.t), self.cell_of(idx))
        return Val(t, d)

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
        if t == "BOOL":
            raise self.err(fr, node, f"{name}()", "needs numbers or TIME, got BOOL")
        vals = [self.coerce(a, t, fr, node) for a in args]
        ct = cell_type(t)
        acc = vals[0]
        for v in vals[1:]:
            d = self.b.temp(ct, self.live)
            self.b.emit(name.lower(), d, self.cell_of(acc, ct), self.cell_of(v, ct))
            acc = self.merged(acc, v, d) if t == ANY_INT else Val(t, d)
        return acc

    def mux(self, k: Val, ins: list[Val], t: str, fr: Frame, node: ast.AST) -> Val:
        n = len(ins)
        ct = cell_type(t)
        if k.is_const:
            kk = int(k.value)
            if not 0 <= kk < n:
                raise self.err(fr, node, "MUX()", f"selector {kk} is out of range 0..{n - 1}")
            return ins[kk]
        kt = cell_type(k.t)
        bits, signed = INT_BITS[kt]
        top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        bad = self.b.temp("BOOL", self.live)
        if n <= top:
            self.b.emit("ge", bad, self.cell_of(k), self.b.const(kt, n))
        else:
            self.b.emit("mov", bad, self.b.const("BOOL", False))
        if signed:
            neg = self.b.temp("BOOL", self.live)
            self.b.emit("lt", neg, self.cell_of(k), self.b.const(kt, 0))
            self.b.emit("or", bad, bad, neg)
        ok = Label()
        self.b.jump("jz", ok, bad)
        self.b.emit("trap", self.b.message(f"MUX selector out of range 0..{n - 1}"))
        self.b.place(ok)
        d = self.b.temp(ct, self.live)
        self.b.emit("mov", d, self.cell_of(ins[0], ct))
        hit = self.b.temp("BOOL", self.live)
        lo = hi = 0
        for j in range(1, n):
            self.b.emit("eq", hit, self.cell_of(k), self.b.const(kt, j))
            self.b.emit("sel", d, hit, d, self.cell_of(ins[j], ct))
        if t == ANY_INT:
            bounds = [self.int_bounds(v) for v in ins]
            lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
            return Val(ANY_INT, d, lo=lo, hi=hi)
        return Val(t, d)


def _display_path(path: str) -> str:
    """The path as a user would write it: relative to the working directory when the
    file is below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


# ---------------------------------------------------------------------------------------
# Helpers


def _fold_binop(op: str, a: Any, b: Any) -> Any:
    """Evaluates a binary operator on constants with the reference semantics."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "//":
        return a // b
    if op == "%":
        return a % b
    if op == "&":
        return a & b
    if op == "|":
        return a | b
    if op == "^":
        return a ^ b
    if op == "<<":
        if isinstance(b, int) and not isinstance(a, it.IecInt) and b > 64:
            raise ValueError("shift too large to fold")
        return a << b
    if op == ">>":
        return a >> b
    raise ValueError(op)


def _assigned_names(body: list[ast.stmt]) -> set[str]:
    out: set[str] = set()
    for n in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
    return out


def _assigns(body: list[ast.stmt], name: str) -> bool:
    for n in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(n, (ast.Assign, ast.AugAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id == name:
                    return True
    return False


def _first_store(body: list[ast.stmt], name: str) -> int:
    """Line of the first assignment to ``name`` in ``body`` (0 if none)."""
    lines = [
        n.lineno
        for n in ast.walk(ast.Module(body=body, type_ignores=[]))
        if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
    ]
    return min(lines, default=0)


def _is_self_path(node: ast.expr) -> bool:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return isinstance(node, ast.Name) and node.id == "self"


def _has_calls(node: ast.AST, comp: Compiler, fr: Frame) -> bool:
    """True when evaluating ``node`` may run a helper or method (which could change
    block inputs or block variables)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name):
                target = fr.globals.get(f.id)
                if target is not None and id(target) in comp.stdlib_ids:
                    continue
                if f.id == "abs":
                    continue
            return True
    return False


def _is_simple(node: ast.AST, comp: Compiler, fr: Frame) -> bool:
    """True when evaluating ``node`` cannot fault and has no effects, so it may be
    evaluated even where Python would short-circuit it."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if not (
                isinstance(f, ast.Name)
                and f.id in ("now", "ms", "s", "us")
                and id(fr.globals.get(f.id)) in comp.stdlib_ids
                and all(isinstance(a, ast.Constant) for a in n.args)
            ):
                return False
        elif (
            isinstance(n, ast.BinOp)
            and isinstance(n.op, (ast.Div, ast.FloorDiv, ast.Mod, ast.LShift, ast.RShift))
        ) or (isinstance(n, ast.Subscript) and not isinstance(n.slice, ast.Constant)):
            return False
    return True


def compile_instance(obj: Any) -> bytes:
    """Compiles a ``@program`` instance to the intermediate form (MessagePack bytes).

    Raises :class:`CompileError` for anything outside the compiled subset.
    """
    return Compiler(obj).compile()


_ = math
