"""Jitter benchmark: wake latency at a 1 ms period, side by side in one run.

Measures, one after the other on the same CPU at the same SCHED_FIFO priority:
  1. cyclictest (Debian's rt-tests), the reference for what the machine can do;
  2. the softplc engine running programs/blink.py (compiled when available);
  3. a plain Python loop sleeping to absolute deadlines with time.sleep.
Prints p50/p99/p99.9/max wake latency (us) for each and the ratios against the targets:
engine p99 <= 1.5 x cyclictest p99, engine p99 <= 0.3 x Python p99, zero overruns.

Usage: python benches/jitter.py [--seconds 60] [--priority 80] [--cpu 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def pct(lat_us: np.ndarray) -> dict[str, float]:
    return {
        "p50": float(np.percentile(lat_us, 50)),
        "p99": float(np.percentile(lat_us, 99)),
        "p999": float(np.percentile(lat_us, 99.9)),
        "max": float(lat_us.max()),
        "samples": int(lat_us.size),
        # Wake-ups more than one period late: a cycle lost whatever the program does.
        "late_over_period": int((lat_us >= 1000).sum()),
    }


def run_cyclictest(seconds: int, prio: int, cpu: int) -> dict[str, float]:
    exe = shutil.which("cyclictest")
    if exe is None:
        raise SystemExit("cyclictest not found: apt-get install rt-tests")
    with tempfile.NamedTemporaryFile(suffix=".hist") as f:
        cmd = [exe, "-m", "-q", "-p", str(prio), "-i", "1000", "-a", str(cpu),
               "-D", f"{seconds}s", "-h", "20000", f"--histfile={f.name}"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        text = Path(f.name).read_text()
    counts = []
    for line in text.splitlines():
        m = re.match(r"^(\d+)\s+(\d+)", line)
        if m:
            counts.append((int(m.group(1)), int(m.group(2))))
    mx = re.search(r"# Max Latencies:\s+(\d+)", text)
    over = re.search(r"# Histogram Overflows:\s+(\d+)", text)
    samples = np.repeat([c[0] for c in counts], [c[1] for c in counts]).astype(float)
    res = pct(samples)
    if mx:
        res["max"] = float(mx.group(1))
    if over:
        res["late_over_period"] += int(over.group(1))
    return res


def run_engine(seconds: int, prio: int, cpu: int, mode: str) -> dict[str, float]:
    code = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from softplc import Engine
from softplc.loader import load_program_file
pf = load_program_file({str(ROOT / "programs" / "blink.py")!r})
e = Engine(clock="real", cycle="1ms", priority={prio}, cpu={cpu})
name = e.add_program(pf.programs[0], mode={mode!r})
e.start()
e.run_for("1s")
e.reset_stats()
e.run_for("{seconds}s")
st = e.stats()[0]
mode = e.status()["programs"][0]["mode"]
rt = e.status()["realtime"]
e.close()
print(json.dumps({{"stats": st, "mode": mode, "rt": rt}}))
"""
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True,
                         capture_output=True, text=True)  # fmt: skip
    js = json.loads(out.stdout.strip().splitlines()[-1])
    lat = js["stats"]["latency"]
    return {
        "p50": lat["p50_ns"] / 1e3,
        "p99": lat["p99_ns"] / 1e3,
        "p999": lat["p999_ns"] / 1e3,
        "max": lat["max_ns"] / 1e3,
        "samples": lat["count"],
        "overruns": js["stats"]["overruns"],
        "late_over_period": js["stats"]["missed"],
        "cycles": js["stats"]["cycles"],
        "mode": js["mode"],
        "realtime": js["rt"],
    }


def run_python_loop(seconds: int, prio: int, cpu: int) -> dict[str, float]:
    code = f"""
import os, time, sys
import numpy as np
os.sched_setaffinity(0, {{{cpu}}})
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param({prio}))
period = 1_000_000
n = {seconds} * 1000
lat = np.empty(n, dtype=np.int64)
nxt = time.monotonic_ns() + period
for i in range(n):
    d = nxt - time.monotonic_ns()
    if d > 0:
        time.sleep(d / 1e9)
    lat[i] = time.monotonic_ns() - nxt
    nxt += period
np.save(sys.argv[1], lat)
"""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "lat.npy")
        subprocess.run([sys.executable, "-c", code, out], check=True)
        lat = np.load(out) / 1e3
    return pct(lat)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--priority", type=int, default=80)
    ap.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument(
        "--mode",
        default="auto",
        choices=["auto", "compiled", "reference"],
        help="how the engine runs blink (default: compiled when available)",
    )
    args = ap.parse_args()
    print(f"jitter benchmark: 1 ms period, {args.seconds} s each, SCHED_FIFO {args.priority}, "
          f"CPU {args.cpu}", flush=True)  # fmt: skip
    t0 = time.time()
    results = {
        "cyclictest": run_cyclictest(args.seconds, args.priority, args.cpu),
        "engine": run_engine(args.seconds, args.priority, args.cpu, args.mode),
        "python": run_python_loop(args.seconds, args.priority, args.cpu),
    }
    print(f"\n{'wake latency (us)':<26}{'p50':>9}{'p99':>9}{'p99.9':>9}{'max':>10}{'samples':>10}"
          f"{'>1 period':>11}")  # fmt: skip
    for k, r in results.items():
        label = k if k != "engine" else f"engine (blink, {r['mode']})"
        print(f"{label:<26}{r['p50']:9.1f}{r['p99']:9.1f}{r['p999']:9.1f}{r['max']:10.1f}"
              f"{r['samples']:10d}{r['late_over_period']:11d}")  # fmt: skip
    eng, ct, py = results["engine"], results["cyclictest"], results["python"]
    r_ct = eng["p99"] / ct["p99"] if ct["p99"] else float("inf")
    r_py = eng["p99"] / py["p99"] if py["p99"] else float("inf")
    print(f"\nengine p99 / cyclictest p99 = {r_ct:.2f}   (target <= 1.5)  "
          f"{'OK' if r_ct <= 1.5 else 'MISSED'}")  # fmt: skip
    print(f"engine p99 / python p99     = {r_py:.2f}   (target <= 0.3)  "
          f"{'OK' if r_py <= 0.3 else 'MISSED'}")  # fmt: skip
    print(f"engine overruns in {args.seconds} s  = {eng['overruns']}      (target 0)    "
          f"{'OK' if eng['overruns'] == 0 else 'MISSED'}"
          f"   (cyclictest woke >1 period late {ct['late_over_period']} times)")  # fmt: skip
    print(f"(took {time.time() - t0:.0f} s)")
    results["ratios"] = {"engine_over_cyclictest_p99": r_ct, "engine_over_python_p99": r_py}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
