"""Source locations: finding the syntax tree of a class or function, the declaration of
an attribute, and what a function body assigns.

The compiler reads source files, never bytecode: a program, its helpers and its
function blocks must live in ``.py`` files. Parsed files are cached by path and
modification time, and the facts the compiler needs of a function (its tree, the names
it assigns, its size) are gathered once per function in :class:`FnInfo`.
"""

from __future__ import annotations

import ast
import inspect
import os
from dataclasses import dataclass
from types import FunctionType

from softplc.compiler.errors import CompileError

__all__ = [
    "FnInfo",
    "assigned_names",
    "assigns",
    "declaration_site",
    "display_path",
    "find_class",
    "find_function",
    "first_line",
    "first_store",
    "function_info",
    "node_count",
]

_PARSED: dict[str, tuple[float, ast.Module, list[str]]] = {}


def parse_file(path: str) -> tuple[ast.Module, list[str]]:
    """The syntax tree and lines of a source file (cached by modification time)."""
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


def display_path(path: str) -> str:
    """The path as a user would write it: relative to the working directory when the
    file is below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def source_file(obj: object, what: str) -> str:
    """The source file of a class or function, or a :class:`CompileError`."""
    try:
        path = inspect.getsourcefile(obj)  # type: ignore[arg-type]
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


def first_line(node: ast.ClassDef | ast.FunctionDef) -> int:
    """The first line of a definition, its decorators included."""
    return min([d.lineno for d in node.decorator_list] + [node.lineno])


def find_class(cls: type) -> tuple[str, ast.ClassDef, list[str]]:
    """Path, syntax tree and source lines of a class."""
    path = source_file(cls, f"class {cls.__name__}")
    tree, lines = parse_file(path)
    try:
        start: int | None = inspect.getsourcelines(cls)[1]
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
        if start is None or first_line(n) == start or n.lineno == start:
            return path, n, lines
    if candidates:
        return path, candidates[0], lines
    raise CompileError(path, 1, 1, f"class {cls.__name__}", "not found in its source file")


def find_function(fn: FunctionType) -> tuple[str, ast.FunctionDef, list[str]]:
    """Path, syntax tree and source lines of a function."""
    path = source_file(fn, f"function {fn.__name__}")
    tree, lines = parse_file(path)
    first = fn.__code__.co_firstlineno
    for n in ast.walk(tree):
        if (
            isinstance(n, ast.FunctionDef)
            and n.name == fn.__name__
            and first in (first_line(n), n.lineno)
        ):
            return path, n, lines
    raise CompileError(path, first, 1, f"function {fn.__name__}", "source not found")


@dataclass(frozen=True)
class FnInfo:
    """What the compiler needs of a function's source, found once per function (a
    helper inlined at many calls would otherwise be searched for and walked at each)."""

    node: ast.FunctionDef
    lines: list[str]
    path: str
    display: str
    assigned: frozenset[str]
    size: int


_INFO: dict[FunctionType, FnInfo] = {}


def function_info(fn: FunctionType) -> FnInfo:
    """The :class:`FnInfo` of ``fn`` (cached while the source file is unchanged)."""
    path, node, lines = find_function(fn)
    info = _INFO.get(fn)
    if info is not None and info.node is node:
        return info
    info = FnInfo(
        node, lines, path, display_path(path), assigned_names(node.body), node_count(node)
    )
    _INFO[fn] = info
    return info


def node_count(node: ast.AST) -> int:
    """Syntax-tree nodes under ``node``, itself included."""
    return sum(1 for _ in ast.walk(node))


def declaration_site(cls: type, attr: str) -> tuple[str, int, int]:
    """Where ``attr`` is declared on ``cls`` (or the base class that declares it):
    display path, line and 1-based column; the class line when not found, and
    ``("<unknown>", 0, 0)`` when the source is not available."""
    owner = next((k for k in cls.__mro__ if attr in vars(k)), cls)
    try:
        path, node, _ = find_class(owner)
    except CompileError:
        return "<unknown>", 0, 0
    for st in node.body:
        targets = st.targets if isinstance(st, ast.Assign) else []
        if isinstance(st, ast.AnnAssign):
            targets = [st.target]
        if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
            return display_path(path), st.lineno, st.col_offset + 1
    return display_path(path), node.lineno, node.col_offset + 1


def assigned_names(body: list[ast.stmt]) -> frozenset[str]:
    """Every name a body stores into (assignments, loop targets, match captures)."""
    out: set[str] = set()
    for n in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        elif isinstance(n, ast.MatchAs) and n.name is not None:
            out.add(n.name)
    return frozenset(out)


def assigns(body: list[ast.stmt], name: str) -> bool:
    """True when the body assigns ``name`` (plain, augmented or annotated)."""
    for n in ast.walk(ast.Module(body=body, type_ignores=[])):
        targets: list[ast.expr] = []
        if isinstance(n, ast.Assign):
            targets = n.targets
        elif isinstance(n, (ast.AugAssign, ast.AnnAssign)):
            targets = [n.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


def first_store(body: list[ast.stmt], name: str) -> int:
    """Line of the first assignment to ``name`` in ``body`` (0 if none)."""
    lines = [
        n.lineno
        for n in ast.walk(ast.Module(body=body, type_ignores=[]))
        if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
    ]
    return min(lines, default=0)


def is_self_path(node: ast.expr) -> bool:
    """True for ``self.a``, ``self.a[i].b`` and the like."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return isinstance(node, ast.Name) and node.id == "self"


def root_name(node: ast.expr) -> str | None:
    """The name an attribute/subscript chain starts from (``r`` of ``r.a[i]``)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None
