"""``softplc trace ...``: the trace viewer.

Subcommands: ``info``, ``show``, ``plot``, ``stats``, ``events``, ``export``, ``diff``
and ``trigger``. Every one takes ``--json`` (one JSON object on stdout). A missing,
empty, truncated or foreign file gives one clear line on stderr, never a traceback (so
does any unexpected failure); a file cut short is read up to its last whole block with
a warning. Exit status: 0, 1 when ``diff`` finds a difference, 2 for errors.

This module also offers :func:`add_run_options` and :func:`start_from_args` for
``softplc run --trace FILE``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from softplc.trace import (
    Signal,
    Trace,
    TraceError,
    TraceRecorder,
    TraceWarning,
    load,
    split_patterns,
    start_trace,
)
from softplc.trace import _analysis as an

__all__ = [
    "add_run_options",
    "main",
    "register",
    "start_from_args",
    "trigger_target_problem",
]

EXIT_DIFFERENT = 1
EXIT_ERROR = 2


# -- helpers ---------------------------------------------------------------------------


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    f = sys.stderr if stderr else sys.stdout
    tty = f.isatty()
    return Console(
        file=f,
        highlight=False,
        markup=False,
        emoji=False,
        width=None if tty else 160,
        force_terminal=tty,
        no_color=not tty or "NO_COLOR" in os.environ,
    )


def _open(path: str, *, verify: bool = False) -> Trace:
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


def _time_arg(text: str | None, what: str) -> int | None:
    """A time from the start of the trace: seconds (``1.5``) or with a unit (``250ms``)."""
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        from softplc.timefmt import parse_duration

        try:
            return parse_duration(text, what=what)
        except Exception as e:  # noqa: BLE001 (ConfigError: re-raised as a trace error)
            raise TraceError(str(e)) from None
    if not math.isfinite(v):
        raise TraceError(f"{what}: {text!r} is not a time")
    return round(v * 1e9)


def _window(tr: Trace, args: argparse.Namespace) -> slice:
    lo = _time_arg(getattr(args, "t_from", None), "--from")
    hi = _time_arg(getattr(args, "t_to", None), "--to")
    if lo is not None and hi is not None and hi < lo:
        raise TraceError(f"--to ({args.t_to}) is before --from ({args.t_from})")
    return tr.window(lo, hi)


def _select(tr: Trace, patterns: list[str] | None, *, timing: bool = True) -> list[Signal]:
    sigs = tr.select(split_patterns(patterns), timing=timing)
    if not sigs:
        raise TraceError(f"{tr.path}: no signals to show")
    return sigs


def _json(obj: Any) -> None:
    print(json.dumps(obj, indent=None, default=str))


def _nulls(a: np.ndarray) -> list[float | None]:
    """Floats for JSON, NaN as null."""
    return [None if math.isnan(v) else v for v in a.tolist()]


def _ns(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(float(v))
    sign = "-" if v < 0 else ""
    for unit, size in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if a >= size:
            return f"{sign}{a / size:.4g}{unit}"
    return f"{sign}{a:.4g}ns"


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_signals(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument(
        "-s",
        "--signals",
        action="append",
        required=required,
        metavar="SIG",
        help="signal names or globs, comma-separated or repeated",
    )


def _add_window(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="t_from", metavar="T", help="start (seconds, or 250ms, 1s)")
    p.add_argument("--to", dest="t_to", metavar="T", help="end (seconds, or with a unit)")


# -- info ------------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    tr = _open(args.file, verify=args.verify)
    d = an.info(tr)
    if args.json:
        _json(d)
        return 0
    from rich.table import Table

    c = _console()
    c.print(f"{d['file']}  ({d['size_bytes']} bytes, format {d['format_version']})")
    if not d["complete"]:
        c.print("  INCOMPLETE: " + "; ".join(d["warnings"]))
    prog = d["program"]
    if prog:
        c.print("  program:   " + ", ".join(f"{k}={v}" for k, v in prog.items()))
    c.print(f"  recorded:  {d['created'] or '-'} by softplc {d['engine_version']}")
    if d["engine_state"] or d["clock_ref"]:
        ref = d["clock_ref"] or {}
        clock = f"{ref.get('clock')} clock" if ref else "no clock reference"
        first = f", first row at {d['first_row_utc']}" if d["first_row_utc"] else ""
        c.print(f"  engine:    {d['engine_state'] or '-'} at the start, {clock}{first}")
    if d["meta"]:
        c.print("  meta:      " + ", ".join(f"{k}={v}" for k, v in d["meta"].items()))
    mode = d["mode"]
    if d["trigger"]:
        t = d["trigger"]
        mode += f" on {t.get('condition')} (pre {t.get('pre')}, post {t.get('post')})"
    c.print(f"  mode:      {mode}, every {d['decimate']} cycle(s) of task {d['trace_task']}")
    tasks = ", ".join(f"{t['name']} {_ns(t['period_ns'])}" for t in d["tasks"])
    c.print(f"  tasks:     {tasks}")
    c.print(
        f"  rows:      {d['rows']} in {d['blocks']} blocks, cycles "
        f"{d['first_cycle'] if d['first_cycle'] is not None else '-'}.."
        f"{d['last_cycle'] if d['last_cycle'] is not None else '-'}, "
        f"duration {_ns(d['duration_ns'])} (sample period {_ns(d['sample_period_ns'])})"
    )
    c.print(
        f"  dropped:   {d['dropped_blocks']} blocks ({d['dropped_rows']} rows)"
        + (f" in {len(d['gaps'])} gaps" if d["gaps"] else "")
    )
    ev = ", ".join(f"{k} {v}" for k, v in d["events_by_kind"].items()) or "none"
    lost = d["events_lost"]
    lost_text = "unknown" if lost is None else str(lost)
    c.print(f"  events:    {d['events']} ({ev}), {lost_text} lost")
    if d["mode"] == "triggered":
        c.print(f"  captures:  {d['captures']}, {d['incomplete_captures']} incomplete")
    for f in d["faults"]:
        c.print(f"  fault:     {f.splitlines()[0] if f else '(no text)'}")
    for t in d["triggers"]:
        c.print(
            f"  trigger:   capture {t['capture']} at cycle {t['cycle']}"
            + (" (forced)" if t.get("forced") else "")
            + ("" if t.get("complete", True) else " (incomplete)")
        )
    if d["timing"]:
        tt = Table(title="cycle timing", title_justify="left")
        for col in (
            "task",
            "cycles",
            "wake p50",
            "p99",
            "p99.9",
            "max",
            "exec p50",
            "p99",
            "max",
            "overruns",
        ):
            tt.add_column(col, justify="left" if col == "task" else "right")
        for name, t in d["timing"].items():
            w, e = t["wake_latency"] or {}, t["exec_time"] or {}
            tt.add_row(
                name,
                str(t["cycles_seen"]),
                _ns(w.get("p50_ns")),
                _ns(w.get("p99_ns")),
                _ns(w.get("p999_ns")),
                _ns(w.get("max_ns")),
                _ns(e.get("p50_ns")),
                _ns(e.get("p99_ns")),
                _ns(e.get("max_ns")),
                str(t["overrun_rows"]),
            )
        c.print(tt)
        c.print(f"  overrun events: {d['overrun_events']}")
    st = Table(title=f"{len(d['signals'])} signals", title_justify="left")
    for col in ("name", "type", "unit", "address", "kind"):
        st.add_column(col)
    shown = d["signals"] if args.all or len(d["signals"]) <= 40 else d["signals"][:40]
    for s in shown:
        st.add_row(s["name"], s["type"], s["unit"] or "", s["address"] or "", s["kind"])
    c.print(st)
    if len(shown) < len(d["signals"]):
        c.print(f"  ... {len(d['signals']) - len(shown)} more (--all lists them)")
    return 0


# -- show ------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise TraceError(f"--limit must be 0 (all rows) or more (got {args.limit})")
    tr = _open(args.file)
    sigs = _select(tr, args.signals)
    sl = _window(tr, args)
    cols = [tr.read(s, sl) for s in sigs]
    n = sl.stop - sl.start
    if args.changes_only and n:
        mask = np.zeros(n, dtype=bool)
        for c in cols:
            mask |= an.changes_mask(c)
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
        _json(
            {
                "file": tr.path,
                "signals": [s.as_dict() for s in sigs],
                "rows": [
                    {
                        "cycle": int(cyc[i]),
                        "t": float(t[i]),
                        "gap_before": bool(gaps[i]),
                        "values": {s.name: an.json_value(s, c[i]) for s, c in zip(sigs, cols)},
                    }
                    for i in keep
                ],
                "total_rows": int(total),
                "truncated": bool(total > len(keep)),
                "warnings": tr.warnings,
            }
        )
        return 0
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("cycle", justify="right")
    table.add_column("t [s]", justify="right")
    for s in sigs:
        table.add_column(s.name + (f" [{s.unit}]" if s.unit else ""), justify="right")
    # Gaps up to each row, so a gap between two shown rows is one subtraction.
    gaps_so_far = np.cumsum(gaps)
    for k, i in enumerate(keep):
        if k and gaps_so_far[i] > gaps_so_far[keep[k - 1]]:
            table.add_row("(gap)", "", *("" for _ in sigs))
        table.add_row(
            str(int(cyc[i])),
            f"{t[i]:.6f}",
            *(an.text_value(s, c[i]) for s, c in zip(sigs, cols)),
        )
    c = _console()
    c.print(table)
    if total > len(keep):
        c.print(f"... {total - len(keep)} more rows (--limit 0 shows all)")
    if total == 0:
        c.print("(no rows in this window)")
    return 0


# -- plot ------------------------------------------------------------------------------


def cmd_plot(args: argparse.Namespace) -> int:
    from softplc.trace import _plot

    tr = _open(args.file)
    sigs = _select(tr, args.signals)
    sl = _window(tr, args)
    if args.out:
        _plot.picture_plot(tr, sigs, sl, args.out, title=args.title)
        if args.json:
            _json({"file": tr.path, "out": args.out, "signals": [s.name for s in sigs]})
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
            out.append({"name": s.name, "t": _nulls(x), "values": _nulls(y)})
        _json({"file": tr.path, "series": out})
        return 0
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(_plot.terminal_plot(tr, sigs, sl, width=width, height=height, color=color))
    return 0


# -- stats -----------------------------------------------------------------------------


def cmd_stats(args: argparse.Namespace) -> int:
    tr = _open(args.file)
    sigs = _select(tr, args.signals, timing=False)
    sl = _window(tr, args)
    if args.bins < 1:
        raise TraceError(f"--bins must be at least 1 (got {args.bins})")
    per = [an.signal_stats(tr, s, sl) for s in sigs]
    hist: dict[str, Any] = {}
    cycles: dict[str, int] = {}
    for t in tr.header.get("tasks", []):
        name = str(t.get("name"))
        if f"task:{name}.exec_time" in tr._by_name:
            # One count per cycle of the task seen in the window, not per row: a slow
            # task's cycle shows in many rows, a task without rows yet in none.
            _, _, exe, _ = an.task_cycles(tr, name, sl)
            hist[name] = an.histogram(exe.astype(np.int64), args.bins)
            cycles[name] = len(exe)
    if args.json:
        _json(
            {
                "file": tr.path,
                "signals": per,
                "exec_time_histogram_ns": hist,
                "exec_time_cycles": cycles,
            }
        )
        return 0
    from rich.table import Table

    c = _console()
    table = Table(box=None, pad_edge=False)
    for col in ("signal", "type", "min", "max", "mean", "std", "changes", "edges up/down"):
        table.add_column(col, justify="left" if col in ("signal", "type") else "right")
    for s, d in zip(sigs, per):
        if d["rows"] == 0:
            table.add_row(s.name, s.type, "-", "-", "-", "-", "0", "")
            continue

        def fmt(v: Any, s: Signal = s) -> str:
            if v is None:
                return "-"
            if s.is_time:
                return _ns(v)
            if isinstance(v, float):
                return f"{v:.6g}"
            return str(v)

        edges = f"{d['rising']}/{d['falling']}" if s.is_bool else ""
        mean = f"{d['true_fraction']:.3f}" if s.is_bool else fmt(d["mean"])
        std = "" if s.is_bool else fmt(d["std"])
        mn = an.text_value(s, d["min"]) if s.is_bool else fmt(d["min"])
        mx = an.text_value(s, d["max"]) if s.is_bool else fmt(d["max"])
        table.add_row(s.name, s.type, mn, mx, mean, std, str(d["changes"]), edges)
    c.print(table)
    for name, h in hist.items():
        c.print(f"\nexecution time of task {name} ({cycles[name]} cycles):")
        counts, edges = h["counts"], h["edges"]
        peak = max(counts) if counts else 0
        for k, n in enumerate(counts):
            bar = "#" * (round(40 * n / peak) if peak else 0)
            c.print(f"  {_ns(edges[k]):>9} - {_ns(edges[k + 1]):>9} {n:>8} {bar}")
    return 0


# -- events ----------------------------------------------------------------------------


def cmd_events(args: argparse.Namespace) -> int:
    tr = _open(args.file)
    evs = an.events(tr)
    if args.kind:
        kinds = set(split_patterns(args.kind))
        evs = [e for e in evs if e["kind"] in kinds]
    lost = tr.events_lost
    if args.json:
        _json({"file": tr.path, "events": evs, "events_lost": lost, "warnings": tr.warnings})
        return 0
    from rich.table import Table

    c = _console()
    table = Table(box=None, pad_edge=False)
    for col in ("t [s]", "kind", "task", "a", "b", "text"):
        table.add_column(col, justify="right" if col in ("t [s]", "a", "b") else "left")
    for e in evs:
        text = e["text"].splitlines()[0] if e["text"] else ""
        table.add_row(f"{e['t']:.6f}", e["kind"], e["task"] or "-", str(e["a"]), str(e["b"]), text)
    if evs:
        c.print(table)
    lost_text = "an unknown number of" if lost is None else str(lost)
    c.print(f"{len(evs)} events; {lost_text} lost before they were recorded")
    return 0


# -- export ----------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from softplc.trace import _export

    tr = _open(args.file)
    sigs = _select(tr, args.signals)
    sl = _window(tr, args)
    fmt = args.format or os.path.splitext(args.output)[1].lstrip(".").lower()
    if fmt not in _export.FORMATS:
        raise TraceError(f"unknown export format {fmt!r} (use {', '.join(_export.FORMATS)})")
    console = _console(stderr=True)
    show_bar = not args.json and console.is_terminal and not args.no_progress
    progress_cb: Callable[[int, int], None] | None = None
    bar: Any = None
    if show_bar:
        from rich.progress import Progress

        bar = Progress(console=console, transient=True)
        task = bar.add_task(f"export {fmt}", total=None)

        def progress_cb(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        bar.start()
    extra: dict[str, Any] = {}
    try:
        if fmt == "csv":
            n = _export.export_csv(tr, sigs, args.output, sl, progress_cb)
        elif fmt == "parquet":
            n = _export.export_parquet(tr, sigs, args.output, sl, progress_cb)
        else:
            changes, gtkw = _export.export_vcd(tr, sigs, args.output, sl, progress_cb)
            n = len(range(*sl.indices(tr.rows)))
            extra = {"changes": changes, "gtkw": gtkw}
    finally:
        if bar is not None:
            bar.stop()
    if args.json:
        _json(
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


# -- diff ------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    a = _open(args.a)
    b = _open(args.b)
    d = an.diff(a, b, split_patterns(args.signals), tol=args.tol)
    if args.json:
        _json(d)
    else:
        bad = [r for r in d["signals"] if r["status"] != "same"]
        rows = d["rows"]
        if d["same"]:
            print(f"same: {len(d['signals'])} signals over {rows['common']} rows (tol {args.tol})")
        else:
            print(f"{args.a} and {args.b} differ (tol {args.tol}):")
            for r in bad:
                st = r["status"]
                if st == "differs":
                    f = r["first"]
                    print(
                        f"  {r['name']}: first at cycle {f['cycle']} (t={f['t']:.6f}s): "
                        f"{f['a_text']} vs {f['b_text']}; {r['rows_differing']} rows differ"
                    )
                elif st == "type_differs":
                    print(f"  {r['name']}: type {r['type_a']} vs {r['type_b']}")
                else:
                    print(f"  {r['name']}: missing in {'B' if st == 'missing_in_b' else 'A'}")
            if not rows["a"] == rows["b"] == rows["common"]:
                print(f"  rows: A has {rows['a']}, B has {rows['b']}, {rows['common']} in common")
    return 0 if d["same"] else EXIT_DIFFERENT


# -- trigger ---------------------------------------------------------------------------

#: The signal that forces the trigger of a ``softplc run --trace-trigger`` recording.
TRIGGER_SIGNAL = getattr(signal, "SIGUSR1", None)


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


def cmd_trigger(args: argparse.Namespace) -> int:
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
        _json({"pid": args.pid, "sent": "SIGUSR1"})
    else:
        print(f"trigger sent to process {args.pid}")
    return 0


# -- registration ----------------------------------------------------------------------


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turns every failure into TraceError, which the CLI prints as one line (exit 2):
    the ones a user can cause (unreadable output paths, too little memory) with their
    own message, anything unexpected with its type and message. Broken pipes and
    Ctrl-C pass through (the CLI handles them)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except TraceError:
            raise
        except MemoryError:
            raise TraceError(
                "not enough memory for this trace; select fewer signals (-s)"
            ) from None
        except BrokenPipeError:
            raise
        except OSError as e:
            raise TraceError(f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")) from None
        except Exception as e:
            from softplc.errors import SoftPlcError

            if isinstance(e, SoftPlcError):
                raise
            command = getattr(args, "trace_command", None) or "trace"
            raise TraceError(
                f"softplc trace {command} failed unexpectedly: {type(e).__name__}: {e}"
            ) from None

    return run


def register(subparsers: Any) -> None:
    """Adds ``softplc trace`` and its subcommands to the ``softplc`` parser."""
    p = subparsers.add_parser(
        "trace",
        help="inspect, plot, export and compare trace files",
        description="The trace viewer: inspect, plot, export and compare trace files.",
    )
    sub = p.add_subparsers(dest="trace_command", metavar="SUBCOMMAND")
    sub.required = True

    q = sub.add_parser("info", help="header, signals, duration, timing, drops, events")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--all", action="store_true", help="list every signal")
    q.add_argument("--verify", action="store_true", help="check every block's checksum")
    _add_common(q)
    q.set_defaults(func=_guard(cmd_info))

    q = sub.add_parser("show", help="a table of values over a time window")
    q.add_argument("file", metavar="FILE")
    _add_signals(q, required=True)
    _add_window(q)
    q.add_argument("--changes-only", action="store_true", help="only rows where a value changes")
    q.add_argument(
        "--limit", type=int, default=100, help="rows to print (0: all; default 100; not negative)"
    )
    _add_common(q)
    q.set_defaults(func=_guard(cmd_show))

    q = sub.add_parser("plot", help="plot signals in the terminal or to a picture")
    q.add_argument("file", metavar="FILE")
    _add_signals(q, required=True)
    _add_window(q)
    q.add_argument("--out", metavar="FILE", help="write a picture (.png, .svg, .pdf)")
    q.add_argument("--title", help="picture title")
    q.add_argument("--width", type=int, help="terminal plot width (columns)")
    q.add_argument("--height", type=int, help="terminal plot height (lines)")
    _add_common(q)
    q.set_defaults(func=_guard(cmd_plot))

    q = sub.add_parser("stats", help="min/max/mean, toggles, execution-time histogram")
    q.add_argument("file", metavar="FILE")
    _add_signals(q)
    _add_window(q)
    q.add_argument("--bins", type=int, default=10, help="histogram bins (default 10)")
    _add_common(q)
    q.set_defaults(func=_guard(cmd_stats))

    q = sub.add_parser("events", help="the engine events in a trace (faults, state, ...)")
    q.add_argument("file", metavar="FILE")
    q.add_argument(
        "--kind",
        action="append",
        metavar="KIND",
        help="only these kinds (fault, state, overrun, force, unforce, write, io, info)",
    )
    _add_common(q)
    q.set_defaults(func=_guard(cmd_events))

    q = sub.add_parser("export", help="export to CSV, VCD (+ .gtkw) or Parquet")
    q.add_argument("file", metavar="FILE")
    q.add_argument("-f", "--format", choices=["csv", "vcd", "parquet"], help="default: from -o")
    q.add_argument("-o", "--output", required=True, metavar="OUT", help="output file")
    _add_signals(q)
    _add_window(q)
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_common(q)
    q.set_defaults(func=_guard(cmd_export))

    q = sub.add_parser("diff", help="first divergence per signal; exit 1 when different")
    q.add_argument("a", metavar="A")
    q.add_argument("b", metavar="B")
    q.add_argument("--tol", type=float, default=0.0, help="absolute tolerance (TIME: ns)")
    _add_signals(q)
    _add_common(q)
    q.set_defaults(func=_guard(cmd_diff))

    q = sub.add_parser("trigger", help="force the trigger of a running softplc run --trace")
    q.add_argument("pid", type=int, metavar="PID", help="process id of softplc run")
    q.add_argument(
        "--force",
        action="store_true",
        help="send the signal without checking that PID is softplc run --trace-trigger",
    )
    _add_common(q)
    q.set_defaults(func=_guard(cmd_trigger))


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``softplc trace`` on its own (``python -m softplc.cli.trace info FILE``)."""
    from softplc.errors import SoftPlcError

    parser = argparse.ArgumentParser(prog="softplc")
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    register(sub)
    args = parser.parse_args(["trace", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except SoftPlcError as e:
        print(f"softplc: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return 0


# -- softplc run --trace ----------------------------------------------------------------


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
