"""Temporal assertions: what they check, what a failure says, and what they run on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import softplc.trace as st
from softplc import ConfigError
from softplc.testing import (
    Bench,
    Recording,
    TemporalAssertionError,
    UnknownName,
    always,
    eventually,
    fell,
    mutually_exclusive,
    never,
    responds,
    rose,
    stable_for,
)

from tests.conftest import PROGRAMS
from tests.unit.testing.benchprogs import Motor

MS = 1_000_000


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A start button, a pump answering 3 ms later, a level, and a lamp that chatters."""
    path = tmp_path / "run.trace"
    st.record_arrays(
        path,
        {
            "station.start": ("BOOL", [0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
            "station.pump": ("BOOL", [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1]),
            "station.level": ("REAL", [50, 52, 55, 58, 60, 59, 57, 54, 52, 51, 50, 49]),
            "station.lamp": ("BOOL", [0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0]),
            "valve.open": ("BOOL", [0] * 12),
            "gate.open": ("BOOL", [1] * 12),
        },
        period_ns=MS,
        timing=False,
    )
    return path


def failure(check) -> TemporalAssertionError:
    with pytest.raises(TemporalAssertionError) as ei:
        check()
    return ei.value


def test_always_and_never_hold_or_name_the_first_violation(run):
    always(run, "45 < level < 65")
    never(run, "level > 60")
    e = failure(lambda: always(run, "level < 58"))
    assert (e.row, e.cycle, e.t_ns) == (3, 3, 3 * MS)
    assert e.assertion == "always(level < 58)"
    assert str(e).startswith("always(level < 58) failed at cycle 3 (t = 0.003 s): ")
    e = failure(lambda: never(run, "station.pump and not station.start"))
    assert e.cycle == 4 and e.signals == ["station.pump", "station.start"]


def test_a_failure_shows_the_involved_signals_around_the_violation(run):
    e = failure(lambda: always(run, "level < 58"))
    lines = str(e).splitlines()
    assert lines[1].split() == ["cycle", "t", "[s]", "station.level"]
    assert lines[2].split() == ["0", "0.000", "50.0"]  # 5 rows before: from row 0
    assert lines[5].split() == [">", "3", "0.003", "58.0"]
    assert lines[10].split() == ["8", "0.008", "52.0"]  # 5 rows after
    assert lines[11] == f"trace: {run}"


def test_after_and_before_restrict_the_rows_checked(run):
    always(run, "not pump", before="3ms")
    always(run, "level < 58", after="6ms")
    e = failure(lambda: always(run, "pump", after="4ms"))
    assert e.cycle == 8 and e.assertion == "always(pump, after=4ms)"
    with pytest.raises(ConfigError, match="no rows to check"):
        always(run, "pump", after="1s")


def test_eventually_returns_when_and_fails_at_the_deadline(run):
    assert eventually(run, "pump") == 4 * MS
    assert eventually(run, "pump", within="4ms") == 4 * MS
    e = failure(lambda: eventually(run, "pump", within="3ms"))
    assert e.cycle == 3 and "never held by the deadline" in str(e)
    e = failure(lambda: eventually(run, "level > 70", within="1s"))
    assert "the recording ends 11ms after the start, before the deadline" in str(e)
    assert eventually(run, "rose(pump)", after="5ms") == 5 * MS  # from 5 ms on: at 10 ms


def test_responds_checks_every_trigger_within_its_deadline(run):
    responds(run, "rose(start)", "pump", within="3ms")
    e = failure(lambda: responds(run, "rose(start)", "pump", within="2ms"))
    assert e.cycle == 1
    assert "no response within 2ms" in str(e)
    assert e.signals == ["station.start", "station.pump"]
    # The second press (7 ms) is answered at once (the pump runs).
    responds(run, "rose(start)", "pump", within="3ms", after="5ms")


def test_responds_does_not_judge_a_trigger_whose_deadline_is_past_the_end(run):
    responds(run, "rose(lamp)", "level < 40", within="5ms", after="7ms")
    e = failure(lambda: responds(run, "rose(lamp)", "level < 40", within="1ms"))
    assert e.cycle == 2


def test_stable_for_finds_chattering(run):
    stable_for(run, "pump", "2ms")
    e = failure(lambda: stable_for(run, "lamp", "2ms"))
    assert e.cycle == 9
    assert "changed to 1 at 0.008 s and changed again after 1ms (< 2ms)" in str(e)
    stable_for(run, "lamp", "2ms", value=False)
    failure(lambda: stable_for(run, "lamp", "2ms", value=True))


def test_mutually_exclusive_names_what_held_together(run):
    mutually_exclusive(run, "start", "level > 59", "valve.open")
    e = failure(lambda: mutually_exclusive(run, "station.pump", "lamp"))
    assert e.cycle == 4 and "station.pump and lamp hold together" in str(e)
    with pytest.raises(ConfigError, match="at least two"):
        mutually_exclusive(run, "lamp")


def test_rose_and_fell_give_the_edges_and_can_count_them(run):
    edges = rose(run, "station.pump")
    assert edges.cycles == [4, 10] and edges.times == [0.004, 0.010] and len(edges) == 2
    assert fell(run, "station.pump", count=1).cycles == [8]
    assert rose(run, "gate.open").cycles == [0]  # FALSE before the first row
    assert fell(run, "valve.open").cycles == []
    e = failure(lambda: rose(run, "lamp", count=1))
    assert "2 edges, expected 1 (at 0.002 s, 0.008 s)" in str(e)
    assert rose(run, "start", after="2ms").cycles == [7]


def test_conditions_may_be_callables_over_the_columns(run):
    always(run, lambda c: c["level"] < 61)
    e = failure(lambda: never(run, lambda c: np.abs(np.diff(c["level"], prepend=50)) > 2.5))
    assert e.cycle == 2 and e.signals == ["station.level"]
    with pytest.raises(ConfigError, match="one value per row"):
        always(run, lambda c: True)


def test_an_unknown_signal_names_the_closest(run):
    with pytest.raises(UnknownName, match=r"no signal 'levl' \(did you mean station.level\?\)"):
        always(run, "levl > 3")
    with pytest.raises(UnknownName, match=r"ambiguous: valve\.open, gate\.open"):
        never(run, "open")


def test_a_bad_condition_is_refused(run):
    with pytest.raises(ConfigError, match="not allowed"):
        always(run, "__import__('os')")


def test_assertions_run_on_traces_recordings_and_paths(run):
    always(st.load(run), "level > 40")
    always(Recording.load(run), "level > 40")
    always(str(run), "level > 40")
    with pytest.raises(ConfigError, match="a Bench, a Recording, a Trace or a trace file"):
        always(42, "level > 40")


@pytest.mark.parametrize("mode", ["compiled", "reference"])
def test_assertions_on_a_bench_see_the_run_so_far(mode):
    with Bench.from_programs(Motor(), mode=mode) as b:
        b.pulse("start", "20ms")
        b.run_for("1s")
        responds(b, "rose(start)", "at_speed", within="500ms")
        always(b, "running", after="10ms")
        stable_for(b, "at_speed", "100ms")
        e = failure(lambda: responds(b, "rose(start)", "at_speed", within="490ms"))
        assert e.cycle == 0 and e.traces == b.trace_paths and b.kept


def test_the_same_assertions_hold_on_a_compiled_and_a_reference_run():
    verdicts = []
    for mode in ("compiled", "reference"):
        with Bench.from_file(PROGRAMS / "traffic_light.py", mode=mode) as b:
            b.run_for("7s")
            b.pulse("request", "100ms")
            b.run_for("20s")
            mutually_exclusive(b, "green", "red")
            mutually_exclusive(b, "green", "yellow")
            responds(b, "rose(request)", "walk", within="15s")
            verdicts.append(rose(b, "green").cycles)
    assert verdicts[0] == verdicts[1] and verdicts[0]
