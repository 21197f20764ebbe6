"""``softplc check PROGRAM.py``: compiles every declared program of a file, binds its
variables to addresses, and reports.

Each ``@program`` is compiled to the intermediate form and run through the native
verifier (:func:`softplc.compiler.check_program`), and the file's variables are bound
to process-image addresses as the engine would bind them
(:func:`softplc.layout.bind_program_file`). Anything outside the compiled subset, and
any declaration the engine would refuse (an address overlapping another variable's),
is reported as ``file:line:col: error: <construct>: <detail> (hint: ...)`` and the exit
status is 1. Plain-callable programs are listed as running in Python (they are not
compiled).
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
    (``compiled``, ``python`` or ``error``) and either the sizes or the error (one
    dict per error when a program has several: the compiler reports each, up to
    ``softplc.compiler.errors.MAX_ERRORS``). A
    declaration the engine would refuse turns its program's entry into an error (a
    second entry when the program also fails to compile); a refused global variable or
    image gets an entry of its own.

    Raises :class:`softplc.ConfigError`/``ProgramError`` when the file cannot be loaded.
    """
    from softplc import authoring as prog
    from softplc.compiler import CompileError, CompileErrors, check_program
    from softplc.errors import ProgramError
    from softplc.layout import bind_program_file
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
            # Every error of the program (CompileErrors lists them), one entry each.
            errors = e.errors if isinstance(e, CompileErrors) else [e]
            for x in errors:
                out.append(
                    {
                        "name": name,
                        "kind": "error",
                        "error": str(x),
                        "file": x.file,
                        "line": x.line,
                        "column": x.column,
                        "construct": x.construct,
                        "hint": x.hint,
                    }
                )
            if isinstance(e, CompileErrors) and e.truncated:
                stop = f"{name}: stopped after {len(errors)} errors"
                out.append({"name": name, "kind": "error", "error": stop})
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
    for b in bind_program_file(pf).errors:
        entry = {
            "name": b.program or b.construct,
            "kind": "error",
            "error": str(b),
            "file": b.file,
            "line": b.line,
            "column": b.column,
            "construct": b.construct,
            "hint": b.hint,
        }
        mine = [i for i, r in enumerate(out) if r["name"] == entry["name"]]
        if mine and out[mine[0]]["kind"] == "compiled":
            out[mine[0]] = entry  # compiles, but the engine would not load it
        else:
            out.append(entry)
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
    # A program with a compile error and a refused declaration has two entries.
    names = {r["name"] for r in report}
    errors = len({r["name"] for r in report if r["kind"] == "error"})
    if not args.json:
        ok = len(names) - errors
        print(f"{ok} program{'s' if ok != 1 else ''} ok, {errors} with errors")
    return 1 if errors else 0
