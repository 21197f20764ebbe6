"""OPC UA benchmark (run with ``pytest -m benchmark tests/benchmarks/test_opcua_bench.py
-s``). Figures are printed and written to bench-results/opcua.json; nothing here is a
timed assertion.

1,000 TIME variables change together every 100 ms (each holds the engine time of the
cycle that changed it), served at 100 ms sampling; two clients in their own processes
subscribe to all of them at 100 ms. Reported: the scan's wake latency (1 ms task) with
the two clients against the same run without clients (target: p99 within 1.1x), and
the notification latency from the cycle that changed a value to the client (p50, p99).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import softplc.io as sio
from softplc.loader import load_program_file

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[2]
ITEMS = 1000
SECONDS = 10
CLIENT = Path(__file__).with_name("opcua_bench_client.py")

PROGRAM = f"""
from softplc import ARRAY, TIME, Memory, ms, now, program


@program
class Bench:
    v = Memory(ARRAY(TIME, {ITEMS}))
    last = Memory(TIME)

    def scan(self):
        t = now()
        if t - self.last >= ms(100):
            self.last = t
            for i in range({ITEMS}):
                self.v[i] = t
"""


def latency(e: Any, seconds: float) -> dict[str, float]:
    e.reset_stats()
    e.wait(duration=f"{int(seconds * 1000)}ms")
    s = e.stats()[0]
    lat = s["latency"]
    return {
        "p50_us": lat["p50_ns"] / 1e3,
        "p99_us": lat["p99_ns"] / 1e3,
        "max_us": lat["max_ns"] / 1e3,
        "exec_p99_us": s["exec"]["p99_ns"] / 1e3,
        "overruns": s["overruns"],
    }


# (label, scan priority, CPU the clients are pinned to: None = anywhere). Pinning the
# clients away from the scan's CPU stands for clients on other machines, where an MES
# or a historian runs.
CASES = [
    ("fifo80_clients_on_cpu0", 80, 0),
    ("fifo80", 80, None),
    ("normal", None, None),
]


@pytest.mark.parametrize(("label", "priority", "client_cpu"), CASES, ids=[c[0] for c in CASES])
def test_scan_latency_with_two_subscribed_clients_and_notification_latency(
    tmp_path, label, priority, client_cpu
):
    prog = tmp_path / "bench.py"
    prog.write_text(PROGRAM)
    server = sio.opcua_server("opc.tcp://127.0.0.1:0", sampling="100ms")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = load_program_file(prog).build_engine(
            clock="real", cycle="1ms", priority=priority, drivers=[server]
        )
        e.start()
    results: dict[str, Any] = {
        "items": ITEMS,
        "seconds": SECONDS,
        "priority": priority,
        "client_cpu": client_cpu,
    }
    try:
        assert server.address is not None
        url = f"opc.tcp://127.0.0.1:{server.address[1]}"
        e.wait(duration="500ms")
        results["scan_without_clients"] = latency(e, SECONDS)
        clients = [
            subprocess.Popen(
                [sys.executable, str(CLIENT), url, str(ITEMS), str(SECONDS + 2)],
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=None
                if client_cpu is None
                else lambda: os.sched_setaffinity(0, {client_cpu}),
            )
            for _ in range(2)
        ]
        for c in clients:
            assert c.stdout is not None
            assert c.stdout.readline().strip() == "ready"
        results["scan_with_clients"] = latency(e, SECONDS)
        results["clients"] = []
        for c in clients:
            out, _ = c.communicate(timeout=120)
            results["clients"].append(json.loads(out.strip().splitlines()[-1]))
        # The machine's own noise: the same run again once the clients are gone.
        results["scan_without_clients_after"] = latency(e, SECONDS)
        results["server"] = server.status()
        results["realtime"] = e.status()["realtime"]
    finally:
        e.close()
    a, b = results["scan_without_clients"], results["scan_with_clients"]
    results["latency_ratio_p99"] = b["p99_us"] / max(a["p99_us"], 1e-9)
    after = results["scan_without_clients_after"]
    results["latency_ratio_p99_idle_after_vs_before"] = after["p99_us"] / max(a["p99_us"], 1e-9)
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / f"opcua_{label}.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    time.sleep(0.1)
