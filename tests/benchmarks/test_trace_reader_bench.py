"""Trace reader benchmark (``pytest -m benchmark``): time and peak memory of ``softplc
trace info`` on each crafted hostile file, against a normal trace of the same size.

Each figure is one child process (``python -m softplc.cli trace info FILE``): wall time
and its peak resident memory (``ru_maxrss`` from ``wait4``), the median time and the
largest peak of three runs. A bare interpreter importing the CLI is measured too, so
the reader's own share can be told from the start-up. Prints the figures as JSON;
asserts only that the runs did what they should (crafted files refused or read, normal
files read), never a timing.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import softplc.trace as st

from tests.unit.trace import crafted

RUNS = 3


#: Starts ``argv`` and reports its exit status, wall time and ``ru_maxrss`` (KiB). A
#: small launcher (``python -S``, a few MiB) forks the command rather than this test
#: process: Linux keeps a process's high-water mark across ``exec``, so a child forked
#: from pytest would report pytest's own size as its peak.
_LAUNCHER = """
import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), time.perf_counter() - t0, usage.ru_maxrss)
"""


def _child(argv: list[str]) -> tuple[int, float, int]:
    """(exit status, seconds, peak resident KiB) of one child process."""
    out = subprocess.run(
        [sys.executable, "-S", "-c", _LAUNCHER, *argv],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), float(out[1]), int(out[2])


def _measure(argv: list[str]) -> dict[str, float | int]:
    runs = [_child(argv) for _ in range(RUNS)]
    codes = {c for c, _, _ in runs}
    assert len(codes) == 1, runs
    return {
        "exit": codes.pop(),
        "seconds": round(statistics.median(s for _, s, _ in runs), 3),
        "peak_rss_mib": round(max(m for _, _, m in runs) / 1024, 1),
    }


def _normal(path: Path, size: int) -> Path:
    """A continuous trace of four REAL signals with timing, about ``size`` bytes."""
    row = 16 + 25 + 4 * 4  # cycle, t_ns; the task's timing; four REAL
    rows = max(size // row, 10)
    for _ in range(4):
        i = np.arange(rows)
        st.record_arrays(
            path,
            {f"plant.v{k}": ("REAL", np.sin(i / (50 + k)).astype(np.float32)) for k in range(4)},
            block_rows=1024,
        )
        got = path.stat().st_size
        if abs(got - size) <= size // 100:
            break
        rows = max(int(rows * size / got), 10)
    return path


@pytest.mark.benchmark
@pytest.mark.timeout(1800)
def test_trace_info_on_crafted_files_against_normal_files_of_the_same_size(tmp_path):
    src = crafted.recorded(tmp_path / "src.trace")
    big = crafted.recorded(tmp_path / "big.trace", rows=4000, block_rows=2000)
    files = {
        "huge_row_count": crafted.huge_row_count(src, tmp_path / "huge.trace"),
        "index_lists_one_block_100000_times": crafted.repeated_index_entries(
            big, tmp_path / "rep.trace"
        ),
        "200000_signals_no_rows": crafted.many_empty_signals(src, tmp_path / "wide.trace"),
        "lying_column_length": crafted.lying_column(src, tmp_path / "lying.trace", 4),
        "flipped_bit": crafted.flipped_bit(src, tmp_path / "flip.trace")[0],
        "every_row_after_a_gap_1e6": crafted.every_row_after_a_gap(
            tmp_path / "gaps.trace", 1_000_000
        ),
    }
    cli = [sys.executable, "-m", "softplc.cli", "trace", "info"]
    figures: dict[str, object] = {
        "runs_per_figure": RUNS,
        "python_import_softplc_cli": _measure([sys.executable, "-c", "import softplc.cli"]),
    }
    results = {}
    for name, path in files.items():
        size = path.stat().st_size
        normal = _normal(tmp_path / f"normal_{name}.trace", size)
        crafted_fig = _measure([*cli, str(path)])
        normal_fig = _measure([*cli, str(normal)])
        no_verify = _measure([*cli, str(path), "--no-verify"])
        results[name] = {
            "size_bytes": size,
            "crafted": crafted_fig,
            "crafted_no_verify": no_verify,
            "normal_size_bytes": normal.stat().st_size,
            "normal": normal_fig,
        }
        assert normal_fig["exit"] == 0
        assert crafted_fig["exit"] in (0, 2)
    figures["info"] = results
    worst = max(results, key=lambda n: results[n]["crafted"]["seconds"])  # type: ignore[index]
    figures["worst_crafted"] = worst
    print(json.dumps(figures, indent=2))
    assert results["200000_signals_no_rows"]["crafted"]["exit"] == 0
    assert results["huge_row_count"]["crafted"]["exit"] == 2
