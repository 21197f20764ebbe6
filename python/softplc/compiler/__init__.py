"""The compiler: ``@program`` classes -> verified intermediate form for the native VM.

Entry points:

* :func:`compile_instance` (what the engine calls) returns the MessagePack bytes;
* :func:`check_program` compiles and verifies without an engine (``softplc check``).

Anything outside the compiled subset raises :class:`CompileError` with file, line,
column, the construct and a hint (:class:`CompileErrors` when there are several: it
reads as the first and lists them all); there is no silent fallback to Python. The
subset, the type rules and the standard library are documented in
``docs/programs.md``.

The compiler is a package split by concern: :mod:`~softplc.compiler.source` (finding
source code), :mod:`~softplc.compiler.shapes` and :mod:`~softplc.compiler.entities`
(what a path names and how it is read and written), :mod:`~softplc.compiler.layout`
(where a program's blocks live, the symbol table),
:mod:`~softplc.compiler.statements`, :mod:`~softplc.compiler.expressions`,
:mod:`~softplc.compiler.calls` and :mod:`~softplc.compiler.stdcalls` (the mixins of
the compiler class, assembled in :mod:`~softplc.compiler.program`),
:mod:`~softplc.compiler.fold` (constant folding), :mod:`~softplc.compiler.ops` (the
operation vocabulary shared with the VM) and :mod:`~softplc.compiler.irbuilder`.
"""

from __future__ import annotations

from dataclasses import dataclass

from softplc.compiler.errors import CompileError, CompileErrors
from softplc.compiler.program import compile_instance
from softplc.compiler.source import declaration_site

__all__ = [
    "CheckResult",
    "CompileError",
    "CompileErrors",
    "check_program",
    "compile_instance",
    "declaration_site",
]


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check_program` found for one program instance."""

    name: str
    instructions: int
    cells: int
    ir_bytes: int


def check_program(obj: object) -> CheckResult:
    """Compiles ``obj`` (a ``@program`` instance) and runs the native verifier on the
    result. Raises :class:`CompileError` (every error of the program, see
    :class:`CompileErrors`) or :class:`softplc.ProgramError`.

    Example (the class must live in a source file, which the compiler reads)::

        from programs.traffic_light import TrafficLight
        check_program(TrafficLight()).instructions   # -> 86
    """
    from softplc import _native

    ir = compile_instance(obj)
    n, cells = _native.vm_verify(ir)
    return CheckResult(str(obj.__dict__["_softplc_name"]), int(n), int(cells), len(ir))
