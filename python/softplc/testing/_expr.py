"""Conditions written as text over variable names: ``"pump and level > 50"``.

The same expression is evaluated two ways: cycle by cycle on scalar values
(:class:`ScalarMonitor`, for ``bench.run_until``) and at once on whole trace columns
(:func:`evaluate_columns`, NumPy, for the temporal assertions). Both give the same
answer for the same values, edges included.

The language is a small, safe subset of Python expressions, parsed with :mod:`ast`
(never ``eval``):

* names: ``pump``, ``tank.level``, array elements ``pending[2]`` (full names, or a
  last part only one variable has);
* constants: numbers, ``True``, ``False``;
* ``and``, ``or``, ``not``; comparisons, chained too (``30 < level < 60``);
  ``+ - * / // %`` and unary minus;
* ``rose(x)``, ``fell(x)`` (x became true / false in this cycle), ``changed(x)`` (x
  differs from the previous cycle) and ``abs(x)``.

An edge compares with the previous cycle. Before the first row of a recording the
engine had just started, so the value before it counts as FALSE, as for R_TRIG at the
first scan: ``rose(x)`` is ``x`` on the first row and ``fell(x)`` is false;
``changed(x)`` is false there. ``run_until`` sees the edges between the cycles it
runs: its first check, before any cycle, has no edge.

Example:
    >>> import numpy as np
    >>> e = Expr.parse("rose(start) or level > 2")
    >>> e.names
    ['start', 'level']
    >>> evaluate_columns(e, {"start": np.array([0, 1, 1, 0], bool),
    ...                      "level": np.array([0.0, 1.0, 2.0, 3.0])}).tolist()
    [False, True, False, True]
    >>> start = np.array([1, 1, 0, 1], bool)
    >>> evaluate_columns(Expr.parse("rose(start)"), {"start": start}).tolist()
    [True, False, False, True]
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from softplc.errors import ConfigError

__all__ = ["EDGE_FUNCTIONS", "Expr", "ScalarMonitor", "evaluate_columns"]

#: Functions that compare a value with its value in the previous cycle.
EDGE_FUNCTIONS = ("rose", "fell", "changed")
_FUNCTIONS = (*EDGE_FUNCTIONS, "abs")

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _dotted(node: ast.expr) -> str | None:
    """``tank.level`` (Attribute of Name) and ``a.b[3]`` (Subscript with a constant
    index) as the variable name they spell, or None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    if isinstance(node, ast.Subscript):
        base = _dotted(node.value)
        idx = node.slice
        if (
            base is not None
            and isinstance(idx, ast.Constant)
            and isinstance(idx.value, int)
            and not isinstance(idx.value, bool)
        ):
            return f"{base}[{idx.value}]"
    return None


@dataclass(frozen=True)
class Expr:
    """A parsed condition. Build it with :meth:`parse`.

    Attributes:
        text: the condition as written.
        names: the variable names it reads, as written, in order of appearance.
    """

    text: str
    names: list[str]
    tree: ast.expr

    @classmethod
    def parse(cls, text: str) -> Expr:
        """Parses ``text``; raises :class:`ConfigError` naming the construct that is
        not part of the language."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"a condition must be a non-empty string (got {text!r})")
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as e:
            raise ConfigError(f"condition {text!r}: syntax error at column {e.offset}") from None
        names: list[str] = []
        _check(tree, text, names)
        return cls(text.strip(), names, tree)

    def __str__(self) -> str:
        return self.text


def _check(node: ast.expr, text: str, names: list[str]) -> None:
    def bad(what: str) -> ConfigError:
        col = getattr(node, "col_offset", 0)
        return ConfigError(
            f"condition {text!r}: {what} at column {col + 1} is not allowed (names, numbers, "
            "and/or/not, comparisons, + - * / // %, rose(), fell(), changed(), abs())"
        )

    name = _dotted(node)
    if name is not None:
        if name not in names:
            names.append(name)
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bool, int, float)):
            return
        raise bad(f"the constant {node.value!r}")
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, text, names)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            raise bad(type(node.op).__name__)
        _check(node.operand, text, names)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise bad(f"the operator {type(node.op).__name__}")
        _check(node.left, text, names)
        _check(node.right, text, names)
        return
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _CMPOPS:
                raise bad(f"the comparison {type(op).__name__}")
        _check(node.left, text, names)
        for c in node.comparators:
            _check(c, text, names)
        return
    if isinstance(node, ast.Call):
        fn = node.func.id if isinstance(node.func, ast.Name) else None
        if fn not in _FUNCTIONS or node.keywords or len(node.args) != 1:
            raise bad(f"the call {ast.unparse(node)}")
        _check(node.args[0], text, names)
        return
    raise bad(type(node).__name__)


# -- evaluation ---------------------------------------------------------------------------


def _arith(v: Any) -> Any:
    """Booleans take part in arithmetic as 0 and 1 (NumPy would add bool arrays as
    logical or)."""
    if isinstance(v, np.ndarray) and v.dtype == np.bool_:
        return v.astype(np.int64)
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    return v


def _truth(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v if v.dtype == np.bool_ else v != 0
    return bool(v)


class _Evaluator:
    """Evaluates a tree over an environment of scalars or equally long arrays.

    ``edge`` computes an edge function of a node from the node's current value: the
    array form shifts by one row, the scalar form remembers the previous cycle.
    """

    def __init__(self, env: Mapping[str, Any], edge: Callable[[ast.Call, str, Any], Any]) -> None:
        self.env = env
        self.edge = edge

    def __call__(self, node: ast.expr) -> Any:
        name = _dotted(node)
        if name is not None:
            return self.env[name]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BoolOp):
            vals = [_truth(self(v)) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            acc = vals[0]
            for v in vals[1:]:
                acc = combine(acc, v)
            return acc
        if isinstance(node, ast.UnaryOp):
            v = self(node.operand)
            if isinstance(node.op, ast.Not):
                return np.logical_not(_truth(v))
            return -_arith(v) if isinstance(node.op, ast.USub) else _arith(v)
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](_arith(self(node.left)), _arith(self(node.right)))
        if isinstance(node, ast.Compare):
            left = self(node.left)
            out: Any = True
            for op, c in zip(node.ops, node.comparators, strict=True):
                right = self(c)
                out = np.logical_and(out, _CMPOPS[type(op)](left, right))
                left = right
            return out
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            fn = node.func.id
            v = self(node.args[0])
            if fn == "abs":
                return np.abs(_arith(v))
            return self.edge(node, fn, v)
        raise AssertionError(f"unchecked node {ast.dump(node)}")  # _check refused it


def _edge_now(fn: str, now: Any, prev: Any) -> Any:
    if fn == "rose":
        return np.logical_and(_truth(now), np.logical_not(_truth(prev)))
    if fn == "fell":
        return np.logical_and(np.logical_not(_truth(now)), _truth(prev))
    return now != prev


def evaluate_columns(expr: Expr, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Evaluates ``expr`` at every row of ``columns`` (equally long arrays, one per
    name the expression reads, keyed as written in it); returns an array with one
    value per row (a bool array for a condition).

    REAL columns are widened to float64 first, so that comparisons with constants
    happen in double precision, as they do on the scalar values ``engine.read``
    returns.
    """
    env: dict[str, Any] = {}
    n = None
    for name in expr.names:
        col = np.asarray(columns[name])
        if col.dtype == np.float32:
            col = col.astype(np.float64)
        env[name] = col
        n = len(col)
    if n is None:
        raise ConfigError(f"condition {expr.text!r} reads no variable")

    def edge(node: ast.Call, fn: str, v: Any) -> Any:
        v = np.broadcast_to(np.asarray(v), (n,))
        if fn != "changed":
            v = _truth(v)
        prev = np.empty_like(v)
        if n:
            # Before the first row: FALSE for rose/fell (R_TRIG at the first scan); no
            # change for changed().
            prev[0] = False if fn != "changed" else v[0]
            prev[1:] = v[:-1]
        return _edge_now(fn, v, prev)

    with np.errstate(all="ignore"):  # x / 0 is inf (a comparison then decides), not an error
        out = _Evaluator(env, edge)(expr.tree)
    return np.broadcast_to(np.asarray(out), (n,))


class ScalarMonitor:
    """Evaluates ``expr`` cycle after cycle on scalar values, remembering what the
    edge functions need from the previous cycle.

    Example:
        >>> m = ScalarMonitor(Expr.parse("rose(start)"))
        >>> [m.step({"start": v}) for v in (True, False, True, True)]
        [False, False, True, False]
    """

    def __init__(self, expr: Expr) -> None:
        self.expr = expr
        self._prev: dict[int, Any] = {}

    def step(self, values: Mapping[str, Any]) -> Any:
        """The expression's value for this cycle's ``values``."""
        seen: dict[int, Any] = {}

        def edge(node: ast.Call, fn: str, v: Any) -> Any:
            key = id(node)
            prev = self._prev.get(key, v)
            seen[key] = v
            return _edge_now(fn, v, prev)

        # NumPy scalars, so that arithmetic behaves as on trace columns (x / 0 is inf).
        env = {n: np.asarray(values[n])[()] for n in self.expr.names}
        with np.errstate(all="ignore"):
            out = _Evaluator(env, edge)(self.expr.tree)
        self._prev.update(seen)
        return out.item() if isinstance(out, np.generic) else out
