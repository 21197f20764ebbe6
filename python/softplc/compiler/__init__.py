"""The compiler: ``@program`` classes -> verified intermediate form for the native VM.

Entry points:

* :func:`compile_instance` (what the engine calls) returns the MessagePack bytes;
* :func:`check_program` compiles and verifies without an engine (``softplc check``).

Anything outside the compiled subset raises :class:`CompileError` with file, line,
column, the construct and a hint; there is no silent fallback to Python. The subset,
the type rules and the standard library are documented in ``docs/programs.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from softplc.compiler.codegen import compile_instance, declaration_site
from softplc.compiler.errors import CompileError

__all__ = ["CheckResult", "CompileError", "check_program", "compile_instance", "declaration_site"]


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check_program` found for one program instance."""

    name: str
    instructions: int
    cells: int
    ir_bytes: int


def check_program(obj: Any) -> CheckResult:
    """Compiles ``obj`` (a ``@program`` instance) and runs the native verifier on the
    result. Raises :class:`CompileError` or :class:`softplc.ProgramError`.

    Example (the class must live in a source file, which the compiler reads)::

        from programs.traffic_light import TrafficLight
        check_program(TrafficLight()).instructions   # -> 86
    """
    from softplc import _native

    ir = compile_instance(obj)
    n, cells = _native.vm_verify(ir)
    return CheckResult(str(obj.__dict__["_softplc_name"]), int(n), int(cells), len(ir))
