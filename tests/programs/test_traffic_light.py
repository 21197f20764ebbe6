"""The traffic light in virtual time: phase timing, pedestrian request, flashing."""

import importlib.util
from pathlib import Path

from softplc import Engine
from softplc.differential import run_both

ROOT = Path(__file__).resolve().parents[2]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "programs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tl = load("traffic_light")
LAMPS = ("red", "yellow", "green")


def lamps(plc):
    return tuple(plc.read(f"traffic_light.{n}") for n in LAMPS)


def run(plc, cycles, **inputs):
    for k, v in inputs.items():
        plc.write(f"traffic_light.{k}", v)
    seen = []
    for _ in range(cycles):
        plc.run_cycles(1)
        seen.append(lamps(plc))
    return seen


def phases(seen):
    """Run-length encoding of the lamp pattern: [(pattern, cycles), ...]."""
    out = []
    for p in seen:
        if out and out[-1][0] == p:
            out[-1][1] += 1
        else:
            out.append([p, 1])
    return [tuple(x) for x in out]


def test_traffic_light_cycles_through_the_phases_with_their_durations():
    with Engine(clock="virtual", cycle="10ms") as plc:
        plc.add_program(tl.TrafficLight())
        plc.start()
        seen = run(plc, 6500)  # 65 s
    ph = phases(seen)
    red, red_yellow, green, yellow = (
        (True, False, False),
        (True, True, False),
        (False, False, True),
        (False, True, False),
    )
    assert [p for p, _ in ph[:5]] == [red, red_yellow, green, yellow, red]
    # Each later phase lasts its time plus the one scan that restarts the timer; the
    # first starts timing on the very first scan.
    assert [n for _, n in ph[:5]][:4] == [500, 101, 2001, 301]
    assert not any(r and g for r, _, g in seen)


def test_a_pedestrian_request_shortens_green_to_min_green():
    with Engine(clock="virtual", cycle="10ms") as plc:
        plc.add_program(tl.TrafficLight())
        plc.start()
        run(plc, 700)  # into GREEN (starts at cycle 601)
        assert plc.read("traffic_light.green")
        plc.write("traffic_light.request", True)
        run(plc, 1)
        plc.write("traffic_light.request", False)
        seen = run(plc, 600)
    green_left = next(i for i, p in enumerate(seen) if not p[2])
    # min_green is 5 s from the start of GREEN; 0.7 s had passed.
    assert 400 <= green_left <= 410


def test_disabled_light_flashes_yellow_at_1_hz():
    with Engine(clock="virtual", cycle="10ms") as plc:
        plc.add_program(tl.TrafficLight())
        plc.start()
        seen = run(plc, 400, enable=False)
    assert all(not r and not g for r, _, g in seen)
    ys = [y for _, y, _ in seen]
    assert 150 <= sum(ys) <= 250  # half the time on
    assert ys.count(True) > 0 and ys[:50] != ys[50:100]


def test_traffic_light_compiled_and_reference_agree():
    steps = [{}] * 700 + [{"traffic_light.request": True}, {"traffic_light.request": False}]
    steps += (
        [{}] * 300
        + [{"traffic_light.enable": False}]
        + [{}] * 150
        + [{"traffic_light.enable": True}]
    )
    run_both(tl.TrafficLight, steps, cycles=1400)
