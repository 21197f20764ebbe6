"""``softplc.trace.stats``: the statistics the ``stats`` command prints."""

from __future__ import annotations

import json

import pytest
import softplc.trace as st
from softplc.cli import main

from tests.unit.trace.tracedata import N


def test_stats_gives_per_signal_figures_and_per_task_histograms(make_trace):
    tr = st.load(make_trace())
    s = st.stats(tr, bins=4)
    by = {r["name"]: r for r in s["signals"]}
    assert list(by) == ["tank.level", "tank.pump", "count", "speed", "delay"]
    assert (by["count"]["min"], by["count"]["max"], by["count"]["rows"]) == (0, N - 1, N)
    assert (by["tank.pump"]["rising"], by["tank.pump"]["falling"]) == (4, 3)
    assert s["exec_time_cycles"] == {"main": N}
    assert len(s["exec_time_histogram_ns"]["main"]["counts"]) == 4


def test_stats_takes_signals_by_name_glob_or_object_and_a_row_window(make_trace):
    tr = st.load(make_trace())
    rows = tr.window(1_000_000_000, 1_009_000_000)
    s = st.stats(tr, signals=["count", tr.signal("speed"), "tank.*"], rows=rows)
    assert [r["name"] for r in s["signals"]] == ["count", "speed", "tank.level", "tank.pump"]
    assert s["signals"][0]["min"] == 1000 and s["signals"][0]["rows"] == 10
    assert s["exec_time_cycles"] == {"main": 10}
    with pytest.raises(st.TraceError, match="bins must be from 1 to 100000"):
        st.stats(tr, bins=0)


def test_the_stats_command_prints_the_library_result_as_json(make_trace, capsys):
    p = make_trace()
    assert main(["trace", "stats", str(p), "--json", "--bins", "3", "--from", "0.5"]) == 0
    tr = st.load(p)
    expected = st.stats(tr, rows=tr.window(500_000_000, None), bins=3)
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(expected))
