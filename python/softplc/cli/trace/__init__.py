"""``softplc trace ...``: the trace viewer, one module per subcommand.

Subcommands: ``info``, ``show``, ``plot``, ``stats``, ``events``, ``export``, ``diff``
and ``trigger``. Every one takes ``--json`` (one JSON object on stdout), and every one
that reads a file verifies the checksums of a closed trace unless given ``--no-verify``.
A missing, empty, truncated, damaged, malformed or foreign file gives one clear line on
stderr naming the file and the frame, never a traceback (so does any unexpected
failure); a file cut short is read up to its last whole block with a warning. Exit
status: 0, 1 when ``diff`` finds a difference, 2 for errors.

The commands are thin: what they compute is in :mod:`softplc.trace` (``load``,
``stats``, ``diff``). :mod:`softplc.cli.trace.record` offers the options and the
start and stop of ``softplc run --trace FILE``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from softplc.cli.trace import diff, events, export, info, plot, show, stats, trigger
from softplc.cli.trace._common import EXIT_DIFFERENT, EXIT_ERROR
from softplc.cli.trace.record import add_run_options, start_from_args, stop_and_report
from softplc.cli.trace.trigger import trigger_target_problem

__all__ = [
    "EXIT_DIFFERENT",
    "EXIT_ERROR",
    "add_run_options",
    "main",
    "register",
    "start_from_args",
    "stop_and_report",
    "trigger_target_problem",
]

#: The subcommands, in the order ``softplc trace --help`` lists them.
SUBCOMMANDS = (info, show, plot, stats, events, export, diff, trigger)


def register(subparsers: Any) -> None:
    """Adds ``softplc trace`` and its subcommands to the ``softplc`` parser."""
    p = subparsers.add_parser(
        "trace",
        help="inspect, plot, export and compare trace files",
        description="The trace viewer: inspect, plot, export and compare trace files.",
    )
    sub = p.add_subparsers(dest="trace_command", metavar="SUBCOMMAND")
    sub.required = True
    for module in SUBCOMMANDS:
        module.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``softplc trace`` on its own (``python -m softplc.cli.trace info FILE``).

    Example:
        >>> main(["info", "/nonexistent.trace"])
        2
    """
    from softplc.errors import SoftPlcError

    parser = argparse.ArgumentParser(prog="softplc")
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    register(sub)
    args = parser.parse_args(["trace", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except SoftPlcError as e:
        print(f"softplc: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return 0
