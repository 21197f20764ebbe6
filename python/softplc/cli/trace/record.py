"""``softplc run --trace FILE``: the options, starting the recording, and saying where
the trace went when it stops."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from softplc.cli.trace.trigger import TRIGGER_SIGNAL
from softplc.trace import TraceRecorder, start_trace

__all__ = ["add_run_options", "start_from_args", "stop_and_report"]


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Adds ``--trace FILE``, ``--trace-signals GLOB``, ``--trace-decimate N``,
    ``--trace-trigger COND``, ``--trace-pre N`` and ``--trace-post N`` to a parser."""
    p.add_argument("--trace", metavar="FILE", help="record a trace file while running")
    p.add_argument(
        "--trace-signals",
        metavar="GLOB",
        action="append",
        help="signals to trace (names or globs, comma-separated or repeated; default all)",
    )
    p.add_argument("--trace-decimate", type=int, default=1, metavar="N", help="every Nth cycle")
    p.add_argument(
        "--trace-trigger",
        metavar="COND",
        help="record around a trigger: rising:NAME, falling:NAME, NAME>X, NAME<X, NAME<>X or "
        "manual (force with: softplc trace trigger PID)",
    )
    p.add_argument("--trace-pre", type=int, default=1000, metavar="N", help="rows before trigger")
    p.add_argument("--trace-post", type=int, default=1000, metavar="N", help="rows after trigger")


def start_from_args(
    engine: Any, args: argparse.Namespace, *, program_path: str | None = None
) -> TraceRecorder | None:
    """Starts the trace ``softplc run`` options ask for (None without ``--trace``).

    While it records (when called on the main thread), SIGUSR1 (``softplc trace trigger
    PID``) forces the trigger of a ``--trace-trigger`` recording; for a continuous one it
    only prints a warning, so a stray signal never kills the run. The previous handler
    comes back once the recorder has stopped.
    """
    path = getattr(args, "trace", None)
    if not path:
        return None
    triggered = bool(getattr(args, "trace_trigger", None))
    rec = start_trace(
        engine,
        path,
        signals=getattr(args, "trace_signals", None),
        decimate=getattr(args, "trace_decimate", 1),
        trigger=getattr(args, "trace_trigger", None),
        pre=getattr(args, "trace_pre", 1000),
        post=getattr(args, "trace_post", 1000),
        program_path=program_path,
    )
    if TRIGGER_SIGNAL is None or threading.current_thread() is not threading.main_thread():
        return rec

    def on_signal(signum: int, frame: Any) -> None:
        if triggered:
            rec.trigger()
        else:
            print(
                "softplc: warning: trigger signal ignored: the trace records continuously "
                "(start with --trace-trigger to record around a trigger)",
                file=sys.stderr,
            )

    previous = signal.signal(TRIGGER_SIGNAL, on_signal)
    stop = rec.stop

    def stop_and_restore() -> dict[str, int]:
        result = stop()
        # Only once stopped: a failed stop leaves the recorder (and the handler) on.
        signal.signal(TRIGGER_SIGNAL, previous)
        return result

    rec.stop = stop_and_restore  # type: ignore[method-assign]
    return rec


def stop_and_report(rec: TraceRecorder | None, *, quiet: bool = False) -> dict[str, Any] | None:
    """Stops the recording of ``softplc run --trace`` and says where the trace went: one
    line on stderr (unless ``quiet``; a failure to write is always reported), and the
    returned dict for the ``--json`` summary (``path`` absolute, ``rows``,
    ``dropped_blocks``, ``events_lost``, ``captures`` for a triggered trace, and
    ``error``: None, or why writing failed). None without a recorder.

    Example:
        >>> stop_and_report(None) is None
        True
    """
    if rec is None:
        return None
    counters = rec.stop()
    error = rec.error
    out: dict[str, Any] = {
        "path": os.path.abspath(rec.path),
        "rows": int(counters.get("rows_written", 0)),
        "dropped_blocks": int(counters.get("dropped_blocks", 0)),
        "events_lost": int(counters.get("events_lost", 0)),
    }
    if rec.mode == "triggered":
        out["captures"] = int(counters.get("captures_written", 0))
    out["error"] = error
    if error:
        print(f"softplc: warning: trace {out['path']}: writing failed: {error}", file=sys.stderr)
    if not quiet:
        what = f"{out['rows']} rows"
        if "captures" in out:
            what += f" in {out['captures']} captures"
        if out["dropped_blocks"]:
            what += f", {out['dropped_blocks']} blocks dropped"
        print(f"softplc: trace written to {out['path']} ({what})", file=sys.stderr)
    return out
