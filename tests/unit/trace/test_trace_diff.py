"""``softplc.trace.diff``: the public comparison the ``diff`` command prints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import softplc.trace as st
from softplc.cli import main

from tests.unit.trace.tracedata import N, plant_arrays


def test_diff_takes_paths_or_loaded_traces_and_is_true_when_they_are_the_same(make_trace):
    a, b = make_trace("a.trace"), make_trace("b.trace")
    result = st.diff(a, b)
    assert result and result.same and result.differences == []
    assert (result.rows_a, result.rows_b, result.rows_common) == (N, N, N)
    assert st.diff(st.load(a), str(b), signals="tank.*").same


def test_diff_names_the_first_difference_of_each_signal(make_trace):
    changed = plant_arrays()
    changed["count"] = ("DINT", np.arange(N) + (np.arange(N) >= 2000))
    del changed["speed"]
    result = st.diff(make_trace("a.trace"), make_trace("b.trace", changed))
    assert not result
    by = {d.name: d for d in result.differences}
    assert set(by) == {"count", "speed"}
    assert by["count"].status is st.DiffStatus.DIFFERS
    assert (by["count"].first.cycle, by["count"].first.a, by["count"].first.b) == (2000, 2000, 2001)
    assert by["count"].rows_differing == N - 2000
    assert by["speed"].status is st.DiffStatus.MISSING_IN_B


def test_integer_tolerance_is_exact_for_64_bit_values(tmp_path):
    big = 2**62
    a, b = tmp_path / "a.trace", tmp_path / "b.trace"
    st.record_arrays(a, {"n": ("LINT", [big, -big, 5])})
    st.record_arrays(b, {"n": ("LINT", [big + 3, -big - 2, 5])})
    # A float would round 2**62 + 3 to 2**62: the distance is taken as an integer.
    assert not st.diff(a, b, tol=2)
    assert st.diff(a, b, tol=3)
    assert st.diff(a, b, tol=3.9)


def test_the_diff_command_prints_the_library_result_as_json(make_trace, capsys):
    a = make_trace("a.trace")
    changed = plant_arrays()
    changed["tank.pump"] = {"type": "INT", "values": np.zeros(N, dtype=np.int16)}
    b = make_trace("b.trace", changed)
    code = main(["trace", "diff", str(a), str(b), "--json"])
    assert code == 1
    assert json.loads(capsys.readouterr().out) == st.diff(a, b).as_dict()
    by = {r["name"]: r for r in st.diff(a, b).as_dict()["signals"]}
    assert by["tank.pump"] == {
        "name": "tank.pump",
        "status": "type_differs",
        "type_a": "BOOL",
        "type_b": "INT",
    }


@pytest.mark.parametrize("tol", [-1, float("nan"), float("inf"), "1"])
def test_a_bad_tolerance_is_refused(make_trace, tol):
    p = make_trace()
    with pytest.raises(st.TraceError, match="tol must be"):
        st.diff(p, p, tol=tol)
