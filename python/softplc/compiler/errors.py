"""Compile errors: every construct outside the compiled subset is reported with its
file, line and column, what it is, and a hint. A file with several mistakes gets all of
them (up to :data:`MAX_ERRORS`), as :class:`CompileErrors`."""

from __future__ import annotations

from collections.abc import Sequence

from softplc.errors import ProgramError

__all__ = ["MAX_ERRORS", "CompileError", "CompileErrors", "LimitReached"]

#: The most errors one compilation reports; past it the compiler stops. A file rarely
#: has this many independent mistakes, and later ones are then mostly echoes of the
#: first (a misspelt variable reported at every use).
MAX_ERRORS = 50


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

    @property
    def key(self) -> tuple[str, int, int, str, str]:
        """What makes two reports the same error (a helper inlined at two calls
        reports its mistake once)."""
        return (self.file, self.line, self.column, self.construct, self.detail)


class CompileErrors(CompileError):
    """Several compile errors of one program, in source order of discovery.

    It reads as its first error (``file``, ``line``, ``column``, ``construct``,
    ``detail`` and ``hint`` are the first error's); ``errors`` holds them all and
    ``str(e)`` lists them one per line, with ``truncated`` set when the compiler
    stopped at :data:`MAX_ERRORS`.
    """

    def __init__(self, errors: Sequence[CompileError], truncated: bool = False) -> None:
        first = errors[0]
        super().__init__(
            first.file, first.line, first.column, first.construct, first.detail, first.hint
        )
        self.errors = list(errors)
        self.truncated = truncated
        lines = [str(e) for e in self.errors]
        if truncated:
            lines.append(f"(stopped after {len(self.errors)} errors)")
        self.args = ("\n".join(lines),)

    def __str__(self) -> str:
        return str(self.args[0])


class LimitReached(Exception):
    """Raised by the IR builder when a program reaches one of the limits in
    :mod:`softplc.limits`; the compiler turns it into a :class:`CompileError` at the
    statement being compiled. ``what`` names the counted thing (``"instructions"``),
    ``limit`` its maximum."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"more than {limit} {what}")
        self.what = what
        self.limit = limit
