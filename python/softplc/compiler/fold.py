"""Constant folding and the syntactic questions the compiler asks of an expression
before it compiles it (may it call a helper? may it fault?).

Folding evaluates an operator on constants with the reference semantics of
:mod:`softplc.iectypes`, so a folded constant is the value reference mode computes.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from softplc import iectypes as it

__all__ = ["fold_binop", "has_calls", "is_simple"]


def fold_binop(op: str, a: object, b: object) -> object:
    """Evaluates a binary operator on constants with the reference semantics.

    Raises what Python raises (``ZeroDivisionError``, ...) or ``ValueError`` for a
    shift too large to fold; the caller then emits the operation instead.
    """
    x, y = a, b
    if op == "+":
        return x + y  # type: ignore[operator]
    if op == "-":
        return x - y  # type: ignore[operator]
    if op == "*":
        return x * y  # type: ignore[operator]
    if op == "/":
        return x / y  # type: ignore[operator]
    if op == "//":
        return x // y  # type: ignore[operator]
    if op == "%":
        return x % y  # type: ignore[operator]
    if op == "&":
        return x & y  # type: ignore[operator]
    if op == "|":
        return x | y  # type: ignore[operator]
    if op == "^":
        return x ^ y  # type: ignore[operator]
    if op == "<<":
        if isinstance(y, int) and not isinstance(x, it.IecInt) and y > 64:
            raise ValueError("shift too large to fold")
        return x << y  # type: ignore[operator]
    if op == ">>":
        return x >> y  # type: ignore[operator]
    raise ValueError(op)


def has_calls(node: ast.AST, is_stdlib: Callable[[str], bool]) -> bool:
    """True when evaluating ``node`` may run a helper or method (which could change
    block inputs or block variables). ``is_stdlib(name)`` tells a standard function,
    which has no effects, from a helper."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name) and (f.id == "abs" or is_stdlib(f.id)):
                continue
            return True
    return False


def is_simple(node: ast.AST, is_stdlib: Callable[[str], bool]) -> bool:
    """True when evaluating ``node`` cannot fault and has no effects, so it may be
    evaluated even where Python would short-circuit it."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if not (
                isinstance(f, ast.Name)
                and f.id in ("now", "ms", "s", "us")
                and is_stdlib(f.id)
                and all(isinstance(a, ast.Constant) for a in n.args)
            ):
                return False
        elif (
            isinstance(n, ast.BinOp)
            and isinstance(n.op, (ast.Div, ast.FloorDiv, ast.Mod, ast.LShift, ast.RShift))
        ) or (isinstance(n, ast.Subscript) and not isinstance(n.slice, ast.Constant)):
            return False
    return True
