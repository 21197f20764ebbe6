"""Compile errors: every construct outside the compiled subset is reported with its
file, line and column, what it is, and a hint."""

from __future__ import annotations

from softplc.errors import ProgramError

__all__ = ["CompileError", "LimitReached"]


class CompileError(ProgramError):
    """A program uses something the compiled form does not support.

    Attributes ``file``, ``line`` and ``column`` (1-based) locate the construct;
    ``construct`` names it and ``hint`` says what to write instead. ``str(e)`` reads
    ``file:line:col: error: <construct>: <detail> (hint: ...)``.

    Example:
        >>> e = CompileError("p.py", 3, 9, "while loop", "not supported", "use for i in range(N)")
        >>> str(e)
        'p.py:3:9: error: while loop: not supported (hint: use for i in range(N))'
    """

    def __init__(
        self,
        file: str,
        line: int,
        column: int,
        construct: str,
        detail: str,
        hint: str = "",
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.construct = construct
        self.detail = detail
        self.hint = hint
        msg = f"{file}:{line}:{column}: error: {construct}: {detail}"
        if hint:
            msg += f" (hint: {hint})"
        super().__init__(msg)


class LimitReached(Exception):
    """Raised by the IR builder when a program reaches one of the limits in
    :mod:`softplc.limits`; the compiler turns it into a :class:`CompileError` at the
    statement being compiled. ``what`` names the counted thing (``"instructions"``),
    ``limit`` its maximum."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"more than {limit} {what}")
        self.what = what
        self.limit = limit
