"""Record and replay: a real run's trace drives a virtual-time engine, and the outputs
it computes are compared with the recorded ones.

This is how a bug seen on the plant floor becomes a regression test: record the run
(``softplc run PROGRAM.py --io plant.toml --trace capture.trace``: inputs come from the
real devices), then replay it as often as needed, in virtual time, against the program
or a fixed version of it (``softplc run PROGRAM.py --replay capture.trace --compare``).

Each cycle of the replay takes its inputs from the capture's row of the same cycle
(written before the programs run, as a driver would: the variables' write rules, which
bind external writers, do not apply to recorded device data), at the capture's cycle
period. With ``compare``, every output recorded in the capture is compared, row by row,
with what the replayed program computes; the first divergence names the cycle and the
signals. Compare a capture that starts when the program starts: state the program built
up before the capture began (timers, counters) is not in the trace.

Example::

    from softplc.replay import replay
    result = replay("programs/tank.py", "capture.trace")
    if not result.same:
        print(result.text)
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from softplc.errors import ConfigError, TraceError
from softplc.loader import ProgramFile, load_program_file
from softplc.trace import Trace
from softplc.trace import load as load_trace

__all__ = ["Divergence", "ReplayResult", "TracePlant", "replay"]


class TracePlant:
    """A plant model that writes the recorded inputs of each cycle, row by row (the
    simulation driver runs it before the programs); after the last row the last values
    hold."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = [(name, col.tolist()) for name, col in columns.items()]
        self.rows = min((len(c) for _, c in self.columns), default=0)
        self.row = 0

    def step(self, io: Any, dt: float) -> None:
        """Writes row ``row`` into the inputs and moves on."""
        k = min(self.row, self.rows - 1)
        for name, values in self.columns:
            io[name] = values[k]
        self.row += 1


@dataclass(frozen=True)
class Divergence:
    """Where a replayed output first differs from the recording."""

    signal: str
    cycle: int
    recorded: Any
    replayed: Any
    rows_differing: int


@dataclass
class ReplayResult:
    """The outcome of a replay: cycles run and, when compared, the divergences (first
    one per output, earliest first)."""

    capture: str
    cycles: int
    compared: list[str] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """No output differs."""
        return not self.divergences

    @property
    def text(self) -> str:
        """One line, or the first divergence and the signals that differ."""
        if self.same:
            return (
                f"replay of {self.capture}: {self.cycles} cycles, {len(self.compared)} outputs "
                "the same as recorded"
            )
        first = self.divergences[0]
        lines = [
            f"replay of {self.capture}: first divergence at cycle {first.cycle}:",
        ]
        for d in self.divergences:
            if d.cycle != first.cycle:
                continue
            lines.append(f"  {d.signal}: recorded {d.recorded!r}, replayed {d.replayed!r}")
        later = [d for d in self.divergences if d.cycle != first.cycle]
        if later:
            lines.append("  later: " + ", ".join(f"{d.signal} (cycle {d.cycle})" for d in later))
        return "\n".join(lines)


def _check_capture(tr: Trace, path: str) -> None:
    step = int(tr.header.get("decimate") or 1)
    if step != 1:
        raise ConfigError(
            f"{path}: recorded every {step} cycles: a replay needs every cycle's inputs "
            "(record with --trace-decimate 1)"
        )
    if len(tr) and bool(np.any(tr.gap_before())):
        raise ConfigError(f"{path}: the capture has gaps (dropped blocks): cycles are missing")
    if tr.mode != "continuous":
        raise ConfigError(f"{path}: a {tr.mode} capture holds windows, not every cycle")


def replay(
    program: str | os.PathLike[str] | ProgramFile,
    capture: str | os.PathLike[str],
    *,
    mode: str = "auto",
    compare: bool = True,
    tol: float = 0.0,
    trace: str | os.PathLike[str] | None = None,
) -> ReplayResult:
    """Replays ``capture`` into ``program`` in virtual time (see the module docs).

    Args:
        program: the program file (or a loaded one).
        capture: the recorded trace.
        mode: ``auto``/``compiled`` or ``reference``.
        compare: compare the outputs with the recorded ones.
        tol: absolute tolerance for REAL/LREAL outputs.
        trace: also record the replay (every variable) into this trace file.

    Raises:
        ConfigError: the capture does not fit the program (its inputs or outputs are
            missing from it: a trace of another program), or cannot be replayed
            (decimated, with gaps, triggered windows).
    """
    path = os.fspath(capture)
    try:
        tr = load_trace(path)
    except TraceError as e:
        raise ConfigError(str(e)) from None
    _check_capture(tr, path)
    pf = program if isinstance(program, ProgramFile) else load_program_file(Path(program))
    period = tr.cycle_period_ns
    if period <= 0:
        raise ConfigError(f"{path}: the capture does not say its cycle period")
    engine = pf.build_engine(clock="virtual", cycle=period, mode=mode)  # type: ignore[arg-type]
    try:
        preview = engine.native.layout_preview()
        inputs = [v["name"] for v in preview if v["area"] == "input"]
        outputs = [v["name"] for v in preview if v["area"] == "output"]
        missing = [n for n in inputs if n not in tr]
        if compare:
            missing += [n for n in outputs if n not in tr]
        if missing:
            shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
            raise ConfigError(
                f"{path} does not hold {shown}: it is not a trace of {pf.path} (or it was "
                "recorded with --trace-signals that left them out)"
            )
        plant = TracePlant({n: np.asarray(tr[n]) for n in inputs})
        engine.set_plant(plant)
        engine.start()
        rows = len(tr)
        with tempfile.TemporaryDirectory(prefix="softplc-replay-") as tmp:
            # The replay's own outputs, recorded as the capture recorded them.
            out_cols: dict[str, np.ndarray] = {}
            own = Path(trace) if trace is not None else Path(tmp) / "replay.trace"
            if trace is not None or (compare and outputs):
                signals = None if trace is not None else outputs
                engine.start_trace(own, signals=signals)
                engine.run_cycles(rows)
                engine.stop_trace()
                if compare and outputs:
                    with load_trace(own) as mine:
                        out_cols = {n: np.asarray(mine[n]).copy() for n in outputs}
            else:
                engine.run_cycles(rows)
        result = ReplayResult(capture=path, cycles=rows, compared=outputs if compare else [])
        if compare and outputs:
            cycles = np.asarray(tr.cycle)
            divs = []
            for n in outputs:
                rec = np.asarray(tr[n])
                got = out_cols[n][: len(rec)]
                if len(got) < len(rec):
                    raise ConfigError(f"the replay recorded {len(got)} of {len(rec)} rows")
                if rec.dtype.kind == "f" and tol > 0:
                    bad = ~np.isclose(rec, got, atol=tol, rtol=0.0, equal_nan=True)
                else:
                    bad = rec != got
                hits = np.flatnonzero(bad)
                if hits.size:
                    i = int(hits[0])
                    divs.append(
                        Divergence(n, int(cycles[i]), rec[i].item(), got[i].item(), int(hits.size))
                    )
            result.divergences = sorted(divs, key=lambda d: (d.cycle, d.signal))
        return result
    finally:
        engine.close()


def capture_inputs(path: str | Path) -> list[str]:
    """The variables a capture can drive (every recorded signal that is not a timing
    signal)."""
    tr = load_trace(os.fspath(path))
    return [n for n in tr.names if not n.startswith("task:")]
