"""The oven temperature loop in virtual time: the PID brings the simulated oven to the
ramped setpoint, manual mode follows the manual output, and switching back is
bumpless (the first automatic output continues from the manual one)."""

import importlib.util
from pathlib import Path

import pytest
from softplc import Engine
from softplc.differential import run_both

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("oven_pid", ROOT / "programs" / "oven_pid.py")
ov = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ov)

P = "oven_pid."


def run_oven(cycles, plant, mode="compiled", cycle="100ms", at=None):
    """Runs `cycles` cycles; `at` maps cycle -> inputs to write. Returns samples."""
    rows = []
    with Engine(clock="virtual", cycle=cycle) as plc:
        plc.add_program(ov.OvenPid(), mode=mode)
        plc.set_plant(plant)
        plc.start()
        for k in range(cycles):
            for name, v in (at or {}).get(k, {}).items():
                plc.write(P + name, v)
            plc.run_cycles(1)
            rows.append({n: plc.read(P + n) for n in ("temp", "heater", "ramp_sp", "over_temp")})
    return rows


def test_pid_brings_the_oven_to_the_setpoint_without_large_overshoot():
    rows = run_oven(6000, ov.OvenPlant())  # 10 minutes
    temps = [r["temp"] for r in rows]
    assert abs(temps[-1] - 180.0) < 1.0
    assert max(temps) < 190.0
    assert all(0.0 <= r["heater"] <= 100.0 for r in rows)
    # The setpoint ramps over 120 s from the start temperature.
    assert abs(rows[600]["ramp_sp"] - (20.0 + 160.0 * 60.1 / 120.0)) < 1.5
    assert not any(r["over_temp"] for r in rows)


@pytest.mark.parametrize("mode", ["compiled", "reference"])
def test_manual_mode_follows_manual_out_and_return_to_auto_is_bumpless(mode):
    at = {1000: {"auto": False, "manual_out": 37.5}, 1500: {"auto": True}}
    rows = run_oven(1600, ov.OvenPlant(), mode=mode, at=at)
    assert all(r["heater"] == 37.5 for r in rows[1001:1500])
    # What bumpless transfer guarantees: the first automatic output starts from the
    # manual output and differs from it only by what one automatic cycle changes (the
    # integral step and the P and D response to the change of e since the last manual
    # cycle). The proportional term itself, KP * e, does not appear as a jump.
    kp, ti, td, dt = 8.0, 60.0, 2.0, 0.1  # the program's PID, 100 ms cycles
    e_before = rows[1499]["ramp_sp"] - rows[1499]["temp"]
    e_now = rows[1500]["ramp_sp"] - rows[1500]["temp"]
    one_cycle = kp * (e_now - e_before) * (1 + td / dt) + kp * dt / ti * e_now
    assert rows[1500]["heater"] == pytest.approx(37.5 + one_cycle, abs=1e-4)
    # The oven is still about 22 degC below the setpoint: a transfer that ignored the
    # manual output would jump to KP * e (the output limit) instead of a few percent.
    assert kp * e_now > 100.0
    assert abs(one_cycle) < 3.0


def test_over_temperature_cuts_the_heater():
    hot = ov.OvenPlant(temp=240.0)
    rows = run_oven(50, hot)
    assert rows[5]["over_temp"] and rows[5]["heater"] == 0.0


def test_oven_compiled_and_reference_agree_cycle_for_cycle():
    steps = (
        [{}] * 300
        + [{P + "auto": False, P + "manual_out": 55.0}]
        + [{}] * 100
        + [{P + "auto": True}]
    )
    run_both(ov.OvenPid, steps, cycles=800, cycle="100ms", plant=ov.OvenPlant)
