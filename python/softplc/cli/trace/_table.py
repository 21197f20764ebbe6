"""Plain text tables and safe text for the trace viewer.

Written by hand rather than with rich's ``Table``: rich lays out every cell with its
own measuring and wrapping (about 0.4 ms a row), so listing the 200,000 signals a
trace header may hold took over a minute and a gigabyte. These tables cost one pass
to measure the columns and one to print, whatever their size.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

__all__ = ["TextTable", "safe"]

#: Control characters (C0, DEL, C1) as visible escapes: text from a trace file never
#: moves the cursor, changes colours or breaks a table row over several lines.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def safe(text: object) -> str:
    """``text`` with control characters shown as ``\\xNN`` escapes.

    Example:
        >>> safe("tank\\x1b[31m.level\\n")
        'tank\\\\x1b[31m.level\\\\x0a'
    """
    return str(text).translate(_CONTROLS)


class TextTable:
    """Columns of text, aligned, separated by two spaces.

    Example:
        >>> t = TextTable([("name", "<"), ("rows", ">")])
        >>> t.add_row("tank.level", "3000")
        >>> t.add_row("pump", "12")
        >>> print("\\n".join(t.lines()))
        name        rows
        tank.level  3000
        pump          12
    """

    def __init__(self, columns: Sequence[tuple[str, str]]) -> None:
        self.titles = [safe(t) for t, _ in columns]
        self.right = [a == ">" for _, a in columns]
        self.rows: list[list[str]] = []

    def add_row(self, *cells: object) -> None:
        """Adds a row (one cell per column; text is made safe)."""
        self.rows.append([safe(c) for c in cells])

    def lines(self) -> list[str]:
        """The header line and one line per row, trailing spaces removed."""
        widths = [len(t) for t in self.titles]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        out = []
        for row in (self.titles, *self.rows):
            cells = [
                cell.rjust(w) if right else cell.ljust(w)
                for cell, w, right in zip(row, widths, self.right, strict=False)
            ]
            out.append("  ".join(cells).rstrip())
        return out

    def print(self, file: TextIO | None = None) -> None:
        """Writes the table."""
        f = file if file is not None else sys.stdout
        f.write("\n".join(self.lines()) + "\n")
