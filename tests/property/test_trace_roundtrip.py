"""Trace round trips through the real Rust sampler and writer: record arrays of any IEC
type, count and length, write the file, load it, get identical arrays back."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import softplc.trace as st
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp

DTYPES = {
    "BOOL": np.bool_,
    "SINT": np.int8,
    "INT": np.int16,
    "DINT": np.int32,
    "LINT": np.int64,
    "USINT": np.uint8,
    "UINT": np.uint16,
    "UDINT": np.uint32,
    "ULINT": np.uint64,
    "REAL": np.float32,
    "LREAL": np.float64,
    "TIME": np.int64,
}


@hs.composite
def recordings(draw: hs.DrawFn) -> tuple[dict[str, tuple[str, np.ndarray]], int]:
    n = draw(hs.integers(0, 300))
    count = draw(hs.integers(1, 8))
    variables = {}
    for k in range(count):
        type_name = draw(hs.sampled_from(sorted(DTYPES)))
        dtype = np.dtype(DTYPES[type_name])
        # Floats of every kind, NaN and infinities included: compared bit for bit.
        values = draw(hnp.arrays(dtype, n, elements=hnp.from_dtype(dtype)))
        variables[f"g{k % 3}.v{k}"] = (type_name, values)
    return variables, n


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rec=recordings(),
    decimate=hs.integers(1, 4),
    block_rows=hs.integers(1, 64),
    timing=hs.booleans(),
)
def test_recorded_arrays_load_back_identical(rec, decimate, block_rows, timing):
    variables, n = rec
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "p.trace"
        stats = st.record_arrays(
            p, variables, decimate=decimate, block_rows=block_rows, timing=timing
        )
        kept = np.arange(0, n, decimate)
        assert stats["rows_written"] == len(kept)
        tr = st.load(p)
        assert tr.complete and tr.rows == len(kept)
        assert tr.names[-len(variables) :] == list(variables)
        np.testing.assert_array_equal(tr.cycle, kept.astype(np.uint64))
        for name, (type_name, values) in variables.items():
            got = tr[name]
            assert got.dtype == np.dtype(DTYPES[type_name]), name
            np.testing.assert_array_equal(bits(got), bits(values[kept]), err_msg=name)
        tr.close()


@settings(max_examples=60, deadline=None)
@given(
    pulse=hs.lists(hs.booleans(), min_size=2, max_size=200),
    pre=hs.integers(0, 20),
    post=hs.integers(0, 20),
)
def test_a_triggered_capture_is_the_window_around_the_first_rising_edge(pulse, pre, post):
    a = np.array(pulse)
    # The sampler needs a previous value, so an edge can only be seen from cycle 1.
    edges = [i for i in range(1, len(a)) if a[i] and not a[i - 1]]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.trace"
        st.record_arrays(
            p,
            {"p": ("BOOL", a), "i": ("DINT", np.arange(len(a)))},
            trigger="rising:p",
            pre=pre,
            post=post,
            block_rows=7,
        )
        tr = st.load(p)
        if not edges:
            assert tr.rows == 0 and tr.triggers == []
            return
        k = edges[0]
        expected = list(range(max(0, k - pre), min(len(a), k + post + 1)))
        assert tr["i"].tolist() == expected
        assert tr.triggers[0]["cycle"] == k
        assert tr.triggers[0]["complete"] == (k + post < len(a))
        tr.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=hs.integers(0, 200),
    block_rows=hs.integers(1, 40),
    decimate=hs.integers(1, 3),
    lo=hs.integers(-5_000_000, 250_000_000),
    length=hs.integers(-1_000_000, 250_000_000),
)
def test_windows_and_partial_reads_through_the_index_match_the_whole_columns(
    n, block_rows, decimate, lo, length
):
    """A window found through the block index is the one a search over the whole time
    column finds, and reading part of a column gives that part of the whole column."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "w.trace"
        st.record_arrays(
            p,
            {"x": ("DINT", np.arange(n) * 7)},
            block_rows=block_rows,
            decimate=decimate,
            timing=False,
        )
        tr = st.load(p)
        hi = lo + length
        rel = (tr.t_ns - np.uint64(tr.t0_ns)).astype(np.int64)
        a = int(np.searchsorted(rel, max(lo, 0), "left"))
        b = 0 if hi < 0 else int(np.searchsorted(rel, hi, "right"))
        assert tr.window(lo, hi) == slice(a, max(a, b))
        sl = slice(max(0, tr.rows // 3 - 1), tr.rows * 2 // 3 + 1)
        whole = tr["x"]
        np.testing.assert_array_equal(st.load(p).read("x", sl), whole[sl])
        np.testing.assert_array_equal(st.load(p).cycles(sl), tr.cycle[sl])
        tr.close()
