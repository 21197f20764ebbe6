"""What the ``softplc trace`` subcommands share: opening a file, options, output."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from softplc.errors import SoftPlcError
from softplc.trace import Signal, Trace, TraceError, TraceWarning, load, split_patterns

__all__ = [
    "EXIT_DIFFERENT",
    "EXIT_ERROR",
    "add_json",
    "add_signals",
    "add_verify",
    "add_window",
    "guard",
    "ns_text",
    "nulls",
    "open_trace",
    "print_json",
    "select",
    "window",
]

#: ``diff`` found a difference.
EXIT_DIFFERENT = 1
#: A usage error or a file that cannot be read (as every ``softplc`` command).
EXIT_ERROR = 2


def open_trace(path: str, *, verify: bool = True) -> Trace:
    """Loads a trace; a truncation warning goes to stderr (and into ``tr.warnings``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TraceWarning)
        tr = load(path, verify=verify)
    for w in caught:
        if issubclass(w.category, TraceWarning):
            print(f"softplc: warning: {w.message}", file=sys.stderr)
        else:  # pragma: no cover (nothing else warns here today)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return tr


def time_arg(text: str | None, what: str) -> int | None:
    """A time from the start of the trace: seconds (``1.5``) or with a unit (``250ms``)."""
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        from softplc.timefmt import parse_duration

        try:
            return parse_duration(text, what=what)
        except SoftPlcError as e:  # ConfigError: re-raised as a trace error
            raise TraceError(str(e)) from None
    if not math.isfinite(v):
        raise TraceError(f"{what}: {text!r} is not a time")
    return round(v * 1e9)


def window(tr: Trace, args: argparse.Namespace) -> slice:
    """The rows between ``--from`` and ``--to``."""
    lo = time_arg(getattr(args, "t_from", None), "--from")
    hi = time_arg(getattr(args, "t_to", None), "--to")
    if lo is not None and hi is not None and hi < lo:
        raise TraceError(f"--to ({args.t_to}) is before --from ({args.t_from})")
    return tr.window(lo, hi)


def select(tr: Trace, patterns: list[str] | None, *, timing: bool = True) -> list[Signal]:
    """The signals ``-s`` names; an error when there are none."""
    sigs = tr.select(split_patterns(patterns), timing=timing)
    if not sigs:
        raise TraceError(f"{tr.path}: no signals to show")
    return sigs


def print_json(obj: Any) -> None:
    """One JSON object on stdout."""
    print(json.dumps(obj, indent=None, default=str))


def nulls(a: np.ndarray) -> list[float | None]:
    """Floats for JSON, NaN as null."""
    return [None if math.isnan(v) else v for v in a.tolist()]


def ns_text(v: float | None) -> str:
    """Nanoseconds as a person reads them: ``1.5ms``, ``250us``, ``-`` for None."""
    if v is None:
        return "-"
    a = abs(float(v))
    sign = "-" if v < 0 else ""
    for unit, size in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if a >= size:
            return f"{sign}{a / size:.4g}{unit}"
    return f"{sign}{a:.4g}ns"


def add_json(p: argparse.ArgumentParser) -> None:
    """``--json``."""
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_verify(p: argparse.ArgumentParser) -> None:
    """``--verify`` (the default) and ``--no-verify``."""
    p.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check every frame's checksum of a closed trace (default); --no-verify "
        "skips it to open large files faster, trusting the data",
    )


def add_signals(p: argparse.ArgumentParser, required: bool = False) -> None:
    """``-s/--signals``."""
    p.add_argument(
        "-s",
        "--signals",
        action="append",
        required=required,
        metavar="SIG",
        help="signal names or globs, comma-separated or repeated",
    )


def add_window(p: argparse.ArgumentParser) -> None:
    """``--from`` and ``--to``."""
    p.add_argument("--from", dest="t_from", metavar="T", help="start (seconds, or 250ms, 1s)")
    p.add_argument("--to", dest="t_to", metavar="T", help="end (seconds, or with a unit)")


def guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turns every failure into TraceError, which the CLI prints as one line (exit 2):
    the ones a user can cause (unreadable output paths, too little memory) with their
    own message, anything unexpected with its type and message. Broken pipes and
    Ctrl-C pass through (the CLI handles them)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except SoftPlcError:
            raise
        except MemoryError:
            raise TraceError(
                "not enough memory for this trace; select fewer signals (-s)"
            ) from None
        except BrokenPipeError:
            raise
        except OSError as e:
            raise TraceError(f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")) from None
        except Exception as e:  # noqa: BLE001 (the last resort: one line, never a traceback)
            command = getattr(args, "trace_command", None) or "trace"
            raise TraceError(
                f"softplc trace {command} failed unexpectedly: {type(e).__name__}: {e}"
            ) from None

    run.__wrapped__ = func  # type: ignore[attr-defined]
    return run
