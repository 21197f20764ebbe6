"""Builds the intermediate form (see ``rust/softplc-vm/src/ir.rs`` and
``docs/programs.md``): process-image variables, tables, typed cells, instructions with
integer operands, and per-instruction source lines."""

from __future__ import annotations

from typing import Any

import msgpack

from softplc.compiler.errors import LimitReached
from softplc.iectypes import f32
from softplc.limits import MAX_CELLS, MAX_INSTRUCTIONS

__all__ = ["FORMAT", "VERSION", "IrBuilder", "Label"]

FORMAT = "softplc-ir"
VERSION = 1


class Label:
    """A code position, possibly not yet known (forward jumps are patched)."""

    __slots__ = ("pos", "uses")

    def __init__(self) -> None:
        self.pos: int | None = None
        self.uses: list[tuple[int, int]] = []


class IrBuilder:
    """Accumulates one program's intermediate form."""

    def __init__(self, program: str, source: str) -> None:
        self.program = program
        self.source = source
        self.vars: list[tuple[str, str]] = []
        self._var_index: dict[str, int] = {}
        self.tables: list[list[int]] = []
        self._table_index: dict[tuple[int, ...], int] = {}
        # Table of each name list already seen, by identity: the compiler passes the
        # same list for every access to one array, and building its key again would
        # cost a pass over the whole array per access.
        self._table_of_list: dict[int, tuple[list[str], int]] = {}
        self.cells: list[tuple[str, Any]] = []
        self.code: list[tuple[str, list[int]]] = []
        self.lines: list[int] = []
        self.messages: list[str] = []
        self._consts: dict[tuple[str, Any], int] = {}
        self._free: dict[str, list[int]] = {}
        self.line = 0
        # Source file of each instruction's line, as an index into files (files[0] is
        # the program's own source; helpers may come from other modules).
        self.files: list[str] = [source]
        self.file_of: list[int] = []
        self.file = 0

    # -- declarations ---------------------------------------------------------------

    def var(self, name: str, t: str) -> int:
        """Index of an image variable (added on first use)."""
        i = self._var_index.get(name)
        if i is None:
            i = len(self.vars)
            self.vars.append((name, t))
            self._var_index[name] = i
        return i

    def table(self, names: list[str], t: str) -> int:
        """Index of an image table (an array of variables of one type)."""
        seen = self._table_of_list.get(id(names))
        if seen is not None and seen[0] is names:
            return seen[1]
        key = tuple(self.var(n, t) for n in names)
        i = self._table_index.get(key)
        if i is None:
            i = len(self.tables)
            self.tables.append(list(key))
            self._table_index[key] = i
        # The list is kept, so its id cannot be reused by another list.
        self._table_of_list[id(names)] = (names, i)
        return i

    def cell(self, t: str, init: Any = None) -> int:
        """A new cell of type ``t`` with an initial value (zero by default)."""
        if init is None:
            init = False if t == "BOOL" else (0.0 if t in ("REAL", "LREAL") else 0)
        elif t == "BOOL":
            init = bool(init)
        elif t == "REAL":
            init = f32(float(init))
        elif t == "LREAL":
            init = float(init)
        else:
            init = int(init)
        if len(self.cells) >= MAX_CELLS:
            raise LimitReached("cells", MAX_CELLS)
        self.cells.append((t, init))
        return len(self.cells) - 1

    def const(self, t: str, value: Any) -> int:
        """A cell holding a constant (shared by equal constants; never written)."""
        if t == "REAL":
            value = f32(float(value))
        elif t == "LREAL":
            value = float(value)
        elif t == "BOOL":
            value = bool(value)
        else:
            value = int(value)
        # Keep -0.0 and 0.0 apart, and NaN equal to itself.
        key = (t, repr(value) if isinstance(value, float) else value)
        c = self._consts.get(key)
        if c is None:
            c = self.cell(t, value)
            self._consts[key] = c
        return c

    def at(self, file: str, line: int) -> None:
        """Sets the source position of the instructions emitted next."""
        try:
            self.file = self.files.index(file)
        except ValueError:
            self.file = len(self.files)
            self.files.append(file)
        self.line = line

    def message(self, text: str) -> int:
        """Index of a trap message."""
        self.messages.append(text)
        return len(self.messages) - 1

    # -- temporaries ----------------------------------------------------------------

    def temp(self, t: str, live: list[tuple[str, int]]) -> int:
        """A scratch cell of type ``t``, recorded in ``live`` for release."""
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
        """Appends an instruction; returns its index."""
        if len(self.code) >= MAX_INSTRUCTIONS:
            raise LimitReached("instructions", MAX_INSTRUCTIONS)
        self.code.append((op, [int(a) for a in args]))
        self.lines.append(self.line)
        self.file_of.append(self.file)
        return len(self.code) - 1

    def jump(self, op: str, label: Label, *cond: int) -> None:
        """A forward jump (``jmp``, ``jz``, ``jnz``) to ``label``, patched when placed."""
        pc = self.emit(op, *cond, -1)
        label.uses.append((pc, len(cond)))
        if label.pos is not None:
            raise AssertionError("forward jump to a placed label")

    def place(self, label: Label) -> None:
        """Puts ``label`` here and patches the jumps to it."""
        label.pos = len(self.code)
        for pc, k in label.uses:
            self.code[pc][1][k] = label.pos

    def loop_back(self, label: Label) -> None:
        """A backward jump to a placed label."""
        assert label.pos is not None
        self.emit("loop", label.pos)

    def encode(self) -> bytes:
        """The MessagePack document."""
        doc = {
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
        if len(self.files) > 1:
            doc["files"] = self.files
            doc["file_of"] = self.file_of
        out: bytes = msgpack.packb(doc, use_bin_type=True)
        return out
