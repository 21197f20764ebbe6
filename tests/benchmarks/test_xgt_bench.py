"""XGT benchmarks (run with ``pytest -m benchmark tests/benchmarks/test_xgt_bench.py -s``).
Figures are printed and written to bench-results/xgt.json; nothing here is a timed
assertion.

(a) Server: individual reads of 16 words over 4 connections from one load client
    (rust/softplc-io/examples/xgt_load.rs), against softplc's own Modbus TCP server
    serving the same 16 registers (FC3 reads of 16, rust/softplc-io/examples/
    modbus_load.rs) in the same run and the same engine. Target: XGT within 0.8x of
    Modbus. The two loads alternate, three rounds each, and the best round of each
    counts (the machine is shared).
(b) Client: round trip per poll of the XGT client against softplc's XGT server, and
    the age of the inputs when the scan reads them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import softplc.io as sio
from softplc import INT, Engine

pytestmark = pytest.mark.benchmark

CONNECTIONS = 4
WORDS = 16
SECONDS = 3
ROUNDS = 3
RELEASE = ROOT / "target" / "release" / "examples"


def loaders() -> tuple[Path, Path]:
    """The Rust load clients, built on demand: a Python client would saturate before
    the servers do."""
    for name in ("modbus_load", "xgt_load"):
        subprocess.run(
            ["cargo", "build", "--release", "-q", "-p", "softplc-io", "--example", name],
            cwd=ROOT,
            check=True,
            timeout=1800,
        )
    return RELEASE / "modbus_load", RELEASE / "xgt_load"


def run_load(cmd: list[str]) -> float:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    fields = dict(kv.split("=") for kv in p.stdout.split())
    assert fields["errors"] == "0", p.stdout
    return float(fields["requests_per_second"])


def served_engine() -> tuple[Engine, int, int]:
    """One engine (1 ms task) with 16 INT outputs %QW0..%QW15, served by both servers:
    Modbus holding registers 0..15 and XGT `%QW0..%QW15` (XGI default map)."""
    e = Engine(clock="real", cycle="1ms")
    for i in range(WORDS):
        e.declare(f"b.w{i}", "output", INT, f"%QW{i}")
    e.add_task("main", period="1ms")
    modbus, xgt = sio.attach(e, modbus_server="127.0.0.1:0", xgt_server="127.0.0.1:0")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e.start()
    assert modbus.address is not None and xgt.address is not None
    return e, modbus.address[1], xgt.address[1]


def test_xgt_server_throughput_against_the_modbus_server():
    modbus_load, xgt_load = loaders()
    e, modbus_port, xgt_port = served_engine()
    rounds: dict[str, list[float]] = {"modbus": [], "xgt": []}
    try:
        e.wait(duration="300ms")
        for _ in range(ROUNDS):
            rounds["modbus"].append(
                run_load(
                    [str(modbus_load), str(modbus_port), str(CONNECTIONS), str(SECONDS), str(WORDS)]
                )
            )
            rounds["xgt"].append(
                run_load([str(xgt_load), str(xgt_port), str(CONNECTIONS), str(SECONDS), str(WORDS)])
            )
        overruns = e.stats()[0]["overruns"]
    finally:
        e.close()
    best = {k: max(v) for k, v in rounds.items()}
    results: dict[str, Any] = {
        "connections": CONNECTIONS,
        "words": WORDS,
        "seconds": SECONDS,
        "rounds": rounds,
        "modbus_rps": best["modbus"],
        "xgt_rps": best["xgt"],
        "xgt_over_modbus": best["xgt"] / best["modbus"],
        "target": 0.8,
        "overruns": overruns,
    }
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "xgt_server.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def test_xgt_client_round_trip_and_input_age():
    results: dict[str, Any] = {}
    server, _, port = served_engine()
    try:
        for poll_ms in (10, 50):
            toml = (
                f'[[device]]\nname = "plc"\nprotocol = "xgt"\nhost = "127.0.0.1"\nport = {port}\n'
                f'cpu = "XGI"\npoll_ms = {poll_ms}\ntimeout_ms = 500\n'
                '[[device.read]]\nvar = "a.v"\naddress = "%QW0"\n'
            )
            path = ROOT / "bench-results" / "xgt_client.toml"
            path.parent.mkdir(exist_ok=True)
            path.write_text(toml)
            e = Engine(clock="real", cycle="1ms")
            e.declare("a.v", "input", INT, "%IW0")
            e.add_task("main", period="1ms")
            (drv,) = sio.attach(e, io=path)
            try:
                e.start()
                e.wait(duration="300ms")
                ages = []
                end = time.monotonic() + 2.0
                while time.monotonic() < end:
                    e.wait(cycles=1)
                    ages.append(e.age_ns("a.v") / 1e6)
                ages.sort()
                st = drv.status()["devices"]["plc"]
                results[f"poll{poll_ms}ms"] = {
                    "rtt_mean_us": st["rtt_mean_us"],
                    "rtt_min_us": st["rtt_min_us"],
                    "rtt_max_us": st["rtt_max_us"],
                    "polls": st["polls_ok"],
                    "age_ms_p50": ages[len(ages) // 2],
                    "age_ms_p99": ages[int(len(ages) * 0.99)],
                    "age_ms_max": ages[-1],
                    "target_ms": poll_ms + 1,
                }
            finally:
                e.close()
    finally:
        server.close()
    (ROOT / "bench-results" / "xgt_client.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
