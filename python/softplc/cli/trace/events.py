"""``softplc trace events FILE``: the engine events in a trace (faults, state, ...)."""

from __future__ import annotations

import argparse
from typing import Any

from softplc.cli.trace._common import add_json, add_verify, guard, open_trace, print_json
from softplc.cli.trace._table import TextTable
from softplc.trace import _analysis, split_patterns

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Adds ``events`` to the ``softplc trace`` subparsers."""
    q = sub.add_parser("events", help="the engine events in a trace (faults, state, ...)")
    q.add_argument("file", metavar="FILE")
    q.add_argument(
        "--kind",
        action="append",
        metavar="KIND",
        help="only these kinds (fault, state, overrun, force, unforce, write, io, info)",
    )
    add_verify(q)
    add_json(q)
    q.set_defaults(func=guard(run))


def run(args: argparse.Namespace) -> int:
    """Prints the events in time order, and how many were lost."""
    tr = open_trace(args.file, verify=args.verify)
    evs = _analysis.events(tr)
    if args.kind:
        kinds = set(split_patterns(args.kind))
        evs = [e for e in evs if e["kind"] in kinds]
    lost = tr.events_lost
    if args.json:
        print_json({"file": tr.path, "events": evs, "events_lost": lost, "warnings": tr.warnings})
        return 0
    table = TextTable(
        [("t [s]", ">"), ("kind", "<"), ("task", "<"), ("a", ">"), ("b", ">"), ("text", "<")]
    )
    for e in evs:
        text = e["text"].splitlines()[0] if e["text"] else ""
        table.add_row(f"{e['t']:.6f}", e["kind"], e["task"] or "-", e["a"], e["b"], text)
    if evs:
        table.print()
    lost_text = "an unknown number of" if lost is None else str(lost)
    print(f"{len(evs)} events; {lost_text} lost before they were recorded")
    return 0
