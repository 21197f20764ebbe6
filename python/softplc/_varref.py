"""Internal: which process-image variable the argument of ``QUALITY(...)`` / ``AGE(...)``
names, in reference mode.

In reference mode ``self.level`` evaluates to a plain typed value (and a BOOL to Python's
``True``/``False``), which no longer knows where it came from. So these functions look
at the call site instead: the caller's code object and instruction offset give the
source span of the call (``co_positions``, Python 3.11+), its argument must be
``self.<attr>`` or ``self.<attr>[<index>]`` (the same forms the compiler accepts), and
``self`` in the caller's frame is the program instance. The element an array argument
names is the one its subscript just read: the subscript is the last operation before
the call, and the array view records it (``_softplc_last_elem``).

The parsed form of each call site is cached by (code object, offset), so the cost after
the first call is a frame lookup and a few dictionary reads.
"""

from __future__ import annotations

import ast
import linecache
import sys
from types import CodeType, FrameType
from typing import Any

from softplc.errors import StateError
from softplc.iectypes import TypeRuleError

__all__ = ["resolve"]

# (code, offset) -> ("scalar" | "element", attr) or ("error", message)
_FORMS: dict[tuple[CodeType, int], tuple[str, str]] = {}

_ARTICLE = {"output": "an", "memory": "a"}
_USAGE = "takes an input variable of the program: self.<name> or self.<array>[i]"


def _call_source(frame: FrameType) -> str | None:
    """The source text of the call the frame is executing, or None."""
    code = frame.f_code
    try:
        pos = list(code.co_positions())[frame.f_lasti // 2]
    except (IndexError, ValueError):
        return None
    line, end_line, col, end_col = pos
    if line is None or end_line is None or col is None or end_col is None:
        return None
    lines = linecache.getlines(code.co_filename, frame.f_globals)
    if not lines or end_line > len(lines):
        return None
    # Columns are UTF-8 byte offsets.
    chunk = [ln.encode("utf-8") for ln in lines[line - 1 : end_line]]
    if len(chunk) == 1:
        text = chunk[0][col:end_col]
    else:
        text = b"".join([chunk[0][col:], *chunk[1:-1], chunk[-1][:end_col]])
    return text.decode("utf-8", errors="replace")


def _form(frame: FrameType, fn: str) -> tuple[str, str]:
    src = _call_source(frame)
    if src is None:
        return ("error", f"{fn}() needs the program's source to see which variable it names")
    try:
        node = ast.parse(f"(\n{src}\n)", mode="eval").body
    except SyntaxError:
        return ("error", f"{fn}(): cannot read the call {src.strip()!r}")
    if not isinstance(node, ast.Call) or len(node.args) != 1 or node.keywords:
        return ("error", f"{fn}() {_USAGE} (one argument)")
    arg = node.args[0]
    if (
        isinstance(arg, ast.Attribute)
        and isinstance(arg.value, ast.Name)
        and arg.value.id == "self"
    ):
        return ("scalar", arg.attr)
    # self.arr[i], self.rec.level, self.recs[i].level: the leaf the path just read.
    chain = arg
    while isinstance(chain, (ast.Attribute, ast.Subscript)):
        if (
            isinstance(chain, ast.Attribute)
            and isinstance(chain.value, ast.Name)
            and chain.value.id == "self"
        ):
            return ("element", chain.attr)
        chain = chain.value
    return ("error", f"{fn}() {_USAGE}, not {ast.unparse(arg)}")


def resolve(fn: str) -> tuple[Any, int]:
    """For ``QUALITY``/``AGE`` (``fn``) called from a scan: the scan's I/O object and
    the engine index of the variable the call's argument names.

    Must be called directly by the standard function (it inspects the frame two levels
    up). Raises :class:`TypeRuleError` for an argument that is not an input variable of
    the program, :class:`StateError` outside a scan.
    """
    frame = sys._getframe(2)
    key = (frame.f_code, frame.f_lasti)
    form = _FORMS.get(key)
    if form is None:
        form = _form(frame, fn)
        _FORMS[key] = form
    kind, attr = form
    if kind == "error":
        raise TypeRuleError(attr)
    obj = frame.f_locals.get("self")
    d = getattr(obj, "__dict__", {})
    if "_softplc_vals" in d:
        raise TypeRuleError(
            f"{fn}(self.{attr}): {attr} is a variable of function block "
            f"{type(obj).__name__}; {fn}() {_USAGE}"
        )
    fields = getattr(type(obj), "_softplc_fields", None)
    var = None if fields is None else fields.get(attr)
    if var is None:
        raise TypeRuleError(f"{fn}(self.{attr}): {attr} is not a variable of the program")
    if var.area != "input":
        raise TypeRuleError(
            f"{fn}(self.{attr}): {attr} is {_ARTICLE[var.area]} {var.area} variable; quality "
            "and age are kept for inputs (declare data that a driver delivers as Input)"
        )
    io = d.get("_softplc_io")
    if io is None:
        raise StateError(f"{fn}() is only available during a scan")
    if kind == "scalar":
        if not var.scalar:
            raise TypeRuleError(
                f"{fn}(self.{attr}): {attr} is an array or structure; pass one element"
            )
        return io, d["_softplc_index"][attr]
    if var.scalar:
        raise TypeRuleError(f"{fn}(self.{attr}...): {attr} is not an array or structure")
    elem = d.get("_softplc_last_elem", "")
    if not elem.startswith((attr + "[", attr + ".")):  # pragma: no cover - it just ran
        raise TypeRuleError(f"{fn}(): cannot tell which element of {attr} was meant")
    return io, d["_softplc_index"][elem]
