"""The ``softplc`` command line.

Subcommands: ``run`` (this package), and, where present, ``check`` (compiled
programs), ``trace`` (the trace viewer) and ``io`` (fieldbus configuration). Errors the
user can fix print one line ``softplc: error: ...`` and exit 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from softplc.errors import SoftPlcError

__all__ = ["build_parser", "main"]

# Subcommand modules, each exposing register(subparsers).
_COMMANDS = ("softplc.cli.run", "softplc.cli.check", "softplc.cli.trace", "softplc.cli.io")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="softplc",
        description="softplc: Python-authored control programs on a Rust scan-cycle engine.",
    )
    parser.add_argument("--version", action="version", version="softplc 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _COMMANDS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                continue
            raise
        module.register(sub)
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
