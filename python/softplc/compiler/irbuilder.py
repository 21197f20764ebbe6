"""Builds the intermediate form (see ``rust/softplc-vm/src/ir.rs`` and
``docs/programs.md``): process-image variables, tables, typed cells, instructions with
integer operands, per-instruction source lines, the names of indexed arrays (for
faults) and the symbol table of the program's stateful cells."""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from softplc.compiler.errors import LimitReached
from softplc.compiler.ops import OPS, arity
from softplc.compiler.typenames import storage
from softplc.iectypes import f32, latin1, string_capacity
from softplc.limits import MAX_CELLS, MAX_INSTRUCTIONS

__all__ = ["FORMAT", "VERSION", "IrBuilder", "Label", "Symbol"]

FORMAT = "softplc-ir"
VERSION = 2

#: A cell's initial value as the document holds it (a STRING's header: its text).
Init = bool | int | float | str

#: Operations that have a STRING form, and which operand is the cell that decides:
#: the compiler emits the generic one and :meth:`IrBuilder.emit` picks the string form
#: when that cell is a STRING's header (a copy of a string is ``smov``, a load ``sld``).
_STRING_FORMS = {
    "mov": ("smov", 0),
    "ld": ("sld", 0),
    "st": ("sst", 1),
    "ldx": ("sldx", 0),
    "stx": ("sstx", 2),
    "ldc": ("sldc", 0),
    "stc": ("sstc", 4),
    "ldt": ("sldt", 0),
    "stt": ("sstt", 2),
}


#: Operations whose first operand is the one cell they write, after reading the others:
#: their result may be written straight into a variable (:meth:`IrBuilder.retarget`).
_RETARGETABLE = frozenset(
    {
        "mov",
        "conv",
        "add",
        "sub",
        "mul",
        "div",
        "mod",
        "floordiv",
        "floormod",
        "neg",
        "abs",
        "and",
        "or",
        "xor",
        "not",
        "shl",
        "shr",
        "rol",
        "ror",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "min",
        "max",
        "sel",
        "getbit",
        "setbit",
        "ld",
        "ldx",
        "ldc",
        "ldt",
        "trunc",
        # A string written straight into a variable is truncated to the variable's
        # capacity instead of the temporary's, which holds the whole result anyway
        # (not tostr: its result is a STRING(80) first).
        "smov",
        "scat",
        "sleft",
        "sright",
        "smid",
        "sld",
        "sldx",
        "sldc",
        "sldt",
    }
)


class Label:
    """A code position, possibly not yet known (forward jumps are patched)."""

    __slots__ = ("pos", "uses")

    def __init__(self) -> None:
        self.pos: int | None = None
        self.uses: list[tuple[int, int]] = []


@dataclass(frozen=True)
class Symbol:
    """A stateful cell: its instance path (``mixer.step_timer.ET``), IEC type, role
    (``input``, ``output`` or ``internal``) and cell index."""

    path: str
    type: str
    role: str
    cell: int


class IrBuilder:
    """Accumulates one program's intermediate form."""

    def __init__(self, program: str, source: str) -> None:
        self.program = program
        self.source = source
        self.vars: list[tuple[str, str]] = []
        self._var_index: dict[str, int] = {}
        self.tables: list[list[int]] = []
        self._table_index: dict[tuple[int, ...], int] = {}
        self.ctables: list[list[int]] = []
        self._ctable_index: dict[tuple[int, ...], int] = {}
        self.cells: list[tuple[str, Init]] = []
        self.code: list[tuple[str, list[int]]] = []
        self.lines: list[int] = []
        self.messages: list[str] = []
        self._message_index: dict[str, int] = {}
        self.index_names: list[tuple[int, int]] = []
        self.symbols: list[Symbol] = []
        self._consts: dict[tuple[str, object], int] = {}
        self._free: dict[str, list[int]] = {}
        self.line = 0
        # Source file of each instruction's line, as an index into files (files[0] is
        # the program's own source; helpers may come from other modules).
        self.files: list[str] = [source]
        self.file_of: list[int] = []
        self.file = 0
        # Where the last label was placed: an instruction there may be jumped to.
        self._placed_at = -1

    # -- declarations ---------------------------------------------------------------

    def var(self, name: str, t: str) -> int:
        """Index of an image variable (added on first use)."""
        t = storage(t)
        i = self._var_index.get(name)
        if i is None:
            i = len(self.vars)
            self.vars.append((name, t))
            self._var_index[name] = i
        return i

    def table(self, names: tuple[str, ...], t: str) -> int:
        """Index of an image table (an array of variables of one type)."""
        t = storage(t)
        key = tuple(self.var(n, t) for n in names)
        i = self._table_index.get(key)
        if i is None:
            i = len(self.tables)
            self.tables.append(list(key))
            self._table_index[key] = i
        return i

    def ctable(self, cells: tuple[int, ...]) -> int:
        """Index of a cell table (cells of one type, or bases of block instances)."""
        i = self._ctable_index.get(cells)
        if i is None:
            i = len(self.ctables)
            self.ctables.append(list(cells))
            self._ctable_index[cells] = i
        return i

    def cell(self, t: str, init: object = None) -> int:
        """A new cell of type ``t`` with an initial value (zero by default). A STRING(n)
        takes its header cell (returned) and ``ceil(n / 8)`` data cells after it."""
        t = storage(t)
        cap = string_capacity(t)
        if cap is not None:
            text = latin1("" if init is None else str(init))[:cap]
            k = -(-cap // 8)
            if len(self.cells) + 1 + k > MAX_CELLS:
                raise LimitReached("cells", MAX_CELLS)
            self.cells.append((t, text))
            self.cells.extend([("STRDATA", 0)] * k)
            return len(self.cells) - 1 - k
        value: Init
        if init is None:
            value = False if t == "BOOL" else (0.0 if t in ("REAL", "LREAL") else 0)
        elif t == "BOOL":
            value = bool(init)
        elif t == "REAL":
            value = f32(float(init))  # type: ignore[arg-type]
        elif t == "LREAL":
            value = float(init)  # type: ignore[arg-type]
        else:
            value = int(init)  # type: ignore[call-overload]
        if len(self.cells) >= MAX_CELLS:
            raise LimitReached("cells", MAX_CELLS)
        self.cells.append((t, value))
        return len(self.cells) - 1

    def const(self, t: str, value: object) -> int:
        """A cell holding a constant (shared by equal constants; never written)."""
        t = storage(t)
        v: Init
        if string_capacity(t) is not None:
            v = str(value)
        elif t == "REAL":
            v = f32(float(value))  # type: ignore[arg-type]
        elif t == "LREAL":
            v = float(value)  # type: ignore[arg-type]
        elif t == "BOOL":
            v = bool(value)
        else:
            v = int(value)  # type: ignore[call-overload]
        # Keep -0.0 and 0.0 apart, and NaN equal to itself.
        key = (t, repr(v) if isinstance(v, float) else v)
        c = self._consts.get(key)
        if c is None:
            c = self.cell(t, v)
            self._consts[key] = c
        return c

    def symbol(self, path: str, t: str, role: str, cell: int) -> None:
        """Records a stateful cell in the symbol table."""
        self.symbols.append(Symbol(path, storage(t), role, cell))

    def at(self, file: str, line: int) -> None:
        """Sets the source position of the instructions emitted next."""
        try:
            self.file = self.files.index(file)
        except ValueError:
            self.file = len(self.files)
            self.files.append(file)
        self.line = line

    def message(self, text: str) -> int:
        """Index of a message (trap texts, array names); equal texts share one."""
        i = self._message_index.get(text)
        if i is None:
            i = len(self.messages)
            self.messages.append(text)
            self._message_index[text] = i
        return i

    # -- temporaries ----------------------------------------------------------------

    def temp(self, t: str, live: list[tuple[str, int]]) -> int:
        """A scratch cell of type ``t``, recorded in ``live`` for release."""
        t = storage(t)
        pool = self._free.get(t)
        c = pool.pop() if pool else self.cell(t)
        live.append((t, c))
        return c

    def release(self, live: list[tuple[str, int]], mark: int) -> None:
        """Returns the temporaries allocated since ``mark`` to the pool."""
        while len(live) > mark:
            t, c = live.pop()
            self._free.setdefault(t, []).append(c)

    # -- code -----------------------------------------------------------------------

    def emit(self, op: str, *args: int) -> int:
        """Appends an instruction; returns its index. A copy, load or store of a
        STRING becomes its string form (``smov``, ``sld``, ...)."""
        form = _STRING_FORMS.get(op)
        if (
            form is not None
            and 0 <= args[form[1]] < len(self.cells)
            and self.cells[args[form[1]]][0].startswith("STRING(")
        ):
            op = form[0]
        n, rest = arity(op) if op in OPS else (-1, False)
        if n < 0 or len(args) < n or (not rest and len(args) != n):
            raise AssertionError(f"compiler bug: {op} with {len(args)} operands")
        if len(self.code) >= MAX_INSTRUCTIONS:
            raise LimitReached("instructions", MAX_INSTRUCTIONS)
        self.code.append((op, [int(a) for a in args]))
        self.lines.append(self.line)
        self.file_of.append(self.file)
        return len(self.code) - 1

    def indexed(self, pc: int, array: str) -> None:
        """Names the array that instruction ``pc`` indexes, for its fault message."""
        self.index_names.append((pc, self.message(array)))

    def jump(self, op: str, label: Label, *cond: int) -> None:
        """A forward jump (``jmp``, ``jz``, ``jnz``) to ``label``, patched when placed."""
        pc = self.emit(op, *cond, -1)
        label.uses.append((pc, len(cond)))
        if label.pos is not None:
            raise AssertionError("forward jump to a placed label")

    def jtab(self, x: int, lo: int, targets: list[Label], default: Label) -> None:
        """A jump table on cell ``x``: to ``targets[x - lo]``, else to ``default``
        (every label placed later)."""
        pc = self.emit("jtab", x, lo, *([-1] * (len(targets) + 1)))
        for k, label in enumerate([*targets, default]):
            label.uses.append((pc, 2 + k))

    def retarget(self, src: int, dst: int) -> bool:
        """When the last instruction computed cell ``src`` (a temporary consumed by a
        move into ``dst``), makes it write ``dst`` instead; False when it cannot
        (another kind of instruction, or a jump lands between them). Saves the move."""
        if not self.code or self._placed_at == len(self.code):
            return False
        op, args = self.code[-1]
        if op not in _RETARGETABLE or not args or args[0] != src:
            return False
        args[0] = dst
        return True

    def place(self, label: Label) -> None:
        """Puts ``label`` here and patches the jumps to it."""
        self._placed_at = len(self.code)
        label.pos = len(self.code)
        for pc, k in label.uses:
            self.code[pc][1][k] = label.pos

    def loop_back(self, label: Label) -> None:
        """A backward jump to a placed label."""
        assert label.pos is not None
        self.emit("loop", label.pos)

    def encode(self) -> bytes:
        """The MessagePack document."""
        doc: dict[str, object] = {
            "format": FORMAT,
            "version": VERSION,
            "program": self.program,
            "source": self.source,
            "vars": [list(v) for v in self.vars],
            "tables": self.tables,
            "cells": [list(c) for c in self.cells],
            "code": [[op, args] for op, args in self.code],
            "lines": self.lines,
            "messages": self.messages,
        }
        if self.ctables:
            doc["ctables"] = self.ctables
        if self.index_names:
            doc["index_names"] = [list(x) for x in self.index_names]
        if self.symbols:
            doc["symbols"] = [[s.path, s.type, s.role, s.cell] for s in self.symbols]
        if len(self.files) > 1:
            doc["files"] = self.files
            doc["file_of"] = self.file_of
        out: bytes = msgpack.packb(doc, use_bin_type=True)
        return out
