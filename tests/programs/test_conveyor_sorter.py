"""The conveyor sorter in virtual time: counting with edges, pushing big items after
their travel time, stopping at the end of a batch; and a Hypothesis property over random
item arrivals."""

import importlib.util
from pathlib import Path

from hypothesis import given, settings
from softplc.differential import run_both
from softplc.testing import Bench, always, fell, stable_for
from softplc.testing.strategies import pulses, timelines

from tests.conftest import PROGRAMS

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "conveyor_sorter", ROOT / "programs" / "conveyor_sorter.py"
)
cs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cs)

P = "conveyor_sorter."


def item_steps(sizes, gap=30, hold=5):
    """Inputs for items passing the entry eye every `gap` cycles (big or small)."""
    steps = [{P + "run_cmd": True}]
    for big in sizes:
        steps.append({P + "entry_eye": True, P + "big": big})
        steps += [{}] * (hold - 1)
        steps.append({P + "entry_eye": False, P + "big": False})
        steps += [{}] * (gap - hold - 1)
    return steps


def test_big_items_are_pushed_after_their_travel_time():
    steps = item_steps([True, False, True], gap=40) + [{}] * 200
    rows = run_both(cs.ConveyorSorter, steps)
    push = [k for k, r in enumerate(rows) if r[P + "pusher"]]
    # Items enter at cycles 1 and 81; travel 1.5 s = 150 cycles; pulse 300 ms.
    starts = [k for k in push if k - 1 not in push]
    assert starts == [151, 231]
    assert all(len([k for k in push if s <= k < s + 40]) == 30 for s in starts)
    last = rows[-1]
    assert (last[P + "big_count"], last[P + "small_count"]) == (2, 1)
    assert last[P + "on_belt"] == 1  # the small one has not reached the exit eye


def test_belt_stops_at_the_end_of_a_batch_until_reset(plc):
    bench = plc("programs/conveyor_sorter.py")
    bench.set(run_cmd=True)
    for _ in range(11):  # the 11th item comes after the batch of 10 is done
        bench.pulse("entry_eye", "50ms")
        bench.run_for("150ms")
    assert (bench["batch_done"], bench["motor"], bench["small_count"]) == (True, False, 10)
    bench.pulse("reset", "10ms")
    bench.step()
    assert (bench["batch_done"], bench["motor"], bench["small_count"]) == (False, True, 0)
    fell(bench, "motor", count=1)


@settings(max_examples=15, deadline=None)
@given(
    timelines(
        "programs/conveyor_sorter.py",
        duration="20s",
        signals={
            "run_cmd": pulses(min_hold="2s"),
            "entry_eye": pulses(min_hold="50ms"),
            "big": pulses(min_hold="50ms"),
        },
    )
)
def test_every_stroke_lasts_push_time_whatever_arrives(timeline):
    with Bench.from_file(PROGRAMS / "conveyor_sorter.py") as bench:
        bench.play(timeline)
        bench.run_for("3s")  # let the last items reach the pusher
        stable_for(bench, "pusher", "300ms", value=True)
        always(bench, "on_belt >= 0 and push_queue >= 0 and lost >= 0")
        always(bench, "big_count + small_count <= batch")


def test_more_big_items_in_flight_than_slots_are_counted_as_lost():
    steps = item_steps([True] * 6, gap=12, hold=3) + [{}] * 200
    rows = run_both(cs.ConveyorSorter, steps)
    assert rows[-1][P + "lost"] == 2


def pulse_starts(rows):
    push = [k for k, r in enumerate(rows) if r[P + "pusher"]]
    return [k for k in push if k - 1 not in push], push


def test_big_items_closer_than_a_stroke_each_get_a_stroke():
    # Three big items 200 ms apart reach the pusher while its 300 ms stroke still runs;
    # TP would ignore the later requests, so they queue and stroke one after another.
    steps = item_steps([True, True, True], gap=20) + [{}] * 250
    rows = run_both(cs.ConveyorSorter, steps)
    starts, push = pulse_starts(rows)
    # Items enter at cycles 1, 21 and 41 and reach the pusher at 151, 171 and 191. Each
    # stroke is 30 cycles; the next starts after one scan with the pusher back.
    assert starts == [151, 182, 213]
    assert all(len([k for k in push if s <= k < s + 31]) == 30 for s in starts)
    assert max(r[P + "push_queue"] for r in rows) == 1
    last = rows[-1]
    assert (last[P + "big_count"], last[P + "lost"], last[P + "push_queue"]) == (3, 0, 0)
    assert last[P + "on_belt"] == 0
