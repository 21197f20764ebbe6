"""The ``softplc`` command line.

Subcommands: ``run`` (run a program file), ``check`` (compiled programs), ``trace``
(the trace viewer), ``io`` (fieldbus configuration), and the commands against running
runtimes (``ps``, ``status``, ``watch``, ``read``, ``write``, ``force``, ``unforce``,
``stop``, ``start``, ``reset``, ``load``), one module each. Errors the user
can fix print one line ``softplc: error: ...`` and exit 2 (never a traceback).

The package is a thin shell over the library: each subcommand turns its options into
library calls. Nothing outside ``softplc.cli`` imports it (``tests/unit/test_layering.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from softplc.cli import check, control, io, run, trace
from softplc.errors import SoftPlcError

__all__ = ["build_parser", "main"]

# Subcommand modules, each exposing register(subparsers), in the order `--help` lists them.
_COMMANDS = (run, check, trace, io, control)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="softplc",
        description="softplc: Python-authored control programs on a Rust scan-cycle engine.",
    )
    parser.add_argument("--version", action="version", version="softplc 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in _COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``softplc`` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except SoftPlcError as e:
        print(f"softplc: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("softplc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
