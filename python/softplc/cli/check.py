"""``softplc check PROGRAM.py``: compiles every declared program of a file and reports.

Each ``@program`` is compiled to the intermediate form and run through the native
verifier. Anything outside the compiled subset is reported as
``file:line:col: error: <construct>: <detail> (hint: ...)`` and the exit status is 1.
Plain-callable programs are listed as running in Python (they are not compiled).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["check_file", "register"]


def register(sub: Any) -> None:
    """Adds the ``check`` subcommand."""
    p = sub.add_parser(
        "check",
        help="compile a program file and report",
        description="Compile every @program of a file for the native VM and report what "
        "runs compiled, or where the file leaves the compiled subset.",
    )
    p.add_argument("program", metavar="PROGRAM.py", help="program file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_run)


def check_file(path: str) -> list[dict[str, Any]]:
    """Checks every program of ``path``; one dict per program with ``name``, ``kind``
    (``compiled``, ``python`` or ``error``) and either the sizes or the error.

    Raises :class:`softplc.ConfigError`/``ProgramError`` when the file cannot be loaded.
    """
    from softplc import authoring as prog
    from softplc.compiler import CompileError, check_program
    from softplc.errors import ProgramError
    from softplc.loader import load_program_file

    pf = load_program_file(path)
    items: list[Any] = list(pf.programs)
    for task in pf.tasks:
        items.extend(getattr(task, "programs", []) or [])
    out: list[dict[str, Any]] = []
    for item in items:
        obj = item() if isinstance(item, type) and prog.is_program(item) else item
        if not prog.is_program(obj):
            name = getattr(obj, "__name__", type(obj).__name__)
            out.append({"name": name, "kind": "python", "detail": "plain callable: runs as Python"})
            continue
        name = prog.instance_name(obj)
        try:
            r = check_program(obj)
        except CompileError as e:
            out.append(
                {
                    "name": name,
                    "kind": "error",
                    "error": str(e),
                    "file": e.file,
                    "line": e.line,
                    "column": e.column,
                    "construct": e.construct,
                    "hint": e.hint,
                }
            )
            continue
        except ProgramError as e:
            out.append({"name": name, "kind": "error", "error": str(e)})
            continue
        out.append(
            {
                "name": name,
                "kind": "compiled",
                "instructions": r.instructions,
                "cells": r.cells,
                "ir_bytes": r.ir_bytes,
            }
        )
    return out


def _run(args: argparse.Namespace) -> int:
    report = check_file(args.program)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in report:
            if r["kind"] == "compiled":
                print(
                    f"{r['name']}: compiled ({r['instructions']} instructions, {r['cells']} cells)"
                )
            elif r["kind"] == "python":
                print(f"{r['name']}: python ({r['detail']})")
            else:
                print(r["error"])
    errors = sum(r["kind"] == "error" for r in report)
    if not args.json:
        ok = len(report) - errors
        print(f"{ok} program{'s' if ok != 1 else ''} ok, {errors} with errors")
    return 1 if errors else 0
