"""The traffic light in virtual time: phase timing, pedestrian request, flashing, with
the testing toolkit."""

import importlib.util
from pathlib import Path

import pytest
from softplc.differential import run_both
from softplc.testing import always, fell, mutually_exclusive, never, responds, rose

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "programs/traffic_light.py"


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "programs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tl = load("traffic_light")
MODES = ["compiled", "reference"]


@pytest.mark.parametrize("mode", MODES)
def test_traffic_light_cycles_through_the_phases_with_their_durations(plc, mode):
    bench = plc(PROGRAM, mode=mode)
    bench.run_for("60s")
    # RED from the first scan; each later phase lasts its time plus the one scan that
    # restarts the timer: red 5 s, red-yellow 1.01 s, green 20.01 s, yellow 3.01 s.
    assert rose(bench, "green").times == [6.01, 35.05]
    assert fell(bench, "green").times == [26.02, 55.06]
    assert rose(bench, "yellow and not red").times == [26.02, 55.06]
    assert rose(bench, "red and not yellow").times == [0.0, 29.03, 58.07]
    mutually_exclusive(bench, "red", "green")
    mutually_exclusive(bench, "yellow", "green")
    always(bench, "walk == (red and not yellow)")


@pytest.mark.parametrize("mode", MODES)
def test_a_pedestrian_request_shortens_green_to_min_green(plc, mode):
    bench = plc(PROGRAM, mode=mode)
    bench.run_until("green", timeout="10s")
    bench.run_for("700ms")
    bench.pulse("request", "10ms")
    bench.run_until("not green", timeout="20s")
    # min_green is 5 s from the start of GREEN (6.01 s), not green_time's 20 s.
    assert fell(bench, "green").times == [11.02]
    responds(bench, "rose(request)", "walk", within="5s")


@pytest.mark.parametrize("mode", MODES)
def test_disabled_light_flashes_yellow_at_1_hz(plc, mode):
    bench = plc(PROGRAM, mode=mode)
    bench.set(enable=False)
    bench.run_for("4s")
    never(bench, "red or green or walk", after="10ms")
    assert rose(bench, "yellow").times == [0.0, 1.0, 2.0, 3.0]
    assert fell(bench, "yellow").times == [0.5, 1.5, 2.5, 3.5]


def test_traffic_light_compiled_and_reference_agree():
    steps = [{}] * 700 + [{"traffic_light.request": True}, {"traffic_light.request": False}]
    steps += (
        [{}] * 300
        + [{"traffic_light.enable": False}]
        + [{}] * 150
        + [{"traffic_light.enable": True}]
    )
    run_both(tl.TrafficLight, steps, cycles=1400)
