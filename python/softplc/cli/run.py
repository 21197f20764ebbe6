"""``softplc run PROGRAM.py``: run a program file on the engine.

Real time by default (sleeping to absolute deadlines, SCHED_FIFO where permitted);
``--virtual`` steps cycles as fast as possible with ``now`` = scheduled time. Shows a
live status line on a terminal, stops cleanly on Ctrl-C, prints a summary (or one JSON
object with ``--json``). Exit status: 0 after a clean run, 2 for a usage or
configuration error, 3 when the engine ended in FAULT.

A real-time runtime that faults keeps running, as a PLC does: outputs stay at their
safe values, the buses and the status stay up, until it is stopped (Ctrl-C,
``--duration``, ``--cycles``). ``--exit-on-fault`` ends the run at the fault instead (for
scripts and CI). A virtual-time run ends at a fault (nothing is left to simulate).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from softplc import io as sio
from softplc.cli import trace as trace_cli
from softplc.control import ControlServer
from softplc.control import paths as control_paths
from softplc.engine import Engine, RealtimeWarning
from softplc.errors import ConfigError
from softplc.loader import ProgramFile, load_program_file
from softplc.online import OnlineLoader
from softplc.replay import replay
from softplc.stimulus import load_stimulus
from softplc.timefmt import format_duration, parse_duration

__all__ = ["cmd_run", "register", "summary_json"]

EXIT_FAULT = 3


def register(sub: Any) -> None:
    """Adds the ``run`` subcommand."""
    p = sub.add_parser(
        "run",
        help="run a program file",
        description="Run a program file on the scan-cycle engine.",
    )
    p.add_argument("program", metavar="PROGRAM.py", help="program file")
    p.add_argument("--cycle", default="10ms", help="period of the default task (default 10ms)")
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("--duration", help="run this long (e.g. 10s); default: until Ctrl-C")
    limit.add_argument("--cycles", type=int, help="run this many cycles of the first task")
    p.add_argument("--virtual", action="store_true", help="virtual time (deterministic, fast)")
    p.add_argument(
        "--priority",
        type=int,
        default=80,
        help="SCHED_FIFO priority of the scan thread, 1-99 (default 80); 0 for the normal "
        "scheduler",
    )
    p.add_argument("--watchdog", help="watchdog limit per cycle for every task (e.g. 5ms)")
    p.add_argument(
        "--watchdog-tolerance", type=int, default=0, help="consecutive breaches tolerated"
    )
    p.add_argument(
        "--overrun",
        default="skip",
        choices=["skip", "catch-up", "fault"],
        help="overrun policy (default skip)",
    )
    p.add_argument("--reference", action="store_true", help="run @program classes as Python")
    p.add_argument(
        "--exit-on-fault",
        action="store_true",
        help="end the run when the engine faults (default: keep running with safe outputs, "
        "serving the buses, until stopped)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON summary object")
    _register_extensions(p)
    p.set_defaults(func=cmd_run)


# -- optional extensions (tracing, stimulus, fieldbus I/O) ------------------------------


def _register_extensions(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--name",
        help="the runtime's name for `softplc ps/status/watch ...` (default: the program "
        "file's name without .py)",
    )
    p.add_argument(
        "--control-tcp",
        metavar="HOST:PORT",
        help="also serve the control channel on TCP (with a token; loopback unless told)",
    )
    p.add_argument(
        "--no-control", action="store_true", help="no control channel (no socket at all)"
    )
    p.add_argument(
        "--retain-dir",
        metavar="DIR",
        help="where retained variables are kept (default: $XDG_STATE_HOME/softplc or "
        "~/.local/state/softplc), in <name>.retain.0 and .1",
    )
    p.add_argument(
        "--retain-cadence", default="1s", help="how often retained values are stored (1s)"
    )
    level = p.add_mutually_exclusive_group()
    level.add_argument(
        "--cold", action="store_true", help="cold restart: retain variables start afresh"
    )
    level.add_argument(
        "--origin",
        action="store_true",
        help="origin reset: retain and persistent variables start afresh (files cleared)",
    )
    p.add_argument(
        "--stimulus",
        metavar="CSV",
        help="drive inputs and setpoints from a CSV file, timed or one row per cycle (virtual)",
    )
    p.add_argument(
        "--replay",
        metavar="TRACE",
        help="replay a recorded run's inputs in virtual time (every cycle of the capture)",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="with --replay: compare the outputs with the recorded ones; exit 1 at the "
        "first divergence",
    )
    p.add_argument(
        "--tol", type=float, default=0.0, help="with --compare: tolerance for REAL outputs"
    )
    trace_cli.add_run_options(p)
    p.add_argument("--io", metavar="FILE.toml", help="fieldbus I/O configuration")
    p.add_argument("--modbus-server", metavar="HOST:PORT", help="serve the image over Modbus TCP")
    p.add_argument(
        "--opcua",
        metavar="URL",
        help="serve the image over OPC UA (opc.tcp://127.0.0.1:4840; loopback, anonymous; "
        "other addresses need a [server.opcua] table in --io)",
    )
    p.add_argument(
        "--modbus-read-only",
        metavar="TABLE",
        action="append",
        default=[],
        help="a table Modbus clients may not write (coil, holding_register); repeatable",
    )
    p.add_argument(
        "--modbus-allow",
        metavar="NET",
        action="append",
        default=[],
        help="a client address or network allowed to connect (10.0.0.0/8); repeatable; "
        "default: every client",
    )
    _register_xgt_options(p)


def _register_xgt_options(p: argparse.ArgumentParser) -> None:
    """The XGT server's options (LS Electric's dedicated protocol)."""
    p.add_argument(
        "--xgt-server",
        metavar="HOST:PORT",
        help="answer as an LS Electric XGT PLC (FEnet) on HOST:PORT, default map",
    )
    p.add_argument(
        "--xgt-cpu",
        metavar="CPU",
        default="XGI",
        help="the CPU type the XGT server answers as: XGK, XGI, XGR, XGB-MK or XGB-IEC "
        "(default XGI)",
    )


# -- engine set-up --------------------------------------------------------------------


def _build_engine(pf: ProgramFile, args: argparse.Namespace) -> Engine:
    """The options as library arguments (errors name the option): the engine itself is
    built by :meth:`ProgramFile.build_engine`."""
    cycle = parse_duration(args.cycle, what="--cycle")
    if cycle <= 0:
        raise ConfigError(f"--cycle must be greater than 0 (got {args.cycle!r})")
    if not args.virtual and not 0 <= args.priority <= 99:
        raise ConfigError(f"--priority must be 0..99 (got {args.priority})")
    return pf.build_engine(
        clock="virtual" if args.virtual else "real",
        cycle=cycle,
        # 0 asks for the normal scheduler; virtual time never sets one up.
        priority=None if args.virtual or args.priority == 0 else args.priority,
        watchdog=args.watchdog,
        watchdog_tolerance=args.watchdog_tolerance,
        overrun=args.overrun,
        mode="reference" if args.reference else "auto",
        drivers=sio.build_drivers(
            io=args.io,
            modbus_server=args.modbus_server,
            modbus_allow=_split(args.modbus_allow),
            modbus_read_only=_split(args.modbus_read_only),
            xgt_server=args.xgt_server,
            xgt_cpu=args.xgt_cpu,
            opcua=args.opcua,
        ),
    )


def _state_dir() -> Path:
    """Where runtimes keep state between runs (retained variables)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "softplc"


def _report_retain(engine: Engine) -> None:
    """One line per thing a user should know about the retained values at start."""
    st = engine.retain_status()
    if not st or not st["enabled"]:
        return
    r = st["report"]
    for w in r["warnings"]:
        print(f"softplc: retain: {w}", file=sys.stderr)
    if r["restored"]:
        print(
            f"softplc: retain: {len(r['restored'])} values restored ({r['level']} start, "
            f"slot {r['loaded_seq']})",
            file=sys.stderr,
        )
    if r["loaded_seq"]:
        for name, why in r["reset"]:
            print(f"softplc: retain: {name} starts from its initial value: {why}", file=sys.stderr)
    for name in r["dropped"]:
        print(
            f"softplc: retain: {name} is in the retain file but no longer declared: dropped",
            file=sys.stderr,
        )


def _split(values: list[str]) -> list[str]:
    """Repeated and comma-separated option values, in order."""
    return [v.strip() for text in values for v in text.split(",") if v.strip()]


# -- the run --------------------------------------------------------------------------


def _pct_us(p: dict[str, Any]) -> dict[str, float]:
    return {
        "p50": p["p50_ns"] / 1e3,
        "p99": p["p99_ns"] / 1e3,
        "p999": p["p999_ns"] / 1e3,
        "max": p["max_ns"] / 1e3,
    }


def summary_json(engine: Engine, elapsed_s: float, *, state: str | None = None) -> dict[str, Any]:
    """The ``--json`` summary: first-task figures at the top, every task under
    ``tasks``.

    Figures are :meth:`Engine.stats` in microseconds: ``latency_us.p50`` is
    ``stats()[i]["latency"]["p50_ns"] / 1000`` (the unit moves from each key to the
    parent key; README, "The Python API")."""
    tasks = []
    for t in engine.stats():
        tasks.append(
            {
                "name": t["name"],
                "period_ns": t["period_ns"],
                "cycles": t["cycles"],
                "overruns": t["overruns"],
                "missed": t["missed"],
                "latency_us": _pct_us(t["latency"]),
                "exec_us": _pct_us(t["exec"]),
                "period_us": _pct_us(t["period"]),
                "programs": [{"name": n, "kind": k} for n, k in t["programs"]],
            }
        )
    first = tasks[0]
    st = engine.status()
    return {
        # The state the run ended in (close() then stops the engine in any case).
        "state": state or st["state"],
        "clock": st["clock"],
        "cycles": first["cycles"],
        "overruns": sum(t["overruns"] for t in tasks),
        "latency_us": first["latency_us"],
        "exec_us": first["exec_us"],
        "period_us": first["period_us"],
        "elapsed_s": round(elapsed_s, 6),
        "tasks": tasks,
        "programs": st["programs"],
        "fault": st["fault"],
        "realtime": st["realtime"],
        "forced": st["forced"],
    }


def _status_line(engine: Engine) -> str:
    t = engine.stats()[0]
    lat = t["latency"]
    return (
        f"{engine.state:<5} cycles {t['cycles']:>10}  latency p50 {lat['p50_ns'] / 1e3:7.1f} us"
        f"  p99 {lat['p99_ns'] / 1e3:7.1f} us  max {lat['max_ns'] / 1e3:8.1f} us"
        f"  overruns {sum(x['overruns'] for x in engine.stats())}"
    )


def _print_summary(engine: Engine, pf: ProgramFile, elapsed_s: float, state: str) -> None:
    out = sys.stdout
    js = summary_json(engine, elapsed_s, state=state)
    clock = "virtual time" if js["clock"] == "virtual" else "real time"
    print(
        f"softplc: {pf.path} ran {js['cycles']} cycles in {elapsed_s:.2f} s ({clock}), "
        f"state {js['state']}",
        file=out,
    )
    for p in js["programs"]:
        print(f"  program {p['name']}: {p['mode']} in task {p['task']}", file=out)
    for t in js["tasks"]:
        print(
            f"  task {t['name']}: period {format_duration(t['period_ns'])}, "
            f"{t['cycles']} cycles, {t['overruns']} overruns",
            file=out,
        )
        print(f"    {'(us)':<8} {'p50':>9} {'p99':>9} {'p99.9':>9} {'max':>9}", file=out)
        for key, label in (("latency_us", "latency"), ("exec_us", "exec"), ("period_us", "period")):
            v = t[key]
            print(
                f"    {label:<8} {v['p50']:9.1f} {v['p99']:9.1f} {v['p999']:9.1f} {v['max']:9.1f}",
                file=out,
            )
    rt = js["realtime"]
    if rt is not None:
        parts = []
        parts.append(f"SCHED_FIFO {rt['priority']}" if rt["priority"] else "normal scheduler")
        if rt["memory_locked"]:
            parts.append("memory locked")
        if rt["cpu"] is not None:
            parts.append(f"CPU {rt['cpu']}")
        deg = " (degraded)" if rt["degraded"] else ""
        print(f"  real-time: {', '.join(parts)}{deg}", file=out)
    if js["fault"]:
        f = js["fault"]
        print(f"  FAULT: {f['kind']} in task {f['task']} ({f['source']}) at cycle {f['cycle']}:")
        for line in str(f["message"]).splitlines():
            print(f"    {line}", file=out)


def _stop_on_sigterm() -> None:
    """SIGTERM (how service managers such as systemd stop a process) stops a run the way
    Ctrl-C does: outputs to their safe values, retained values saved, the summary
    printed. Without this, SIGTERM would end the process on the spot."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def cmd_run(args: argparse.Namespace) -> int:
    """Runs ``softplc run``."""
    _stop_on_sigterm()
    if args.replay:
        return _run_replay(args)
    if args.compare:
        raise ConfigError("--compare needs --replay TRACE")
    if args.cycles is not None and args.cycles < 0:
        raise ConfigError(f"--cycles must not be negative (got {args.cycles})")
    duration = None
    if args.duration is not None:
        duration = parse_duration(args.duration, what="--duration")
        if duration < 0:
            raise ConfigError(f"--duration must not be negative (got {args.duration!r})")
    if args.virtual and duration is None and args.cycles is None:
        raise ConfigError("--virtual needs --cycles N or --duration T")
    if args.stimulus and not args.virtual:
        raise ConfigError("--stimulus needs --virtual")
    if args.stimulus and args.cycles is None:
        raise ConfigError("--stimulus needs --cycles N")
    if args.trace_decimate < 1:
        raise ConfigError(f"--trace-decimate must be >= 1 (got {args.trace_decimate})")
    pf = load_program_file(args.program)
    stimulus = load_stimulus(args.stimulus) if args.stimulus else None
    engine = _build_engine(pf, args)
    tracer = None
    control = None
    elapsed = 0.0
    final_state = "STOP"
    try:
        if not args.no_control:
            # Claims the name before anything starts: a name already running is an
            # error with nothing left half-started.
            control = ControlServer(
                engine,
                name=args.name or control_paths.name_from(pf.path.stem),
                # The default name may take a suffix (a second run of one file); a name
                # given must be free.
                exact_name=args.name is not None,
                program=str(pf.path.resolve()),
                tcp=args.control_tcp,
            )
        engine.set_retain(
            args.retain_dir or _state_dir(),
            name=control.name
            if control is not None
            else control_paths.name_from(args.name or pf.path.stem),
            cadence=args.retain_cadence,
            restart="origin" if args.origin else ("cold" if args.cold else "warm"),
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RealtimeWarning)
            engine.start()
        for w in caught:
            print(f"softplc: warning: {w.message}", file=sys.stderr)
        _report_retain(engine)
        t0 = time.monotonic()
        live = sys.stdout.isatty() and not args.json
        ended_in_run = False
        try:
            # From here on Ctrl-C is a clean stop with a summary, even during set-up.
            if control is not None:
                control.online = OnlineLoader(
                    engine, pf, mode="reference" if args.reference else "auto"
                )
                control.start()
            if stimulus is not None:
                stimulus.bind(engine)
            if args.trace:
                tracer = trace_cli.start_from_args(engine, args, program_path=str(pf.path))
            if args.virtual:
                _run_virtual(engine, args, duration, stimulus, live)
            else:
                ended_in_run = _run_real(engine, args, duration, live)
        except KeyboardInterrupt:
            if live:
                sys.stdout.write("\n")
        elapsed = time.monotonic() - t0
        final_state = "RUN" if ended_in_run and engine.state == "STOP" else engine.state
    finally:
        if control is not None:
            control.close()
        trace = trace_cli.stop_and_report(tracer, quiet=args.json)
        engine.close()
    if engine.state == "FAULT":
        # close() itself faults a scan stuck in a cycle (and makes its outputs safe).
        final_state = "FAULT"
    if args.json:
        extra = {"trace": trace, "name": None if control is None else control.name}
        print(json.dumps({**summary_json(engine, elapsed, state=final_state), **extra}))
    else:
        _print_summary(engine, pf, elapsed, final_state)
    if engine.state == "FAULT" or engine.fault is not None:
        f = engine.fault
        if args.json and f is not None:
            print(f"softplc: FAULT: {f['summary'].splitlines()[0]}", file=sys.stderr)
        return EXIT_FAULT
    return 0


def _run_replay(args: argparse.Namespace) -> int:
    """``--replay``: the capture's inputs, cycle by cycle, in virtual time."""
    for opt in ("io", "modbus_server", "stimulus", "cycles", "duration"):
        if getattr(args, opt, None):
            flag = "--" + opt.replace("_", "-")
            raise ConfigError(f"{flag} does not go with --replay (the capture sets the run)")
    result = replay(
        args.program,
        args.replay,
        mode="reference" if args.reference else "auto",
        compare=args.compare,
        tol=args.tol,
        trace=args.trace,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "capture": result.capture,
                    "cycles": result.cycles,
                    "same": result.same,
                    "divergences": [d.__dict__ for d in result.divergences],
                }
            )
        )
    elif args.compare:
        print(result.text)
    else:
        print(f"softplc: replayed {result.cycles} cycles of {result.capture}")
    return 1 if args.compare and not result.same else 0


def _run_real(engine: Engine, args: argparse.Namespace, duration: int | None, live: bool) -> bool:
    """Runs until the duration, the cycle count or Ctrl-C (or a fault, with
    ``--exit-on-fault``); True when the scan itself ended after ``--cycles`` (in RUN: its
    last cycle only made outputs safe)."""
    start = time.monotonic_ns()
    if args.cycles is not None:
        # The scan thread itself ends after exactly N cycles.
        engine.native.stop_at_cycle(args.cycles)
    reported = False
    while True:
        left = None if duration is None else duration - (time.monotonic_ns() - start)
        if left is not None and left <= 0:
            break
        step = 200_000_000 if left is None else min(left, 200_000_000)
        why = engine.wait(duration=step, stop_on_fault=args.exit_on_fault)
        if not reported and engine.state == "FAULT":
            # A PLC in FAULT stays up: say so once, and keep serving.
            reported = True
            _report_fault(engine, live, keeps_running=not args.exit_on_fault)
        if live:
            sys.stdout.write("\r" + _status_line(engine))
            sys.stdout.flush()
        if why in ("fault", "stopped"):
            if live:
                sys.stdout.write("\n")
            return why == "stopped"
    if live:
        sys.stdout.write("\n")
    return False


def _report_fault(engine: Engine, live: bool, *, keeps_running: bool) -> None:
    f = engine.fault
    cause = f["summary"].splitlines()[0] if f else "unknown cause"
    tail = (
        "; outputs at their safe values, still running and serving (Ctrl-C to stop)"
        if keeps_running
        else ""
    )
    if live:
        sys.stdout.write("\n")
    print(f"softplc: FAULT: {cause}{tail}", file=sys.stderr, flush=True)


def _run_virtual(
    engine: Engine,
    args: argparse.Namespace,
    duration: int | None,
    stimulus: Any,
    live: bool,
) -> None:
    if args.cycles is None:
        assert duration is not None
        # Duration: every cycle of every task scheduled in it, in slices.
        period = engine.stats()[0]["period_ns"]
        end = duration
        done_ns = 0
        last = time.monotonic()
        while done_ns < end and engine.state != "FAULT":
            step = min(end - done_ns, 1000 * period)
            engine.run_for(step)
            done_ns += step
            if live and time.monotonic() - last > 0.2:
                last = time.monotonic()
                sys.stdout.write("\r" + _status_line(engine))
                sys.stdout.flush()
    else:
        total = args.cycles
        done = 0
        last = time.monotonic()
        # A stimulus plays through softplc.stimulus.Player (as a test bench's play() does):
        # it runs the engine in slices between the changes and writes only changes.
        player = stimulus.player(engine) if stimulus is not None else None
        period = engine.stats()[0]["period_ns"]
        while done < total:
            n = min(1000, total - done)
            if player is not None:
                player.advance(n * period)
            else:
                engine.run_cycles(n)
            done += n
            if engine.state == "FAULT":
                break
            if live and time.monotonic() - last > 0.2:
                last = time.monotonic()
                sys.stdout.write("\r" + _status_line(engine))
                sys.stdout.flush()
    if live:
        sys.stdout.write("\r" + _status_line(engine) + "\n")
