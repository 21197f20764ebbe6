"""``softplc trace plot FILE -s SIG``: plots in the terminal or to a picture."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Any

from softplc.cli.trace._common import (
    add_json,
    add_signals,
    add_verify,
    add_window,
    guard,
    nulls,
    open_trace,
    print_json,
    select,
    window,
)
from softplc.trace import TraceError

__all__ = ["MAX_SIZE", "register", "run"]

#: Largest ``--width`` and ``--height`` of a terminal plot (characters).
MAX_SIZE = 10_000


def register(sub: Any) -> None:
    """Adds ``plot`` to the ``softplc trace`` subparsers."""
    q = sub.add_parser("plot", help="plot signals in the terminal or to a picture")
    q.add_argument("file", metavar="FILE")
    add_signals(q, required=True)
    add_window(q)
    q.add_argument("--out", metavar="FILE", help="write a picture (.png, .svg, .pdf)")
    q.add_argument("--title", help="picture title")
    q.add_argument("--width", type=int, help="terminal plot width (columns)")
    q.add_argument("--height", type=int, help="terminal plot height (lines)")
    add_verify(q)
    add_json(q)
    q.set_defaults(func=guard(run))


def run(args: argparse.Namespace) -> int:
    """Draws one panel per signal: a picture with ``--out``, else in the terminal
    (``--json``: the downsampled series)."""
    from softplc.trace import _plot

    for flag, v in (("--width", args.width), ("--height", args.height)):
        if v is not None and not 1 <= v <= MAX_SIZE:
            raise TraceError(f"{flag} must be from 1 to {MAX_SIZE} (got {v})")
    tr = open_trace(args.file, verify=args.verify)
    sigs = select(tr, args.signals)
    for s in sigs:
        if s.is_string:
            raise TraceError(
                f"{s.name} is a {s.type}: plot draws numbers and BOOLs (show text with "
                "softplc trace show)"
            )
    sl = window(tr, args)
    if args.out:
        _plot.picture_plot(tr, sigs, sl, args.out, title=args.title)
        if args.json:
            print_json({"file": tr.path, "out": args.out, "signals": [s.name for s in sigs]})
        else:
            print(f"wrote {args.out}")
        return 0
    size = shutil.get_terminal_size((100, 30))
    width = args.width or size.columns
    height = args.height or max(8 * len(sigs), min(size.lines - 2, 12 * len(sigs)))
    if args.json:
        out = []
        for s in sigs:
            x, y = _plot.series(tr, s, sl, max(16, width))
            # A NaN point (a gap in the recording) is null in JSON.
            out.append({"name": s.name, "t": nulls(x), "values": nulls(y)})
        print_json({"file": tr.path, "series": out})
        return 0
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(_plot.terminal_plot(tr, sigs, sl, width=width, height=height, color=color))
    return 0
