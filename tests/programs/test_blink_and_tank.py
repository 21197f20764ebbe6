"""The blink and tank examples in virtual time, with the testing toolkit."""

from __future__ import annotations

import pytest
from softplc.testing import always, eventually, fell, never, responds, rose, stable_for

MODES = ["reference", "auto"]


@pytest.mark.parametrize("mode", MODES)
def test_blink_toggles_every_half_period(plc, mode):
    bench = plc("programs/blink.py", cycle="100ms", mode=mode)
    bench.run_for("2s")
    # now = 0, 100, ..., 1900 ms: off for 0-400, on for 500-900, off 1000-1400, ...
    assert rose(bench, "lamp").times == [0.5, 1.5]
    assert fell(bench, "lamp").times == [1.0]
    stable_for(bench, "lamp", "500ms")


@pytest.mark.parametrize("mode", MODES)
def test_tank_level_stays_between_the_limits_without_alarm(plc, mode):
    bench = plc("programs/tank.py", mode=mode)
    bench.run_for("25s")
    always(bench, "39 < level < 61", after="5s")  # 5 s to settle from the initial 50 %
    never(bench, "alarm")
    # The two-point controller: pump on below the low limit, off above the high one.
    responds(bench, "level < low_limit", "pump", within="10ms")
    responds(bench, "level > high_limit", "not pump", within="10ms")


@pytest.mark.parametrize("mode", MODES)
def test_tank_raises_the_alarm_when_disabled_and_running_dry(plc, mode):
    bench = plc("programs/tank.py", mode=mode)
    bench.force(enable=False)
    bench.run_for("10s")  # 10 s of draining at 5 %/s from 50 %
    never(bench, "pump")
    assert bench["level"] < 1e-6
    # Below low_limit - 10 = 30 % (after 4 s of draining) the alarm is on, and stays on.
    assert eventually(bench, "alarm", within="4.1s") == 4_000_000_000
    always(bench, "alarm", after="4.1s")


@pytest.mark.parametrize("mode", MODES)
def test_a_new_low_limit_setpoint_starts_the_pump_at_once(plc, mode):
    bench = plc("programs/tank.py", mode=mode)
    bench.run_until("not pump and level > 55", timeout="20s")
    bench.set(low_limit=65.0, high_limit=75.0)
    assert bench.run_until("pump", timeout="1s") == 10_000_000
