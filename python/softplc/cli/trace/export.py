"""``softplc trace export FILE -o OUT``: CSV, VCD (with a GTKWave save file), Parquet."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from softplc.cli.trace._common import (
    add_json,
    add_signals,
    add_verify,
    add_window,
    guard,
    open_trace,
    print_json,
    select,
    window,
)
from softplc.trace import TraceError

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Adds ``export`` to the ``softplc trace`` subparsers."""
    q = sub.add_parser("export", help="export to CSV, VCD (+ .gtkw) or Parquet")
    q.add_argument("file", metavar="FILE")
    q.add_argument("-f", "--format", choices=["csv", "vcd", "parquet"], help="default: from -o")
    q.add_argument("-o", "--output", required=True, metavar="OUT", help="output file")
    add_signals(q)
    add_window(q)
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_verify(q)
    add_json(q)
    q.set_defaults(func=guard(run))


def _progress_bar(fmt: str) -> tuple[Any, Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal: (bar, callback) or (None, None)."""
    if not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import Progress

    console = Console(file=sys.stderr, highlight=False, markup=False, emoji=False)
    bar = Progress(console=console, transient=True)
    task = bar.add_task(f"export {fmt}", total=None)

    def progress(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, progress


def run(args: argparse.Namespace) -> int:
    """Writes the selected signals of the window in the format ``-f`` (or ``-o``'s
    suffix) names."""
    from softplc.trace import _export

    tr = open_trace(args.file, verify=args.verify)
    sigs = select(tr, args.signals)
    sl = window(tr, args)
    fmt = args.format or os.path.splitext(args.output)[1].lstrip(".").lower()
    if fmt not in _export.FORMATS:
        raise TraceError(f"unknown export format {fmt!r} (use {', '.join(_export.FORMATS)})")
    bar, progress = (None, None) if args.json or args.no_progress else _progress_bar(fmt)
    if bar is not None:
        bar.start()
    extra: dict[str, Any] = {}
    try:
        if fmt == "csv":
            n = _export.export_csv(tr, sigs, args.output, sl, progress)
        elif fmt == "parquet":
            n = _export.export_parquet(tr, sigs, args.output, sl, progress)
        else:
            changes, gtkw = _export.export_vcd(tr, sigs, args.output, sl, progress)
            n = len(range(*sl.indices(tr.rows)))
            extra = {"changes": changes, "gtkw": gtkw}
    finally:
        if bar is not None:
            bar.stop()
    if args.json:
        print_json(
            {
                "file": tr.path,
                "format": fmt,
                "out": args.output,
                "rows": n,
                "signals": len(sigs),
                **extra,
            }
        )
    else:
        print(f"wrote {n} rows of {len(sigs)} signals to {args.output}")
        if "gtkw" in extra:
            print(f"wrote GTKWave save file {extra['gtkw']}")
    return 0
