"""Reference mode applies the compiler's implicit conversions.

Python keeps a literal untyped and ignores annotations, so ``n = 0``, ``n: INT = 0``
and ``x if c else 0`` would hold different types in plain Python than in the compiled
form, and wrap differently. The compiler records each such conversion (the value at a
source span converts to a type; see :meth:`CompilerCore.rewrite`), and before a
program runs in reference mode, :func:`prepare` compiles it and rebuilds each function
concerned with those values wrapped in ``__softplc_coerce__(TYPE, value)``, the
implicit conversion of :mod:`softplc.iectypes`. The rebuilt code replaces the
function's ``__code__``: same name, file and line numbers, so tracebacks and
``QUALITY()`` call sites read as before. A function with no such conversion is left
alone.
"""

from __future__ import annotations

import ast
import contextlib
import copy
from types import CodeType, FunctionType

from softplc.compiler.core import Span, span
from softplc.compiler.errors import CompileError
from softplc.compiler.program import Compiler
from softplc.compiler.source import function_info
from softplc.errors import ProgramError
from softplc.iectypes import coerce

__all__ = ["COERCE", "prepare"]

#: The global name the rebuilt code calls.
COERCE = "__softplc_coerce__"

# The original code of each rebuilt function, and the conversions applied to it.
_ORIGINAL: dict[FunctionType, CodeType] = {}
_APPLIED: dict[FunctionType, dict[Span, str]] = {}


def _convert(t: str, value: object) -> object:
    """``value`` converted implicitly to ``t`` (what the compiled form does there)."""
    return coerce(value, t)


def prepare(obj: object) -> None:
    """Compiles ``obj`` and applies its implicit conversions to the functions it runs.

    A program the compiler refuses runs as plain Python (what it compiled before the
    refusal is still applied). Raises :class:`ProgramError` when a function another
    program uses already converts a value to a different type.
    """
    try:
        c = Compiler(obj)
    except CompileError:
        return  # no source to compile (a class typed at a prompt): plain Python
    with contextlib.suppress(CompileError):
        c.compile()
    for fn, spans in c.rewrites.items():
        apply(fn, spans)


def apply(fn: FunctionType, spans: dict[Span, str]) -> None:
    """Rebuilds ``fn`` with the values at ``spans`` converted."""
    done = _APPLIED.get(fn, {})
    merged = dict(done)
    for key, t in spans.items():
        prev = done.get(key)
        if prev is not None and prev != t:
            raise ProgramError(
                f"{fn.__code__.co_filename}:{key[0]}: a value in {fn.__name__} converts to "
                f"{t} for one program and to {prev} for another; reference mode runs one "
                f"copy of {fn.__name__} (hint: write the conversion, TO_{t}(...))"
            )
        merged[key] = t
    if merged == done:
        return
    original = _ORIGINAL.setdefault(fn, fn.__code__)
    if original.co_freevars:
        raise ProgramError(
            f"{fn.__code__.co_filename}:{original.co_firstlineno}: {fn.__name__} uses "
            "variables of an enclosing function, so reference mode cannot give its "
            "literals the compiled types (hint: define it at module level)"
        )
    node = copy.deepcopy(function_info(fn).node)
    node.decorator_list = []
    wrapped = _Wrap(merged).visit(node)
    assert isinstance(wrapped, ast.FunctionDef)
    module = ast.fix_missing_locations(ast.Module(body=[wrapped], type_ignores=[]))
    code = compile(module, original.co_filename, "exec")
    made = next(c for c in code.co_consts if isinstance(c, CodeType))
    fn.__globals__.setdefault(COERCE, _convert)
    fn.__code__ = made
    _APPLIED[fn] = merged


class _Wrap(ast.NodeTransformer):
    """Wraps each expression whose span is listed in ``COERCE("T", expr)``."""

    def __init__(self, spans: dict[Span, str]) -> None:
        self.spans = spans

    def visit(self, node: ast.AST) -> ast.AST:
        new: ast.AST = super().visit(node)
        if isinstance(node, ast.expr):
            t = self.spans.get(span(node))
            if t is not None:
                assert isinstance(new, ast.expr)
                call = ast.Call(
                    func=ast.Name(id=COERCE, ctx=ast.Load()),
                    args=[ast.Constant(value=t), new],
                    keywords=[],
                )
                return ast.copy_location(call, node)
        return new
