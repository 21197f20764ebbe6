"""The compiler of one program instance: the parts put together, and the entry that
lays out the program, inlines its scan and collects its errors."""

from __future__ import annotations

from types import FunctionType

from softplc.compiler.errors import MAX_ERRORS, CompileError, CompileErrors, LimitReached
from softplc.compiler.layout import Layouts
from softplc.compiler.stdcalls import StdCalls

__all__ = ["Compiler", "compile_instance"]


class _TooManyErrors(Exception):
    """The compiler has reported :data:`MAX_ERRORS` errors and stops."""


class Compiler(StdCalls):
    """Compiles one ``@program`` instance to the intermediate form."""

    def __init__(self, obj: object, *, collect: bool = True) -> None:
        super().__init__(obj)
        self._collect = collect
        self.errors: list[CompileError] = []
        self._seen: set[tuple[str, int, int, str, str]] = set()

    @property
    def collecting(self) -> bool:
        return self._collect

    def record(self, e: CompileError) -> None:
        """Keeps an error (once) and goes on, up to :data:`MAX_ERRORS`."""
        if isinstance(e, CompileErrors):
            for x in e.errors:
                self.record(x)
            return
        if e.key in self._seen:
            return
        self._seen.add(e.key)
        self.errors.append(e)
        if len(self.errors) >= MAX_ERRORS:
            raise _TooManyErrors

    def compile(self) -> bytes:
        """The intermediate form, or :class:`CompileErrors` listing every error."""
        truncated = False
        try:
            self.run()
        except _TooManyErrors:
            truncated = True
        except CompileError as e:
            self.record(e)
        if self.errors:
            raise CompileErrors(self.errors, truncated)
        return self.b.encode()

    def run(self) -> None:
        try:
            layouts = Layouts(self.b, lambda cls, attr: setattr(self, "declaring", (cls, attr)))
            scope = layouts.program_scope(self.obj, self.prog_name)
            scan: FunctionType = self.cls.__dict__.get("scan") or self.cls.scan  # type: ignore[attr-defined]
            self.inline_body(
                scan, scope, [], {}, None, top=True, scan_of=f"program {self.cls.__name__}"
            )
        except LimitReached as e:
            raise self.size_error(e) from None
        except RecursionError:
            # Only reachable through nesting the other limits do not cover (deeply
            # nested block declarations); an error at the statement, not a traceback.
            where = self.top_stmt or self.stmt_at
            if where is None:
                raise CompileError(
                    *self.class_site(), "nesting", "the program nests too deeply to compile"
                ) from None
            raise self.err(
                *where,
                "nesting",
                "this statement nests calls, blocks or expressions too deeply to compile",
                "flatten it: fewer nested calls or blocks",
            ) from None


def compile_instance(obj: object) -> bytes:
    """Compiles a ``@program`` instance to the intermediate form (MessagePack bytes).

    Raises :class:`CompileError` for anything outside the compiled subset: a
    :class:`CompileErrors` that reads as the first error and lists them all.
    """
    return Compiler(obj).compile()
