"""The example programs, run in virtual time."""

from __future__ import annotations

import pytest
from softplc.loader import load_program_file

from tests.conftest import PROGRAMS

MODES = ["reference", "auto"]


def load(name, mode, cycle="10ms"):
    e = load_program_file(PROGRAMS / name).build_engine(clock="virtual", cycle=cycle, mode=mode)
    e.start()
    return e


@pytest.mark.parametrize("mode", MODES)
def test_blink_toggles_every_half_period(mode):
    with load("blink.py", mode, cycle="100ms") as e:
        seen = []
        for _ in range(20):
            e.run_cycles(1)
            seen.append(e.read("blink.lamp"))
    # now = 0, 100, ..., 1900 ms: off for 0-400, on for 500-900, off 1000-1400, ...
    assert seen == [False] * 5 + [True] * 5 + [False] * 5 + [True] * 5


@pytest.mark.parametrize("mode", MODES)
def test_tank_level_stays_between_the_limits_without_alarm(mode):
    with load("tank.py", mode) as e:
        e.run_cycles(500)  # 5 s to settle from the initial 50 %
        levels, alarms = [], []
        for _ in range(200):
            e.run_cycles(10)
            levels.append(e.read("tank.level"))
            alarms.append(e.read("tank.alarm"))
    assert 39.0 < min(levels) and max(levels) < 61.0
    assert not any(alarms)


@pytest.mark.parametrize("mode", MODES)
def test_tank_raises_the_alarm_when_disabled_and_running_dry(mode):
    with load("tank.py", mode) as e:
        e.force("tank.enable", False)
        e.run_cycles(1000)  # 10 s of draining at 5 %/s from 50 %
        assert e.read("tank.pump") is False
        assert e.read("tank.level") < 1e-6
        assert e.read("tank.alarm") is True
