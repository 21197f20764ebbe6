"""The oven temperature loop in virtual time: the PID brings the simulated oven to the
ramped setpoint, manual mode follows the manual output, and switching back is
bumpless (the first automatic output continues from the manual one)."""

import importlib.util
from pathlib import Path

import pytest
from softplc.differential import run_both
from softplc.testing import always, eventually, never

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("oven_pid", ROOT / "programs" / "oven_pid.py")
ov = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ov)

P = "oven_pid."


def oven(plc, mode="compiled", plant=None):
    return plc("programs/oven_pid.py", cycle="100ms", mode=mode, plant=plant or ov.OvenPlant())


def test_pid_brings_the_oven_to_the_setpoint_without_large_overshoot(plc):
    bench = oven(plc)
    bench.run_for("10min")
    assert abs(bench["temp"] - 180.0) < 1.0
    always(bench, "temp < 190 and 0 <= heater <= 100")
    never(bench, "over_temp")
    # The setpoint ramps over 120 s from the start temperature.
    assert abs(bench.recorded()["ramp_sp"][600] - (20.0 + 160.0 * 60.1 / 120.0)) < 1.5
    eventually(bench, "abs(temp - 180) < 2", within="5min")


@pytest.mark.parametrize("mode", ["compiled", "reference"])
def test_manual_mode_follows_manual_out_and_return_to_auto_is_bumpless(plc, mode):
    bench = oven(plc, mode)
    bench.run_cycles(1000)
    bench.set(auto=False, manual_out=37.5)
    bench.run_cycles(500)
    bench.set(auto=True)
    bench.run_cycles(1)
    always(bench, "heater == 37.5", after="100.1s", before="149.9s")
    rec = bench.recorded()
    heater, temp, sp = rec["heater"], rec["temp"], rec["ramp_sp"]
    # What bumpless transfer guarantees: the first automatic output starts from the
    # manual output and differs from it only by what one automatic cycle changes (the
    # integral step and the P and D response to the change of e since the last manual
    # cycle). The proportional term itself, KP * e, does not appear as a jump.
    kp, ti, td, dt = 8.0, 60.0, 2.0, 0.1  # the program's PID, 100 ms cycles
    e_before = float(sp[1499]) - float(temp[1499])
    e_now = float(sp[1500]) - float(temp[1500])
    one_cycle = kp * (e_now - e_before) * (1 + td / dt) + kp * dt / ti * e_now
    assert float(heater[1500]) == pytest.approx(37.5 + one_cycle, abs=1e-4)
    # The oven is still about 22 degC below the setpoint: a transfer that ignored the
    # manual output would jump to KP * e (the output limit) instead of a few percent.
    assert kp * e_now > 100.0
    assert abs(one_cycle) < 3.0


def test_over_temperature_cuts_the_heater(plc):
    bench = oven(plc, plant=ov.OvenPlant(temp=240.0))
    bench.run_for("5s")
    always(bench, "over_temp and heater == 0", after="100ms")


def test_oven_compiled_and_reference_agree_cycle_for_cycle():
    steps = (
        [{}] * 300
        + [{P + "auto": False, P + "manual_out": 55.0}]
        + [{}] * 100
        + [{P + "auto": True}]
    )
    run_both(ov.OvenPid, steps, cycles=800, cycle="100ms", plant=ov.OvenPlant)
