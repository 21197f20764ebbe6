"""``softplc trace stats FILE``: min/max/mean, toggles, execution-time histograms."""

from __future__ import annotations

import argparse
from typing import Any

from softplc.cli.trace._common import (
    add_json,
    add_signals,
    add_verify,
    add_window,
    guard,
    ns_text,
    open_trace,
    print_json,
    select,
    window,
)
from softplc.cli.trace._table import TextTable
from softplc.trace import Signal, TraceError, stats
from softplc.trace._analysis import MAX_BINS, text_value

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Adds ``stats`` to the ``softplc trace`` subparsers."""
    q = sub.add_parser("stats", help="min/max/mean, toggles, execution-time histogram")
    q.add_argument("file", metavar="FILE")
    add_signals(q)
    add_window(q)
    q.add_argument("--bins", type=int, default=10, help="histogram bins (default 10)")
    add_verify(q)
    add_json(q)
    q.set_defaults(func=guard(run))


def _fmt(s: Signal, v: Any) -> str:
    if v is None:
        return "-"
    if s.is_time:
        return ns_text(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def run(args: argparse.Namespace) -> int:
    """Prints :func:`softplc.trace.stats` of the window."""
    if not 1 <= args.bins <= MAX_BINS:
        raise TraceError(f"--bins must be from 1 to {MAX_BINS} (got {args.bins})")
    tr = open_trace(args.file, verify=args.verify)
    sigs = select(tr, args.signals, timing=False)
    d = stats(tr, signals=sigs, rows=window(tr, args), bins=args.bins)
    if args.json:
        print_json(d)
        return 0
    table = TextTable(
        [
            ("signal", "<"),
            ("type", "<"),
            ("min", ">"),
            ("max", ">"),
            ("mean", ">"),
            ("std", ">"),
            ("changes", ">"),
            ("edges up/down", ">"),
        ]
    )
    for s, r in zip(sigs, d["signals"], strict=False):
        if r["rows"] == 0:
            table.add_row(s.name, s.type, "-", "-", "-", "-", "0", "")
            continue
        edges = f"{r['rising']}/{r['falling']}" if s.is_bool else ""
        mean = f"{r['true_fraction']:.3f}" if s.is_bool else _fmt(s, r["mean"])
        std = "" if s.is_bool else _fmt(s, r["std"])
        mn = text_value(s, r["min"]) if s.is_bool else _fmt(s, r["min"])
        mx = text_value(s, r["max"]) if s.is_bool else _fmt(s, r["max"])
        table.add_row(s.name, s.type, mn, mx, mean, std, r["changes"], edges)
    table.print()
    for name, h in d["exec_time_histogram_ns"].items():
        lines = [f"\nexecution time of task {name} ({d['exec_time_cycles'][name]} cycles):"]
        counts, edges = h["counts"], h["edges"]
        peak = max(counts) if counts else 0
        for k, n in enumerate(counts):
            bar = "#" * (round(40 * n / peak) if peak else 0)
            lines.append(f"  {ns_text(edges[k]):>9} - {ns_text(edges[k + 1]):>9} {n:>8} {bar}")
        print("\n".join(lines))
    return 0
