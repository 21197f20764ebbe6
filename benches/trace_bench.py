"""Trace benchmark: 1,000 REAL signals at 1 kHz for 60 s, then the viewer on the result.

Runs ``trace_bench`` (benches/src/bin/trace_bench.rs, release build) twice on the
real-time engine: first the same engine and program without the trace (``off``, the
baseline), then with it. The traced run reports cycles lost, blocks dropped, the
scan-thread time the sampler adds per cycle and the file size; the baseline says how
many cycles the machine loses anyway, so the difference is what the trace costs. Then
times ``softplc trace info`` and ``softplc trace export --format parquet`` on the file
(wall clock, in fresh processes). Targets: sampler p99 below 5 us, ``trace info`` below
1 s, no dropped blocks. Figures go to ``bench-results/trace.json``.

Usage: python benches/trace_bench.py [--seconds 60] [--signals 1000] [--period-us 1000]
       [--keep DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "softplc.cli"]
RESULTS = ROOT / "bench-results" / "trace.json"


def build() -> Path:
    """Builds the benchmark binary (release profile) and returns its path."""
    subprocess.run(
        ["cargo", "build", "--release", "-p", "softplc-benches", "--bin", "trace_bench"],
        cwd=ROOT,
        check=True,
    )
    return ROOT / "target" / "release" / "trace_bench"


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return time.perf_counter() - t0, r


def record(
    exe: Path, trace: Path, seconds: float, signals: int, period_us: int, *, off: bool
) -> dict[str, Any]:
    """One run of the benchmark binary; its JSON figures."""
    argv = [str(exe), str(trace), str(seconds), str(signals), str(period_us)]
    r = subprocess.run([*argv, "off"] if off else argv, capture_output=True, text=True, check=True)
    figures: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return figures


def cycles_lost(run: dict[str, Any], period_us: int) -> dict[str, Any]:
    """Cycles the engine should have run in the measured time and did not, with the
    overruns and skipped cycles it counted."""
    expected = int(run["seconds"] * 1e6 / period_us)
    return {
        "expected": expected,
        "run": run["cycles"],
        "lost": max(expected - run["cycles"], 0),
        "overruns": run["overruns"],
        "skipped": run["cycles_skipped"],
    }


def run(seconds: float, signals: int, period_us: int, workdir: Path) -> dict[str, Any]:
    """Records the baseline and the trace, and measures the viewer. Returns every figure."""
    exe = build()
    trace = workdir / "bench.trace"
    baseline = record(exe, workdir / "off.trace", seconds, signals, period_us, off=True)
    traced = record(exe, trace, seconds, signals, period_us, off=False)
    lost_off, lost_on = cycles_lost(baseline, period_us), cycles_lost(traced, period_us)
    figures: dict[str, Any] = {
        "record": traced,
        "baseline": baseline,
        "cycles_lost": {
            "baseline": lost_off,
            "traced": lost_on,
            # What the trace is to blame for: beyond what the same run loses without it.
            "attributable_to_trace": {
                k: lost_on[k] - lost_off[k] for k in ("lost", "overruns", "skipped")
            },
        },
    }
    t_info, r = timed([*CLI, "trace", "info", str(trace), "--json"])
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    info = json.loads(r.stdout)
    # The same command in this process, without the interpreter's start-up and imports.
    from softplc.cli import main as cli_main

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        cli_main(["trace", "info", str(trace), "--json"])
    t_info_inproc = time.perf_counter() - t0
    out = workdir / "bench.parquet"
    t_export, r = timed(
        [*CLI, "trace", "export", str(trace), "--format", "parquet", "-o", str(out), "--json"]
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    figures["viewer"] = {
        "info_s": round(t_info, 3),
        "info_in_process_s": round(t_info_inproc, 3),
        "export_parquet_s": round(t_export, 3),
        "parquet_bytes": out.stat().st_size,
        "info_rows": info["rows"],
        "info_blocks": info["blocks"],
        "info_dropped_blocks": info["dropped_blocks"],
        "trace_wake_latency_p99_ns": info["timing"]["main"]["wake_latency"]["p99_ns"],
    }
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--signals", type=int, default=1000)
    ap.add_argument("--period-us", type=int, default=1000)
    ap.add_argument("--keep", type=Path, help="keep the trace and Parquet files here")
    ap.add_argument(
        "--json", type=Path, default=RESULTS, help=f"write the figures here (default {RESULTS})"
    )
    args = ap.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        figures = run(args.seconds, args.signals, args.period_us, args.keep)
    else:
        with tempfile.TemporaryDirectory() as d:
            figures = run(args.seconds, args.signals, args.period_us, Path(d))
    text = json.dumps(figures, indent=2)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
