"""Hypothesis strategies for input timelines: what they draw, how they shrink, and the
requests they refuse before running."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.errors import InvalidArgument
from softplc import INT, REAL
from softplc.testing import Bench, Change, SignalTimeline, Timeline, always
from softplc.testing.strategies import levels, pulses, timelines

from tests.conftest import PROGRAMS
from tests.unit.testing.benchprogs import Motor

TANK = str(PROGRAMS / "tank.py")
MS = 1_000_000


@settings(max_examples=50, deadline=None)
@given(
    timelines(
        TANK,
        duration="5s",
        signals={"enable": pulses(min_hold="300ms"), "level": levels(10.0, 90.0, ramps=True)},
        resolution="50ms",
    )
)
def test_timelines_respect_holds_ranges_and_the_duration(tl):
    assert tl.duration_ns == 5_000 * MS and tl.names == ["tank.enable", "tank.level"]
    enable = tl["enable"].changes
    times = [0] + [c.t_ns for c in enable]
    assert all(b - a >= 300 * MS for a, b in itertools.pairwise(times))
    assert all(c.t_ns % (50 * MS) == 0 and c.t_ns < tl.duration_ns for c in enable)
    values = [tl["enable"].initial] + [c.value for c in enable]
    assert all(a != b for a, b in itertools.pairwise(values))  # a train toggles
    level = tl["level"]
    assert all(10.0 <= v <= 90.0 for v in [level.initial] + [c.value for c in level.changes])
    for t in range(0, tl.duration_ns, 100 * MS):
        assert 10.0 <= tl.value_at("level", t) <= 90.0


@settings(max_examples=3, deadline=None, database=None)
@given(hs.data())
def test_by_default_every_input_is_driven_by_its_type(data):
    tl = data.draw(timelines(TANK, duration="1s"))
    assert tl.names == ["tank.level", "tank.enable"]
    assert tl["level"].type == "REAL" and tl["enable"].type == "BOOL"
    tl = data.draw(timelines({"a.n": INT, "a.x": REAL}, duration="1s"))
    assert tl.names == ["a.n", "a.x"]


SHRINK = """
from hypothesis import find, settings
from softplc.testing.strategies import timelines

tl = find(
    timelines({"motor.start": "BOOL", "motor.stop": "BOOL"}, duration="10s"),
    lambda t: any(c.value and c.t_ns > 2_000_000_000 for c in t["start"].changes),
    settings=settings(max_examples=500, database=None),
)
print(tl.changes, tl["start"].initial, len(tl["stop"].changes))
print(repr(tl))
"""


def test_a_failing_example_shrinks_to_a_few_changes():
    # Any timeline that presses start after 2 s "fails": the minimal one does it once.
    # In a process of its own: after tests/unit/test_watchdog.py has interrupted a stuck
    # Python program in this process, Hypothesis never finishes shrinking here.
    r = subprocess.run(
        [sys.executable, "-c", SHRINK], capture_output=True, text=True, timeout=120, check=True
    )
    changes, initial, stop_changes = r.stdout.splitlines()[0].split()
    assert int(changes) <= 3, r.stdout
    assert (initial, stop_changes) == ("False", "0"), r.stdout
    assert r.stdout.splitlines()[1].startswith("Timeline(10s; motor.start: False, ")


def test_a_timeline_plays_on_a_bench_at_its_times():
    tl = Timeline(
        1_000 * MS,
        (
            SignalTimeline(
                "start", "BOOL", False, (Change(200 * MS, True), Change(300 * MS, False))
            ),
            SignalTimeline("speed_sp", "REAL", 0.0, (Change(400 * MS, 40.0, 200 * MS),)),
        ),
    )
    with Bench.from_programs(Motor()) as b:
        b.play(tl)
        assert b.time_ns == 1_000 * MS
        rec = b.recorded()
    start = rec["start"]
    assert not start[:20].any() and start[20:30].all() and not start[30:].any()
    sp = rec["speed_sp"]
    assert sp[40] == 0.0 and sp[50] == pytest.approx(20.0) and sp[60] == 40.0 and sp[-1] == 40.0
    always(rec, "speed_sp <= 40")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration": "1s", "min_hold": "2s"}, "min_hold 2s is longer than the duration 1s"),
        (
            {"signals": {"enable": pulses(min_hold="3s")}, "duration": "2s"},
            "tank.enable: min_hold 3s",
        ),
        ({"signals": {"level": (50.0, 10.0)}}, r"levels\(50\.0, 10\.0\) is an empty range"),
        ({"signals": {"level": levels(0.0, float("inf"))}}, "bounds must be finite"),
        ({"signals": {"level": levels(0.1, 0.1)}}, "holds no REAL"),
        ({"signals": ["levle"]}, r"no variable 'levle' \(did you mean tank.level\?\)"),
        ({"signals": ["pump"]}, "tank.pump is an output variable"),
        ({"signals": {"enable": levels(0, 1)}}, "is a BOOL: describe it with pulses"),
        ({"signals": {"level": pulses()}}, "is a REAL: describe it with levels"),
        ({"signals": {"enable": pulses(min_hold="2s", max_hold="1s")}}, "max_hold 1s is shorter"),
        ({"duration": "0s"}, "duration must be positive"),
        ({"resolution": "-1ms"}, "resolution must be positive"),
        ({"min_hold": 1.5}, "a bare number is ambiguous"),
        ({"signals": "level"}, "not a string"),
        ({"exclude": ["level", "enable"]}, "no signal to drive"),
        ({"max_changes": -1}, "max_changes"),
    ],
)
def test_impossible_requests_raise_invalid_argument_before_running(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        timelines(TANK, **kwargs)


def test_integer_ranges_must_fit_the_type():
    with pytest.raises(InvalidArgument, match=r"leaves the type's range -32768\.\.32767"):
        timelines({"a.n": INT}, signals={"a.n": levels(0, 40_000)})
    with pytest.raises(InvalidArgument, match="bounds must be integers"):
        timelines({"a.n": INT}, signals={"a.n": levels(0, 2.5)})


def test_a_missing_program_file_or_a_wrong_source_is_invalid():
    with pytest.raises(InvalidArgument, match="does not exist"):
        timelines("nope.py")
    with pytest.raises(InvalidArgument, match="takes a program file"):
        timelines(3)


@settings(max_examples=10, deadline=None)
@given(timelines({"n": INT}, duration="1s", signals={"n": levels(-5, 5, ramps=True)}))
def test_integer_ramps_stay_integers_in_range(tl):
    for t, values in tl.schedule(10 * MS).events:
        assert all(isinstance(v, int) and -5 <= v <= 5 for v in values.values()), (t, values)


@settings(max_examples=10, deadline=None)
@given(hs.data())
def test_timelines_accept_a_bench_as_their_source(data):
    with Bench.from_programs(Motor(), record=False) as b:
        tl = data.draw(timelines(b, duration="1s", signals=["start", "speed_sp"]))
        assert tl.names == ["motor.start", "motor.speed_sp"]
