"""Commands against running runtimes, through their control channel.

``softplc ps`` lists the runtimes of this user; ``softplc status NAME``, ``read``,
``write``, ``force``, ``unforce``, ``stop`` (PLC STOP: outputs safe), ``start`` (RUN),
``reset`` (clear a fault), ``load`` (online change) and ``watch`` (a live table) talk to
one of them. ``NAME`` is the runtime's ``--name`` (the program file's stem by default)
or ``HOST:PORT`` of a TCP control channel (with ``--token``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from softplc.control import Client, list_runtimes
from softplc.errors import ConfigError, ControlError
from softplc.timefmt import format_duration, parse_duration

__all__ = ["register"]


def register(sub: Any) -> None:
    """Adds the control-channel subcommands."""
    p = sub.add_parser("ps", help="list the runtimes running on this machine")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_ps)

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", metavar="NAME", help="runtime name, or HOST:PORT (TCP)")
        p.add_argument("--token", help="token of a TCP control channel")

    p = sub.add_parser("status", help="a running runtime's status")
    target(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("read", help="read variables of a running runtime (one cycle)")
    target(p)
    p.add_argument("vars", nargs="+", metavar="VAR")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_read)

    for verb, what in (("write", "write variables once"), ("force", "force variables")):
        p = sub.add_parser(verb, help=f"{what} (VAR=VALUE ...)")
        target(p)
        p.add_argument("assignments", nargs="+", metavar="VAR=VALUE")
        p.set_defaults(func=cmd_assign, verb=verb)

    p = sub.add_parser("unforce", help="release forces (all without VAR)")
    target(p)
    p.add_argument("vars", nargs="*", metavar="VAR")
    p.set_defaults(func=cmd_unforce)

    for verb, op, what in (
        ("stop", "stop", "enter STOP (outputs safe)"),
        ("start", "run", "enter RUN (from STOP)"),
        ("reset", "clear_fault", "clear a fault (FAULT -> STOP)"),
    ):
        p = sub.add_parser(verb, help=what)
        target(p)
        p.set_defaults(func=cmd_state, op=op)

    p = sub.add_parser("load", help="online change: load a changed program into a runtime")
    p.add_argument("program", nargs="?", metavar="PROGRAM.py")
    p.add_argument("--into", required=True, metavar="NAME", help="the runtime")
    p.add_argument("--token", help="token of a TCP control channel")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--rollback", action="store_true", help="restore the previous program")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("watch", help="a live table of a running runtime's variables")
    target(p)
    p.add_argument(
        "-s", "--signals", action="append", default=[], metavar="GLOB",
        help="variables to watch (glob, repeatable; default: all)",
    )  # fmt: skip
    p.add_argument("--interval", default="200ms", help="refresh interval (default 200ms)")
    p.add_argument("--count", type=int, help="stop after this many updates")
    p.set_defaults(func=cmd_watch)


def _client(args: argparse.Namespace) -> Client:
    return Client(args.name, token=args.token)


def cmd_ps(args: argparse.Namespace) -> int:
    rts = list_runtimes()
    if args.json:
        print(json.dumps([r.__dict__ for r in rts]))
        return 0
    if not rts:
        print("no runtime is running")
        return 0
    print(f"{'NAME':<20} {'PID':>7} {'STATE':<6} {'UP':>10}  PROGRAM")
    for r in rts:
        state = "gone"
        if r.alive:
            try:
                with Client(r.name, timeout=1.0) as c:
                    state = str(c.status()["state"])
            except ControlError:
                state = "?"
        up = format_duration(int((time.time() - r.started_unix) * 1e9) // 10**9 * 10**9)
        print(f"{r.name:<20} {r.pid:>7} {state:<6} {up:>10}  {r.program}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as c:
        st = c.status()
    if args.json:
        print(json.dumps(st, default=str))
        return 0
    print(f"{st['name']} (pid {st['pid']}): {st['state']}, {st['program']}")
    if st.get("fault"):
        print(f"  FAULT: {st['fault']['summary'].splitlines()[0]}")
    for t in st.get("tasks", []):
        lat = t["latency"]
        print(
            f"  task {t['name']}: {t['cycles']} cycles, {t['overruns']} overruns, latency "
            f"p99 {lat['p99_ns'] / 1e3:.1f} us"
        )
    if st.get("forced"):
        print("  forced: " + ", ".join(f"{k}={v}" for k, v in st["forced"].items()))
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    with _client(args) as c:
        sample = c.sample(*args.vars)
    if args.json:
        print(json.dumps(sample))
        return 0
    for name, v in sample["values"].items():
        q = sample["quality"][name]
        extra = "" if q == "good" else f"  ({q})"
        print(f"{name} = {v}{extra}")
    return 0


def _parse_value(text: str) -> Any:
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        return int(t, 0)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        pass
    if t.upper().startswith(("T#", "TIME#")):
        return parse_duration(t, what="value")
    raise ConfigError(f"{text!r} is not a value (true/false, a number or an IEC time)")


def _assignments(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{item!r}: expected VAR=VALUE")
        out[name.strip()] = _parse_value(value)
    return out


def cmd_assign(args: argparse.Namespace) -> int:
    values = _assignments(args.assignments)
    with _client(args) as c:
        if args.verb == "write":
            c.write(**values)
        else:
            for name, v in values.items():
                c.force(name, v)
    return 0


def cmd_unforce(args: argparse.Namespace) -> int:
    with _client(args) as c:
        c.unforce(*args.vars)
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    # The engine applies the request at its next cycle: wait for it to show (bounded).
    expect = {"stop": "STOP", "run": "RUN", "clear_fault": "STOP"}[args.op]
    with _client(args) as c:
        getattr(c, args.op)()
        deadline = time.monotonic() + 2.0
        state = c.status()["state"]
        while state != expect and time.monotonic() < deadline:
            time.sleep(0.01)
            state = c.status()["state"]
    print(f"{args.name}: {state}")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    if not args.rollback and args.program is None:
        raise ConfigError("load needs PROGRAM.py (or --rollback)")
    with Client(args.into, token=args.token, timeout=60.0) as c:
        plan = c.load(args.program, dry_run=args.dry_run, rollback=args.rollback)
    if args.json:
        print(json.dumps(plan))
    else:
        print(plan.get("text", json.dumps(plan, indent=2)))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from rich.live import Live  # the watch table only: not needed by other commands
    from rich.table import Table

    patterns = args.signals or ["*"]
    prev: dict[str, Any] = {}
    n = 0

    def table(u: dict[str, Any]) -> Table:
        t = Table(title=f"{args.name}  cycle {u['cycle']}", expand=False)
        for col in ("variable", "value", "quality", "age", "forced"):
            t.add_column(col)
        for name, v in u["values"].items():
            changed = name in prev and prev[name] != v
            style = "bold yellow" if changed else ""
            q = u["quality"][name]
            t.add_row(
                name,
                f"[{style}]{v}[/]" if style else str(v),
                q if q == "good" else f"[red]{q}[/]",
                format_duration(u["age_ns"][name]),
                "F" if u["forced"][name] else "",
            )
        return t

    with _client(args) as c:
        updates = c.subscribe(patterns, interval=args.interval)
        try:
            with Live(auto_refresh=False, console=None) as live:
                for u in updates:
                    live.update(table(u), refresh=True)
                    prev.update(u["values"])
                    n += 1
                    if args.count is not None and n >= args.count:
                        break
        except KeyboardInterrupt:
            pass
        finally:
            updates.close()
    sys.stdout.flush()
    return 0
