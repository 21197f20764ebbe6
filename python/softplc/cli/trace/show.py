"""``softplc trace show FILE -s SIG``: a table of values over a time window."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

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
from softplc.cli.trace._table import TextTable
from softplc.trace import TraceError, _analysis

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Adds ``show`` to the ``softplc trace`` subparsers."""
    q = sub.add_parser("show", help="a table of values over a time window")
    q.add_argument("file", metavar="FILE")
    add_signals(q, required=True)
    add_window(q)
    q.add_argument("--changes-only", action="store_true", help="only rows where a value changes")
    q.add_argument(
        "--limit", type=int, default=100, help="rows to print (0: all; default 100; not negative)"
    )
    add_verify(q)
    add_json(q)
    q.set_defaults(func=guard(run))


def run(args: argparse.Namespace) -> int:
    """Prints the rows of the window (those where a value changes with
    ``--changes-only``), at most ``--limit``."""
    if args.limit < 0:
        raise TraceError(f"--limit must be 0 (all rows) or more (got {args.limit})")
    tr = open_trace(args.file, verify=args.verify)
    sigs = select(tr, args.signals)
    sl = window(tr, args)
    cols = [tr.read(s, sl) for s in sigs]
    n = sl.stop - sl.start
    if args.changes_only and n:
        mask = np.zeros(n, dtype=bool)
        for c in cols:
            mask |= _analysis.changes_mask(c)
        keep = np.flatnonzero(mask)
    else:
        keep = np.arange(n)
    total = len(keep)
    if args.limit > 0:
        keep = keep[: args.limit]
    cyc = tr.cycles(sl)
    t = (tr.times_ns(sl) - np.uint64(tr.t0_ns)).astype(np.float64) / 1e9
    gaps = tr.gap_before(sl)
    if args.json:
        print_json(
            {
                "file": tr.path,
                "signals": [s.as_dict() for s in sigs],
                "rows": [
                    {
                        "cycle": int(cyc[i]),
                        "t": float(t[i]),
                        "gap_before": bool(gaps[i]),
                        "values": {
                            s.name: _analysis.json_value(s, c[i])
                            for s, c in zip(sigs, cols, strict=True)
                        },
                    }
                    for i in keep
                ],
                "total_rows": int(total),
                "truncated": bool(total > len(keep)),
                "warnings": tr.warnings,
            }
        )
        return 0
    table = TextTable(
        [("cycle", ">"), ("t [s]", ">")]
        + [(s.name + (f" [{s.unit}]" if s.unit else ""), ">") for s in sigs]
    )
    # Gaps up to each row, so a gap between two shown rows is one subtraction.
    gaps_so_far = np.cumsum(gaps)
    for k, i in enumerate(keep):
        if k and gaps_so_far[i] > gaps_so_far[keep[k - 1]]:
            table.add_row("(gap)", "", *("" for _ in sigs))
        table.add_row(
            int(cyc[i]),
            f"{t[i]:.6f}",
            *(_analysis.text_value(s, c[i]) for s, c in zip(sigs, cols, strict=False)),
        )
    table.print()
    if total > len(keep):
        print(f"... {total - len(keep)} more rows (--limit 0 shows all)")
    if total == 0:
        print("(no rows in this window)")
    return 0
