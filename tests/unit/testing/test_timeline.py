"""Timelines as data: values over time, the writes that play them, and the timed
stimulus file that replays them."""

from __future__ import annotations

import pytest
from softplc.stimulus import load_stimulus
from softplc.testing import Bench, Change, SignalTimeline, Timeline

from tests.unit.testing.benchprogs import Motor

MS = 1_000_000

TL = Timeline(
    1_000 * MS,
    (
        SignalTimeline("start", "BOOL", False, (Change(100 * MS, True), Change(150 * MS, False))),
        SignalTimeline(
            "speed_sp",
            "REAL",
            10.0,
            (
                Change(200 * MS, 30.0, 100 * MS),
                Change(250 * MS, 0.0, 50 * MS),
                Change(700 * MS, 5.0),
            ),
        ),
        SignalTimeline("divisor", "INT", 1, (Change(500 * MS, 4, 30 * MS),)),
    ),
)


def test_value_at_follows_steps_and_ramps_cut_short_by_the_next_change():
    sp = TL["speed_sp"]
    assert sp.value_at(0) == 10.0
    assert sp.value_at(250 * MS) == 20.0  # halfway up when the next change starts
    assert sp.value_at(275 * MS) == 10.0  # halfway down from 20
    assert sp.value_at(300 * MS) == 0.0 and sp.value_at(699 * MS) == 0.0
    assert sp.value_at(700 * MS) == 5.0
    assert TL["divisor"].value_at(515 * MS) == 2  # integers round
    assert TL.value_at("start", 120 * MS) is True and TL.changes == 6


def test_the_schedule_writes_ramps_once_per_period_and_ends_at_the_duration():
    sched = TL.schedule(10 * MS)
    assert sched.end_ns == 1_000 * MS
    times = [t for t, v in sched.events if "speed_sp" in v]
    assert times[:4] == [0, 210 * MS, 220 * MS, 230 * MS]
    at = dict(sched.events)
    assert at[240 * MS] == {"speed_sp": 18.0}
    assert 250 * MS not in at  # the next ramp starts from where this one was cut
    assert at[260 * MS] == {"speed_sp": 16.0}
    assert [v["divisor"] for t, v in sched.events if "divisor" in v] == [1, 2, 3, 4]


def test_a_timeline_replays_from_its_csv_exactly_as_played_directly(tmp_path):
    csv = tmp_path / "tl.csv"
    csv.write_text(TL.to_csv(10 * MS))
    runs = []
    for source in (TL, load_stimulus(csv)):
        with Bench.from_programs(Motor()) as b:
            b.play(source)
            assert b.time_ns == 1_000 * MS + (10 * MS if source is not TL else 0)
            rec = b.recorded()
            runs.append(
                {n: rec[n][:100].tolist() for n in ("start", "speed_sp", "divisor", "ratio")}
            )
    assert runs[0] == runs[1]


def test_a_missing_signal_is_a_key_error():
    with pytest.raises(KeyError):
        TL["nope"]
