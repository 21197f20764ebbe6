"""Trace files for the trace tests, recorded through the real sampler and writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import softplc.trace as st

from tests.unit.trace.tracedata import N, plant_arrays


@pytest.fixture
def make_trace(tmp_path: Path) -> Callable[..., Path]:
    """Records a trace of :func:`plant_arrays` (or given arrays) and returns its path."""

    def make(name: str = "plant.trace", variables: dict | None = None, **kw: object) -> Path:
        path = tmp_path / name
        n = N
        if variables is None:
            variables = plant_arrays(n)
            kw.setdefault("exec_ns", 10_000 + (np.arange(n) % 7) * 1_000)
            kw.setdefault("overrun", np.arange(n) == 1500)
            kw.setdefault(
                "events",
                [
                    {"t_ns": 1_500_000_000, "kind": "overrun", "task": 0, "a": 1, "b": 1_200_000},
                    {"t_ns": 2_000_000_000, "kind": "fault", "text": "division by zero"},
                ],
            )
        kw.setdefault("block_rows", 512)
        st.record_arrays(path, variables, **kw)  # type: ignore[arg-type]
        return path

    return make


@pytest.fixture
def gap_trace(make_trace: Callable[..., Path], tmp_path: Path) -> Path:
    """A 100-row trace in blocks of 10 whose block 3 (cycles 30..39) was dropped, with
    the gap frame a recorder writes."""
    from tests.unit.trace.framing import rewrite

    src = make_trace(
        "src.trace",
        {"x": ("INT", np.arange(100)), "on": ("BOOL", np.arange(100) % 2)},
        block_rows=10,
        timing=False,
    )
    out = tmp_path / "gap.trace"

    def drop(rec: dict) -> dict:
        if rec["type"] == "block" and rec["seq"] == 3:
            return {
                "type": "gap",
                "before_seq": 4,
                "blocks": 1,
                "rows": 10,
                "first_cycle": 30,
                "last_cycle": 39,
                "t_first_ns": 30_000_000,
                "t_last_ns": 39_000_000,
                "reason": "writer_behind",
            }
        if rec["type"] == "index":
            rec["summary"].update(rows=90, blocks=9, dropped_blocks=1, dropped_rows=10)
        return rec

    rewrite(src, out, drop)
    return out
