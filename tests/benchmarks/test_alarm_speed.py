"""Scan-time benchmark of 256 alarm channels (tests/benchmarks/alarms.py: an array of
structures in the inputs, a user function block per channel, one loop) run with -m
benchmark -s.

Figures: the compile time of the program (target under 2 s), its per-scan time
compiled (VM through the engine) against reference mode (target at least 100x) and
against the hand-written Rust of benches/ (``softplc-benches alarms``, which also
checks that both produce the same outputs; target at most 3x). Printed and written to
bench-results/scan_speed.json (section ``alarms_256``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from softplc import Engine
from softplc.compiler import compile_instance

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
import alarms  # noqa: E402
from test_scan_speed import record  # noqa: E402

pytestmark = pytest.mark.benchmark

CYCLES = 50_000
REFERENCE_CYCLES = 60


def drive(plc, k):
    # The values drift across their limits; a few channels at a time, as a real plant.
    for i in range(k % 8, alarms.CHANNELS, 8):
        plc.write(f"alarms.ch[{i}].value", 10.0 + ((k // 7 + i * 13) % 64) * 1.5)
    plc.write("alarms.ack", k % 50 < 3)


def engine_per_scan_ns(mode, cycles, batch):
    with Engine(clock="virtual", cycle="10ms") as plc:
        plc.add_program(alarms.Alarms(), mode=mode)
        plc.start()
        times = []
        done = 0
        while done < cycles:
            drive(plc, done)
            t0 = time.perf_counter_ns()
            plc.run_cycles(batch)
            times.append((time.perf_counter_ns() - t0) / batch)
            done += batch
        assert plc.state == "RUN"
    return statistics.median(times)


def test_alarm_channels_compiled_vs_reference_vs_hand_written_rust(tmp_path):
    t0 = time.perf_counter()
    ir = compile_instance(alarms.Alarms())
    compile_s = time.perf_counter() - t0
    ir_path = tmp_path / "alarms.ir"
    ir_path.write_bytes(ir)
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "softplc-benches"], cwd=ROOT, check=True
    )
    out = subprocess.run(
        [str(ROOT / "target" / "release" / "softplc-benches"), "alarms", str(ir_path), str(CYCLES)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rust = json.loads(out)
    compiled = engine_per_scan_ns("compiled", CYCLES, 1000)
    reference = engine_per_scan_ns("reference", REFERENCE_CYCLES, 5)
    native, vm = rust["native_median_ns"], rust["vm_median_ns"]
    speedup = reference / compiled  # target: at least 100
    vs_native = compiled / native  # target: at most 3
    print(
        f"\n256 alarm channels, per-scan medians (ns): reference {reference:,.0f} | "
        f"compiled via engine {compiled:,.0f} | VM alone {vm:,} | hand-written Rust "
        f"{native:,}\ncompiled is {speedup:,.0f}x faster than reference (target >= 100x) "
        f"and {vs_native:.2f}x the hand-written Rust (target <= 3x); VM alone/native = "
        f"{vm / native:.2f}x; compile time {compile_s:.2f} s (target < 2 s); outputs "
        f"equal: {rust['outputs_equal']}, {rust['instructions']} instructions"
    )
    record(
        "alarms_256",
        {
            "cycles": CYCLES,
            "reference_cycles": REFERENCE_CYCLES,
            "instructions": rust["instructions"],
            "compile_s": round(compile_s, 3),
            "per_scan_median_ns": {
                "reference": round(reference),
                "compiled_engine": round(compiled),
                "vm_alone": vm,
                "hand_written_rust": native,
            },
            "reference_over_compiled": round(speedup, 1),
            "compiled_over_hand_written_rust": round(vs_native, 3),
            "targets": {
                "reference_over_compiled_min": 100,
                "compiled_over_rust_max": 3.0,
                "compile_s_max": 2.0,
            },
            "targets_met": speedup >= 100 and vs_native <= 3.0 and compile_s < 2.0,
            "outputs_equal": rust["outputs_equal"],
        },
    )
    assert rust["outputs_equal"]
    assert compile_s < 2.0, f"compiling took {compile_s:.2f} s"
    assert speedup >= 100, f"compiled is only {speedup:.0f}x faster than reference"
    assert vs_native <= 3.0, f"compiled through the engine is {vs_native:.2f}x hand-written Rust"
