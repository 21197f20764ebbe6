"""``softplc trace diff A B``: the first divergence per signal; exit 1 when different."""

from __future__ import annotations

import argparse
import math
from typing import Any

from softplc.cli.trace._common import (
    EXIT_DIFFERENT,
    add_json,
    add_signals,
    add_verify,
    guard,
    open_trace,
    print_json,
)
from softplc.cli.trace._table import safe
from softplc.trace import DiffStatus, TraceError, diff, split_patterns

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Adds ``diff`` to the ``softplc trace`` subparsers."""
    q = sub.add_parser("diff", help="first divergence per signal; exit 1 when different")
    q.add_argument("a", metavar="A", help="the reference (golden) trace")
    q.add_argument("b", metavar="B", help="the trace to compare with it")
    q.add_argument("--tol", type=float, default=0.0, help="absolute tolerance (TIME: ns)")
    add_signals(q)
    add_verify(q)
    add_json(q)
    q.set_defaults(func=guard(run))


def run(args: argparse.Namespace) -> int:
    """Prints :func:`softplc.trace.diff` of the two files."""
    if args.tol < 0 or not math.isfinite(args.tol):
        raise TraceError(f"--tol must be a finite number >= 0 (got {args.tol})")
    a = open_trace(args.a, verify=args.verify)
    b = open_trace(args.b, verify=args.verify)
    signals = split_patterns(args.signals) or None
    d = diff(a, b, signals=signals, tol=args.tol)
    if args.json:
        print_json(d.as_dict())
        return 0 if d.same else EXIT_DIFFERENT
    if d.same:
        print(f"same: {len(d.signals)} signals over {d.rows_common} rows (tol {args.tol})")
        return 0
    print(f"{args.a} and {args.b} differ (tol {args.tol}):")
    for r in d.differences:
        name = safe(r.name)
        if r.status is DiffStatus.DIFFERS and r.first is not None:
            f = r.first
            print(
                f"  {name}: first at cycle {f.cycle} (t={f.t:.6f}s): "
                f"{f.a_text} vs {f.b_text}; {r.rows_differing} rows differ"
            )
        elif r.status is DiffStatus.TYPE_DIFFERS:
            print(f"  {name}: type {r.type_a} vs {r.type_b}")
        else:
            print(f"  {name}: missing in {'B' if r.status is DiffStatus.MISSING_IN_B else 'A'}")
    if not d.rows_a == d.rows_b == d.rows_common:
        print(f"  rows: A has {d.rows_a}, B has {d.rows_b}, {d.rows_common} in common")
    return EXIT_DIFFERENT
