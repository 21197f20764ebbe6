"""``softplc trace info FILE``: header, signals, duration, timing, drops, events."""

from __future__ import annotations

import argparse
from typing import Any

from softplc.cli.trace._common import add_json, add_verify, guard, ns_text, open_trace, print_json
from softplc.cli.trace._table import TextTable, safe
from softplc.trace import _analysis

__all__ = ["register", "run"]

#: Signals listed without ``--all``.
SHOWN_SIGNALS = 40


def register(sub: Any) -> None:
    """Adds ``info`` to the ``softplc trace`` subparsers."""
    q = sub.add_parser("info", help="header, signals, duration, timing, drops, events")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--all", action="store_true", help="list every signal")
    add_verify(q)
    add_json(q)
    q.set_defaults(func=guard(run))


def run(args: argparse.Namespace) -> int:
    """Prints what :func:`softplc.trace._analysis.info` finds."""
    tr = open_trace(args.file, verify=args.verify)
    d = _analysis.info(tr)
    if args.json:
        print_json(d)
        return 0
    out = [f"{safe(d['file'])}  ({d['size_bytes']} bytes, format {d['format_version']})"]
    if not d["complete"]:
        out.append("  INCOMPLETE: " + "; ".join(d["warnings"]))
    prog = d["program"]
    if prog:
        out.append("  program:   " + ", ".join(f"{safe(k)}={safe(v)}" for k, v in prog.items()))
    out.append(f"  recorded:  {d['created'] or '-'} by softplc {safe(d['engine_version'])}")
    if d["engine_state"] or d["clock_ref"]:
        ref = d["clock_ref"] or {}
        clock = f"{safe(ref.get('clock'))} clock" if ref else "no clock reference"
        first = f", first row at {d['first_row_utc']}" if d["first_row_utc"] else ""
        out.append(f"  engine:    {safe(d['engine_state'] or '-')} at the start, {clock}{first}")
    if d["meta"]:
        out.append(
            "  meta:      " + ", ".join(f"{safe(k)}={safe(v)}" for k, v in d["meta"].items())
        )
    mode = safe(d["mode"])
    if d["trigger"]:
        t = d["trigger"]
        mode += (
            f" on {safe(t.get('condition'))} (pre {safe(t.get('pre'))}, post {safe(t.get('post'))})"
        )
    out.append(
        f"  mode:      {mode}, every {d['decimate']} cycle(s) of task {safe(d['trace_task'])}"
    )
    tasks = ", ".join(f"{safe(t['name'])} {ns_text(t['period_ns'])}" for t in d["tasks"])
    out.append(f"  tasks:     {tasks}")
    out.append(
        f"  rows:      {d['rows']} in {d['blocks']} blocks, cycles "
        f"{d['first_cycle'] if d['first_cycle'] is not None else '-'}.."
        f"{d['last_cycle'] if d['last_cycle'] is not None else '-'}, "
        f"duration {ns_text(d['duration_ns'])} (sample period {ns_text(d['sample_period_ns'])})"
    )
    out.append(
        f"  dropped:   {d['dropped_blocks']} blocks ({d['dropped_rows']} rows)"
        + (f" in {len(d['gaps'])} gaps" if d["gaps"] else "")
    )
    ev = ", ".join(f"{safe(k)} {v}" for k, v in d["events_by_kind"].items()) or "none"
    lost = d["events_lost"]
    lost_text = "unknown" if lost is None else str(lost)
    out.append(f"  events:    {d['events']} ({ev}), {lost_text} lost")
    if d["mode"] == "triggered":
        out.append(f"  captures:  {d['captures']}, {d['incomplete_captures']} incomplete")
    for f in d["faults"]:
        out.append(f"  fault:     {safe(f.splitlines()[0]) if f else '(no text)'}")
    for t in d["triggers"]:
        out.append(
            f"  trigger:   capture {t['capture']} at cycle {t['cycle']}"
            + (" (forced)" if t.get("forced") else "")
            + ("" if t.get("complete", True) is not False else " (incomplete)")
        )
    if d["timing"]:
        tt = TextTable(
            [
                ("task", "<"),
                ("cycles", ">"),
                ("wake p50", ">"),
                ("p99", ">"),
                ("p99.9", ">"),
                ("max", ">"),
                ("exec p50", ">"),
                ("p99", ">"),
                ("max", ">"),
                ("overruns", ">"),
            ]
        )
        for name, t in d["timing"].items():
            w, e = t["wake_latency"] or {}, t["exec_time"] or {}
            tt.add_row(
                name,
                t["cycles_seen"],
                ns_text(w.get("p50_ns")),
                ns_text(w.get("p99_ns")),
                ns_text(w.get("p999_ns")),
                ns_text(w.get("max_ns")),
                ns_text(e.get("p50_ns")),
                ns_text(e.get("p99_ns")),
                ns_text(e.get("max_ns")),
                t["overrun_rows"],
            )
        out += ["", "cycle timing:", *tt.lines()]
        out.append(f"  overrun events: {d['overrun_events']}")
    signals = d["signals"]
    shown = signals if args.all or len(signals) <= SHOWN_SIGNALS else signals[:SHOWN_SIGNALS]
    st = TextTable([("name", "<"), ("type", "<"), ("unit", "<"), ("address", "<"), ("kind", "<")])
    for s in shown:
        st.add_row(s["name"], s["type"], s["unit"] or "", s["address"] or "", s["kind"])
    out += ["", f"{len(signals)} signals:", *st.lines()]
    if len(shown) < len(signals):
        out.append(f"  ... {len(signals) - len(shown)} more (--all lists them)")
    print("\n".join(out))
    return 0
