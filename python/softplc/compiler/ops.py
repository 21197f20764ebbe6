"""The operation vocabulary of the intermediate form: every operation the compiler may
emit, with the kind of each operand.

The VM's verifier owns the same table (``softplc_vm::ops::OPS``, exported to Python as
``softplc._native.vm_operations()``); ``tests/unit/compiler/test_ops.py`` holds the
two equal, as the function block layouts are held together. The IR builder refuses an
operation or an operand count the table does not have, so a compiler mistake is caught
where it is made, not by the verifier at load time.

Operand kinds:

* ``cell``: a cell index; ``var``: a process-image variable; ``table``: an image table
  (an array of variables); ``ctable``: a cell table (an array of cells or block
  instances);
* ``fwd``/``back``: a jump target after / at or before the instruction;
* ``msg``: a message index; ``count``: a non-negative number (a stride, a length, a
  lower bound); ``int``: any integer;
* ``rest``: any number of further operands, of the kind the operation documents
  (``jtab``: forward targets).
"""

from __future__ import annotations

from softplc.stdlib import FB_TYPES

__all__ = ["MATH_OPS", "OPERAND_KINDS", "OPS", "arity"]

OPERAND_KINDS = ("cell", "var", "table", "ctable", "fwd", "back", "msg", "count", "int", "rest")

#: Math functions: ``op d a`` on REAL or LREAL cells.
MATH_OPS = ("sqrt", "sin", "cos", "tan", "asin", "acos", "atan", "exp", "ln", "log")

_D_A = ("cell", "cell")
_D_A_B = ("cell", "cell", "cell")

_BASE: dict[str, tuple[str, ...]] = {
    "mov": _D_A,
    "conv": _D_A,
    "add": _D_A_B,
    "sub": _D_A_B,
    "mul": _D_A_B,
    "div": _D_A_B,
    "mod": _D_A_B,
    "trunc": _D_A,
    "floordiv": _D_A_B,
    "floormod": _D_A_B,
    "neg": _D_A,
    "abs": _D_A,
    "and": _D_A_B,
    "or": _D_A_B,
    "xor": _D_A_B,
    "not": _D_A,
    "shl": _D_A_B,
    "shr": _D_A_B,
    "rol": _D_A_B,
    "ror": _D_A_B,
    "eq": _D_A_B,
    "ne": _D_A_B,
    "lt": _D_A_B,
    "le": _D_A_B,
    "gt": _D_A_B,
    "ge": _D_A_B,
    "min": _D_A_B,
    "max": _D_A_B,
    "sel": ("cell", "cell", "cell", "cell"),
    "getbit": _D_A_B,
    "setbit": ("cell", "cell", "cell", "cell"),
    "ld": ("cell", "var"),
    "st": ("var", "cell"),
    "ldx": ("cell", "table", "cell"),
    "stx": ("table", "cell", "cell"),
    "ldc": ("cell", "cell", "count", "count", "cell"),
    "stc": ("cell", "count", "count", "cell", "cell"),
    "jmp": ("fwd",),
    "jz": ("cell", "fwd"),
    "jnz": ("cell", "fwd"),
    "loop": ("back",),
    # jtab x lo t0 .. t(n-1) default: jump to t(x - lo), or to default outside 0..n.
    "jtab": ("cell", "int", "rest"),
    "quality": ("cell", "var"),
    "age": ("cell", "var"),
    "qualityx": ("cell", "table", "cell"),
    "agex": ("cell", "table", "cell"),
    "now": ("cell",),
    "trap": ("msg",),
    "chk": ("cell", "count", "msg"),
    "ldt": ("cell", "ctable", "cell"),
    "stt": ("ctable", "cell", "cell"),
    # STRINGs: operands are header cells, counts LINT cells.
    "smov": _D_A,
    "scat": _D_A_B,
    "slen": _D_A,
    "sleft": _D_A_B,
    "sright": _D_A_B,
    "smid": ("cell", "cell", "cell", "cell"),
    "sfind": _D_A_B,
    # scmp d a b k: k = 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge.
    "scmp": ("cell", "cell", "cell", "count"),
    "sld": ("cell", "var"),
    "sst": ("var", "cell"),
    "sldx": ("cell", "table", "cell"),
    "sstx": ("table", "cell", "cell"),
    "sldc": ("cell", "cell", "count", "count", "cell"),
    "sstc": ("cell", "count", "count", "cell", "cell"),
    "sldt": ("cell", "ctable", "cell"),
    "sstt": ("ctable", "cell", "cell"),
    "stoi": _D_A,
    "stof": _D_A,
    "tostr": _D_A,
}


def _table() -> dict[str, tuple[str, ...]]:
    ops = dict(_BASE)
    for m in MATH_OPS:
        ops[m] = _D_A
    for kind in FB_TYPES:
        ops[f"fb.{kind}"] = ("cell",)
        ops[f"fbx.{kind}"] = ("cell", "count", "count", "cell")
        ops[f"fbt.{kind}"] = ("ctable", "cell")
    return ops


#: Every operation and the kinds of its operands.
OPS: dict[str, tuple[str, ...]] = _table()


def arity(op: str) -> tuple[int, bool]:
    """Operand count of ``op`` and whether more may follow (a ``rest`` operand)."""
    kinds = OPS[op]
    if kinds and kinds[-1] == "rest":
        return len(kinds) - 1, True
    return len(kinds), False
