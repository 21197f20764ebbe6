"""Trace benchmark (``pytest -m benchmark``): 1,000 REAL signals at 1 kHz on the
real-time engine, without the trace (the baseline) and with it, then ``softplc trace
info`` and ``export --format parquet`` on the file. Prints the figures; asserts only
that they are consistent, never a timing."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.benchmark
@pytest.mark.timeout(600)
def test_trace_benchmark_figures(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "trace_bench", ROOT / "benches" / "trace_bench.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    seconds = float(os.environ.get("SOFTPLC_TRACE_BENCH_SECONDS", "60"))
    figures = bench.run(seconds, 1000, 1000, tmp_path)
    print(json.dumps(figures, indent=2))
    rec, viewer, base = figures["record"], figures["viewer"], figures["baseline"]
    assert rec["traced"] is True and base["traced"] is False
    assert base["rows_sampled"] == 0 and base["cycles"] > 0
    lost = figures["cycles_lost"]
    assert lost["attributable_to_trace"]["overruns"] == rec["overruns"] - base["overruns"]
    assert rec["rows_written"] + rec["dropped_rows"] == rec["rows_sampled"]
    assert viewer["info_rows"] == rec["rows_written"]
    assert viewer["info_dropped_blocks"] == rec["dropped_blocks"]
    assert rec["sampler_ns"]["count"] >= rec["rows_sampled"]
