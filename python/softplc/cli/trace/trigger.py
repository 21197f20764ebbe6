"""``softplc trace trigger PID``: forces the trigger of a running ``softplc run
--trace-trigger``."""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

from softplc.cli.trace._common import add_json, guard, print_json
from softplc.trace import TraceError

__all__ = ["TRIGGER_SIGNAL", "register", "run", "trigger_target_problem"]

#: The signal that forces the trigger of a ``softplc run --trace-trigger`` recording.
TRIGGER_SIGNAL = getattr(signal, "SIGUSR1", None)


def register(sub: Any) -> None:
    """Adds ``trigger`` to the ``softplc trace`` subparsers."""
    q = sub.add_parser("trigger", help="force the trigger of a running softplc run --trace")
    q.add_argument("pid", type=int, metavar="PID", help="process id of softplc run")
    q.add_argument(
        "--force",
        action="store_true",
        help="send the signal without checking that PID is softplc run --trace-trigger",
    )
    add_json(q)
    q.set_defaults(func=guard(run))


def _command_line(pid: int) -> list[str] | None:
    """The arguments process ``pid`` was started with, or None when they cannot be read
    (no /proc, or not allowed)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            raise TraceError(f"no process {pid}") from None
        return None
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def trigger_target_problem(argv: list[str]) -> str | None:
    """Why a process started with ``argv`` must not get the trigger signal, or None when
    it is a ``softplc run`` recording a triggered trace (``--trace-trigger``).

    Example:
        >>> trigger_target_problem(["python", "-m", "softplc", "run", "p.py", "--trace",
        ...     "t.trace", "--trace-trigger", "rising:start"]) is None
        True
        >>> trigger_target_problem(["sleep", "100"])
        'it is not softplc run'
    """
    names = [os.path.basename(a) for a in argv]
    at = next(
        (
            i
            for i, n in enumerate(names)
            if n in ("softplc", "softplc.cli") or (n.startswith("softplc") and n.endswith(".py"))
        ),
        None,
    )
    if at is None:
        return "it is not softplc run"
    rest = argv[at + 1 :]
    # The subcommand is the first argument after the program that is not an option.
    if next((a for a in rest if not a.startswith("-")), None) != "run":
        return "it is not softplc run"
    if not any(a == "--trace-trigger" or a.startswith("--trace-trigger=") for a in rest):
        if any(a == "--trace" or a.startswith("--trace=") for a in rest):
            return "it records a continuous trace (no --trace-trigger): nothing to trigger"
        return "it records no trace (no --trace-trigger)"
    return None


def run(args: argparse.Namespace) -> int:
    """Sends SIGUSR1 to the process, after checking that it is a triggered recording."""
    if TRIGGER_SIGNAL is None:
        raise TraceError("forcing a trigger by process id needs a POSIX system")
    if args.pid <= 0:
        raise TraceError(f"invalid process id {args.pid}")
    if not args.force:
        argv = _command_line(args.pid)
        if argv is None:
            raise TraceError(
                f"cannot check what process {args.pid} is (no /proc/{args.pid}/cmdline); "
                "pass --force to send the trigger anyway"
            )
        problem = trigger_target_problem(argv)
        if problem is not None:
            raise TraceError(
                f"not sending the trigger to process {args.pid}: {problem} "
                f"({' '.join(argv)[:200]}); --force sends it anyway"
            )
    try:
        os.kill(args.pid, TRIGGER_SIGNAL)
    except ProcessLookupError:
        raise TraceError(f"no process {args.pid}") from None
    except PermissionError:
        raise TraceError(f"not allowed to signal process {args.pid}") from None
    if args.json:
        print_json({"pid": args.pid, "sent": "SIGUSR1"})
    else:
        print(f"trigger sent to process {args.pid}")
    return 0
