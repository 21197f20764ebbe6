"""Benchmarks of the testing toolkit (run with -m benchmark -s). Figures are printed and
written to bench-results/testing_bench.json.

(a) Stepping speed against pyrung (pure-Python ladder logic, PyPI): the same start/stop
    latch with an on-delay timer, driven from Python one cycle at a time (a one-scan
    press of start every 100 cycles, stop 50 cycles later, the timer's output read every
    cycle) and in bulk. pyrung is installed from PyPI into a virtual environment of its
    own (under the user's cache folder), never into softplc's, and runs in a
    subprocess. Target: the compiled program at least 100x pyrung's scans per second.
(b) A Hypothesis property over 200 examples of 60 s of virtual time each, on the tank
    with its plant model: examples per second, compiled and reference.
(c) Temporal assertions over a 1,000,000-cycle trace with 50 signals: under 1 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import venv
from pathlib import Path

import numpy as np
import pytest
import softplc.trace as st
from hypothesis import HealthCheck, Phase, given, settings
from softplc import Engine
from softplc.loader import load_program_file
from softplc.testing import (
    Bench,
    Recording,
    always,
    eventually,
    mutually_exclusive,
    never,
    responds,
    rose,
    stable_for,
)
from softplc.testing.strategies import levels, pulses, timelines

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "testing_bench.json"
PYRUNG = "pyrung==0.15.2"

pytestmark = pytest.mark.benchmark

PER_CYCLE = 50_000
BULK = 1_000_000
PYRUNG_CYCLES = 20_000

LATCH = """
from softplc import BOOL, TON, Input, Output, ms, program


@program
class Latch:
    start = Input(BOOL)
    stop = Input(BOOL)
    motor = Output(BOOL)
    at_speed = Output(BOOL)
    spin = TON(PT=ms(500))

    def scan(self):
        self.motor = (self.start or self.motor) and not self.stop
        self.spin(IN=self.motor)
        self.at_speed = self.spin.Q
"""

# The same program in pyrung's ladder form, timed the same way.
PYRUNG_SCRIPT = """
import json, sys, time
import pyrung
from pyrung import PLC, Bool, Or, Program, Rung, Timer, on_delay, out

Start, Stop, Motor, AtSpeed = Bool("Start"), Bool("Stop"), Bool("Motor"), Bool("AtSpeed")
with Program() as logic:
    with Rung(Or(Start, Motor), ~Stop):
        out(Motor)
    with Rung(Motor):
        on_delay(Timer[1], preset=500)
    with Rung(Timer[1].Done):
        out(AtSpeed)

n = int(sys.argv[1])
with PLC(logic, dt=0.01) as plc:
    rises, was = 0, False
    t0 = time.perf_counter()
    for k in range(n):
        phase = k % 100  # the same writes as the softplc side (a value holds once set)
        if phase == 0:
            plc.patch({"Start": True})
        elif phase == 1:
            plc.patch({"Start": False})
        elif phase == 80:
            plc.patch({"Stop": True})
        elif phase == 81:
            plc.patch({"Stop": False})
        plc.step()
        now = AtSpeed.value
        rises += now and not was
        was = now
    per_cycle = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    plc.run(n)
    bulk = n / (time.perf_counter() - t0)
print(json.dumps({"version": pyrung.__version__ if hasattr(pyrung, "__version__") else "",
                  "per_cycle": per_cycle, "bulk": bulk, "rises": rises}))
"""


def record(section: str, figures: dict) -> None:
    """Merges ``figures`` under ``section`` into bench-results/testing_bench.json."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = figures
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


def pyrung_python() -> Path:
    """The interpreter of a virtual environment with pyrung, made on first use under
    the user's cache folder (kept for the next run)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    env = cache / "softplc-bench" / PYRUNG.replace("==", "-")
    python = env / "bin" / "python"
    if not python.exists() or subprocess.run([python, "-c", "import pyrung"]).returncode:
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", PYRUNG],
            check=True,
            timeout=600,
        )
    return python


@pytest.fixture(scope="module")
def latch_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "latch.py"
    path.write_text(LATCH)
    return path


def drive(write, step, read, n: int) -> tuple[float, int]:
    """Scans per second of ``n`` cycles driven one at a time (start pressed for one
    scan every 100 cycles, stop 80 cycles later), and how often the motor came up to
    speed (to check that both sides run the same logic: once per 100 cycles)."""
    rises, was = 0, False
    t0 = time.perf_counter()
    for k in range(n):
        phase = k % 100
        if phase == 0:
            write("start", True)
        elif phase == 1:
            write("start", False)
        elif phase == 80:
            write("stop", True)
        elif phase == 81:
            write("stop", False)
        step()
        now = read()
        rises += now and not was
        was = now
    return n / (time.perf_counter() - t0), rises


def test_stepping_speed_against_pyrung(latch_file):
    out = subprocess.run(
        [pyrung_python(), "-c", PYRUNG_SCRIPT, str(PYRUNG_CYCLES)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    peer = json.loads(out.stdout.strip().splitlines()[-1])
    figures: dict[str, float | int | str | None] = {
        "pyrung": PYRUNG,
        "pyrung_per_cycle": round(peer["per_cycle"]),
        "pyrung_bulk": round(peer["bulk"]),
    }
    pf = load_program_file(latch_file)
    mod = pf.module

    # The engine API, compiled: write / run_cycles(1) / read.
    with Engine(clock="virtual", cycle="10ms") as plc:
        plc.add_program(mod.Latch())
        plc.start()
        rate, rises = drive(
            lambda n, v: plc.write(f"latch.{n}", v),
            lambda: plc.run_cycles(1),
            lambda: plc.read("latch.at_speed"),
            PER_CYCLE,
        )
        figures["engine_per_cycle"] = round(rate)
        t0 = time.perf_counter()
        plc.run_cycles(BULK)
        figures["engine_bulk"] = round(BULK / (time.perf_counter() - t0))
    assert rises == PER_CYCLE // 100 and peer["rises"] == PYRUNG_CYCLES // 100, (rises, peer)

    # The bench API (set / step / read), compiled, without and with its trace recording;
    # and the reference mode for scale.
    for mode, rec, cycles in (
        ("compiled", False, PER_CYCLE),
        ("compiled", True, PER_CYCLE),
        ("reference", False, PER_CYCLE // 10),
    ):
        with Bench.from_programs(mod.Latch(), mode=mode, record=rec) as b:
            rate, rises = drive(
                lambda n, v, b=b: b.set({n: v}), b.step, lambda b=b: b["at_speed"], cycles
            )
            key = f"bench_{mode}{'_recording' if rec else ''}"
            figures[f"{key}_per_cycle"] = round(rate)
            t0 = time.perf_counter()
            b.run_cycles(BULK // (10 if mode == "reference" else 1))
            figures[f"{key}_bulk"] = round(
                BULK // (10 if mode == "reference" else 1) / (time.perf_counter() - t0)
            )
        assert rises == cycles // 100

    for key in list(figures):
        if key.endswith(("_per_cycle", "_bulk")) and not key.startswith("pyrung"):
            base = figures["pyrung_per_cycle" if key.endswith("_per_cycle") else "pyrung_bulk"]
            figures[f"{key}_x_pyrung"] = round(float(figures[key]) / float(base), 1)
    print("\n" + json.dumps(figures, indent=2))
    record("stepping_vs_pyrung", figures)
    assert figures["engine_per_cycle_x_pyrung"] >= 100
    assert figures["engine_bulk_x_pyrung"] >= 100
    assert figures["bench_compiled_bulk_x_pyrung"] >= 100


def test_a_hypothesis_property_over_200_examples_of_60_s(tmp_path):
    tank = str(ROOT / "programs" / "tank.py")
    plans = timelines(
        tank,
        duration="60s",
        signals={"enable": pulses(min_hold="1s"), "low_limit": levels(20.0, 45.0)},
    )
    figures = {}
    for mode in ("compiled", "reference"):
        count = [0]

        def make_property(mode: str = mode, count: list[int] = count):
            @settings(
                max_examples=200,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(plans)
            def prop(plan):
                count[0] += 1
                with Bench.from_file(tank, mode=mode) as bench:
                    bench.play(plan)
                    never(bench, "pump and not enable")
                    always(bench, "0 <= level <= 100")

            return prop

        t0 = time.perf_counter()
        make_property()()
        elapsed = time.perf_counter() - t0
        figures[mode] = {
            "examples": count[0],
            "seconds": round(elapsed, 2),
            "examples_per_s": round(count[0] / elapsed, 1),
            "virtual_s_per_s": round(count[0] * 60 / elapsed),
        }
    figures["compiled_over_reference"] = round(
        figures["compiled"]["examples_per_s"] / figures["reference"]["examples_per_s"], 1
    )
    print("\n" + json.dumps(figures, indent=2))
    record("hypothesis_200x60s", figures)
    assert figures["compiled"]["examples"] == 200


def test_temporal_assertions_over_a_million_cycles_and_50_signals(tmp_path):
    n = 1_000_000
    k = np.arange(n)
    variables = {}
    for i in range(25):
        variables[f"plant.b{i}"] = ("BOOL", (k // (50 + 7 * i)) % 2 == 1)
        variables[f"plant.x{i}"] = (
            "REAL",
            (50 + 40 * np.sin(k / (1000 + 13 * i))).astype(np.float32),
        )
    path = tmp_path / "big.trace"
    st.record_arrays(path, variables, period_ns=1_000_000, block_rows=65536)
    timings = {}
    t0 = time.perf_counter()
    rec = Recording.load(path)
    checks = {
        "always": lambda: always(rec, "plant.x0 < 91 and plant.x1 > 9"),
        "never": lambda: never(rec, "plant.x2 > 95"),
        "eventually": lambda: eventually(rec, "plant.b3", within="1s"),
        "responds": lambda: responds(rec, "rose(plant.b0)", "plant.b1 or plant.b2", within="200ms"),
        "stable_for": lambda: stable_for(rec, "plant.b4", "50ms"),
        "mutually_exclusive": lambda: mutually_exclusive(
            rec, "plant.x5 > 95", "plant.x6 < 5", "plant.x7 > 99"
        ),
        "rose": lambda: rose(rec, "plant.b5 and not plant.b6"),
    }
    for name, check in checks.items():
        t = time.perf_counter()
        check()
        timings[name] = round(time.perf_counter() - t, 4)
    total = time.perf_counter() - t0
    figures = {
        "rows": n,
        "signals": 50,
        "seconds_total": round(total, 3),
        "per_assertion_s": timings,
    }
    print("\n" + json.dumps(figures, indent=2))
    record("temporal_1M_x_50", figures)
    assert total < 1.0
