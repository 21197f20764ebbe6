"""Binding a program file's variables to process-image addresses, as the engine does
when it starts, without starting anything (what ``softplc check`` reports).

The engine declares the file's global variables, then every program's variables
(``<instance>.<attr>``, arrays element by element), and builds the layout: an explicit
address that overlaps another variable's, a type that does not match its address, or
an image past its limits is an error. :func:`bind_program_file` makes the same native
calls on an engine that is never started, and reports each refusal at the declaration
in the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from softplc import authoring as prog
from softplc.compiler import declaration_site
from softplc.engine import Engine
from softplc.errors import ConfigError, SoftPlcError
from softplc.loader import ProgramFile
from softplc.types import IecType

__all__ = ["Binding", "BindingError", "bind_program_file"]


@dataclass(frozen=True)
class BindingError:
    """A declaration the engine refuses.

    ``program`` is the program instance it belongs to (``None`` for a global variable
    or the image as a whole); ``file``, ``line`` and ``column`` locate the declaration
    (line 0 when unknown); ``construct`` names it, ``detail`` is the engine's reason and
    ``hint`` says what to write instead (may be empty). ``str(e)`` reads
    ``file:line:col: error: <construct>: <detail> (hint: ...)``, as compile errors do.
    """

    program: str | None
    file: str
    line: int
    column: int
    construct: str
    detail: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        msg = f"{where}: error: {self.construct}: {self.detail}"
        return f"{msg} (hint: {self.hint})" if self.hint else msg


@dataclass(frozen=True)
class Binding:
    """What binding a program file gave: the variables with their addresses (as
    ``Engine.variables()`` lists them; empty when the layout could not be built) and
    the refused declarations."""

    variables: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BindingError] = field(default_factory=list)


# The declaration a leaf's name comes from: "rec" of "rec.id", "arr" of "arr[3]".
_ROOT = re.compile(r"^[A-Za-z_]\w*")
_ADDRESS_HINT = (
    "an address needs the size letter of its type and must not overlap another "
    "variable's (%IX0.3 is bit 3 of byte 0, %ID2 bytes 8-11); leave it out to have a "
    "free one assigned"
)


def bind_program_file(pf: ProgramFile) -> Binding:
    """Declares every variable of ``pf`` on an engine that is never started and builds
    its layout; returns the addresses and every declaration the engine refuses (at most
    one per program: the engine stops a program at its first refused variable).

    Example::

        from softplc.loader import load_program_file
        b = bind_program_file(load_program_file("programs/tank.py"))
        b.errors                       # -> []
        b.variables[0]["address"]      # -> '%ID0'
    """
    errors: list[BindingError] = []
    engine = Engine(clock="virtual")
    try:
        native = engine.native
        for name, var in pf.globals.items():
            try:
                if isinstance(var, prog.Global):
                    engine.add_global(var)
                    continue
                if not isinstance(var.type, IecType):
                    raise ConfigError(f"variable {name!r}: {var.type!r} is not an IEC type")
                # The declaration softplc run makes for a module-level variable.
                var.spec(name).declare(engine.native, name)
            except SoftPlcError as e:
                errors.append(BindingError(None, str(pf.path), 0, 0, f"variable {name}", str(e)))
        for obj in _program_instances(pf):
            pname = prog.instance_name(obj)
            for alias, g in prog.program_globals(obj):
                try:
                    engine.add_global(g)
                except SoftPlcError as e:
                    file, line, col = declaration_site(type(obj), alias)
                    errors.append(BindingError(pname, file, line, col, f"global {alias}", str(e)))
            for spec in prog.program_variables(obj):
                try:
                    # The call Engine.add_program makes for each variable.
                    spec.declare(native, f"{pname}.{spec.attr}")
                except SoftPlcError as e:
                    m = _ROOT.match(spec.attr)
                    attr = m.group(0) if m else spec.attr
                    file, line, col = declaration_site(type(obj), attr)
                    hint = _ADDRESS_HINT if spec.address is not None else ""
                    errors.append(
                        BindingError(pname, file, line, col, f"declaration of {attr}", str(e), hint)
                    )
                    break
        try:
            variables = [dict(v) for v in native.layout_preview()]
        except SoftPlcError as e:
            errors.append(BindingError(None, str(pf.path), 0, 0, "process image", str(e)))
            variables = []
    finally:
        engine.close()
    return Binding(variables, errors)


def _program_instances(pf: ProgramFile) -> list[Any]:
    """The declared programs of ``pf`` as the engine adds them (classes instantiated
    with their default names), tasks after the default list; plain callables have no
    variables of their own and are left out."""
    items = list(pf.programs)
    for task in pf.tasks:
        items.extend(getattr(task, "programs", []) or [])
    out = []
    for item in items:
        obj = item() if isinstance(item, type) and prog.is_program(item) else item
        if prog.is_program(obj):
            out.append(obj)
    return out
