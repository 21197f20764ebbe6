"""States, forcing, safe outputs, faults, tasks and virtual-time determinism."""

from __future__ import annotations

import threading
import time

import pytest
from softplc import (
    BOOL,
    DINT,
    INT,
    REAL,
    ConfigError,
    Engine,
    Input,
    Memory,
    Output,
    StateError,
    program,
)

from tests.conftest import thread_count


@program
class Copier:
    start = Input(BOOL, "%IX0.0")
    lamp = Output(BOOL, "%QX0.0", safe=False)
    valve = Output(INT, "%QW1", safe=-1)
    count = Memory(DINT)

    def scan(self):
        self.count = self.count + 1
        self.lamp = self.start
        self.valve = 7


def engine(engines, prog=None, **kw):
    e = Engine(clock="virtual", cycle="1ms", **kw)
    engines.append(e)
    e.add_program(prog or Copier(), mode="reference")
    e.start()
    return e


def test_a_forced_input_is_held_until_released(engines):
    e = engine(engines)
    e.force("copier.start", True)
    e.write("copier.start", False)  # a write does not beat a force
    e.run_cycles(3)
    assert e.read("copier.lamp") is True
    assert e.forced == {"copier.start": True}
    e.unforce("copier.start")
    e.write("copier.start", False)
    e.run_cycles(1)
    assert e.read("copier.lamp") is False
    assert e.forced == {}


def test_a_forced_output_wins_over_the_program(engines):
    e = engine(engines)
    e.force("copier.valve", 42)
    e.run_cycles(2)
    assert e.read("copier.valve") == 42
    e.unforce()
    e.run_cycles(1)
    assert e.read("copier.valve") == 7


def test_unforcing_a_variable_that_is_not_forced_is_an_error(engines):
    e = engine(engines)
    with pytest.raises(StateError, match="not forced"):
        e.unforce("copier.start")


def test_stop_puts_every_output_to_its_safe_value_in_the_same_cycle(engines):
    e = engine(engines)
    e.force("copier.start", True)
    e.run_cycles(1)
    assert (e.read("copier.lamp"), e.read("copier.valve")) == (True, 7)
    e.stop()
    e.run_cycles(1)
    assert e.state == "STOP"
    assert (e.read("copier.lamp"), e.read("copier.valve")) == (False, -1)
    assert e.read("copier.count") == 1  # programs did not run in STOP
    e.run()
    e.run_cycles(1)
    assert e.state == "RUN"
    assert e.read("copier.valve") == 7


@program
class Bomb:
    out = Output(INT, safe=5)
    n = Memory(INT)

    def scan(self):
        self.n = self.n + 1
        self.out = 100
        if self.n == 3:
            raise RuntimeError("valve jammed")


def test_a_raising_program_faults_with_its_traceback_and_outputs_go_safe(engines):
    e = engine(engines, Bomb())
    e.run_cycles(2)
    assert e.read("bomb.out") == 100
    e.run_cycles(1)
    assert e.state == "FAULT"
    assert e.read("bomb.out") == 5
    f = e.fault
    assert f["kind"] == "program" and f["source"] == "bomb" and f["cycle"] == 2
    assert "RuntimeError: valve jammed" in f["message"]
    assert "Traceback" in f["message"] and 'raise RuntimeError("valve jammed")' in f["message"]
    # Held until cleared; clearing goes to STOP, not RUN.
    e.run_cycles(3)
    assert e.state == "FAULT"
    e.clear_fault()
    e.run_cycles(1)
    assert (e.state, e.fault) == ("STOP", None)
    e.run()
    e.run_cycles(1)
    assert e.state == "RUN"


def test_plain_callables_and_scan_objects_run_in_declared_order(engines):
    e = Engine(clock="virtual", cycle="1ms")
    engines.append(e)
    e.declare("x", "memory", DINT)
    order = []

    class Second:
        def scan(self, io):
            order.append(("second", io.x))
            io.x = io.x * 10

    def first(io):
        order.append(("first", io["x"]))
        io["x"] = io["x"] + 1

    e.add_program(first)
    e.add_program(Second(), name="second")
    e.start()
    e.run_cycles(2)
    assert order == [("first", 0), ("second", 1), ("first", 10), ("second", 11)]
    assert e.read("x") == 110
    assert [(p["name"], p["mode"]) for p in e.status()["programs"]] == [
        ("first", "python"),
        ("second", "python"),
    ]


def test_every_program_of_a_cycle_sees_the_same_now(engines):
    e = Engine(clock="virtual", cycle="2ms")
    engines.append(e)
    seen = []
    e.add_program(lambda io: seen.append(("a", io.now_ns)), name="a")
    e.add_program(lambda io: seen.append(("b", io.now_ns)), name="b")
    e.start()
    e.run_cycles(3)
    assert seen == [("a", 0), ("b", 0), ("a", 2_000_000), ("b", 2_000_000),
                    ("a", 4_000_000), ("b", 4_000_000)]  # fmt: skip


def test_tasks_interleave_by_period_and_priority(engines):
    e = Engine(clock="virtual")
    engines.append(e)
    log = []
    e.add_task("slow", period="3ms", priority=1)
    e.add_task("fast", period="1ms", priority=5)
    e.add_program(lambda io: log.append(("slow", io.now_ns // 1_000_000)), task="slow", name="s")
    e.add_program(lambda io: log.append(("fast", io.now_ns // 1_000_000)), task="fast", name="f")
    e.start()
    e.run_for("4ms")
    assert log == [("slow", 0), ("fast", 0), ("fast", 1), ("fast", 2), ("slow", 3), ("fast", 3)]
    stats = {t["name"]: t["cycles"] for t in e.stats()}
    assert stats == {"slow": 2, "fast": 4}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period": "0ms"}, "period must be greater than 0"),
        ({"period": "-1ms"}, "period must be greater than 0"),
        ({"period": "1ms", "overrun": "sometimes"}, "unknown overrun policy"),
        ({"period": "1ms", "watchdog": "0s"}, "watchdog must be greater than 0"),
        ({"period": "fast"}, "cannot read duration"),
    ],
)
def test_bad_task_settings_are_rejected_naming_the_task(engines, kwargs, message):
    e = Engine(clock="virtual")
    engines.append(e)
    with pytest.raises(ConfigError, match=message):
        e.add_task("t1", **kwargs)


def test_a_failed_start_leaves_nothing_running(engines):
    before = thread_count()
    e = Engine(clock="real", cycle="1ms")
    engines.append(e)

    @program
    class Broken:
        a = Output(INT, "%QW0")
        b = Output(BOOL, "%QX1.0")  # overlaps a

        def scan(self):
            pass

    with pytest.raises(ConfigError, match="overlaps"):
        e.add_program(Broken(), mode="reference")
    e.close()
    assert thread_count() == before
    with pytest.raises(StateError):
        e.start()


class Plant:
    """A first-order lag: the level follows 100 when the pump runs, 0 otherwise."""

    def __init__(self):
        self.level = 0.0
        self.steps = []

    def step(self, io, dt):
        target = 100.0 if io["pump"] else 0.0
        self.level += (target - self.level) * min(1.0, dt / 0.05)
        self.steps.append(round(dt, 9))
        io["level"] = self.level


def run_plant_once():
    e = Engine(clock="virtual", cycle="10ms")
    e.declare("level", "input", REAL)
    e.declare("pump", "output", BOOL)
    trace = []

    def ctl(io):
        io.pump = io.level < 60.0
        trace.append((io.now_ns, io.level, io.pump))

    plant = Plant()
    e.add_program(ctl)
    e.set_plant(plant)
    e.start()
    e.run_cycles(300)
    snap = e.snapshot()
    e.close()
    return trace, snap, plant


def test_virtual_time_runs_are_reproducible_bit_for_bit():
    t1, s1, p1 = run_plant_once()
    t2, s2, _p2 = run_plant_once()
    assert t1 == t2
    assert (s1.input.tobytes(), s1.output.tobytes()) == (s2.input.tobytes(), s2.output.tobytes())
    # The plant is stepped in lockstep: once per cycle, with dt = the period.
    assert p1.steps == [0.01] * 300
    # and the controller keeps the level around its threshold.
    assert 50 < t1[-1][1] < 70


def test_a_raising_plant_model_faults_the_engine_with_its_traceback(engines):
    e = Engine(clock="virtual")
    engines.append(e)
    e.declare("x", "input", REAL)
    e.add_program(lambda io: None, name="noop")

    def step(io, dt):
        raise ValueError("sensor model diverged")

    e.set_plant(step)
    e.start()
    e.run_cycles(1)
    assert e.state == "FAULT"
    assert e.fault["kind"] == "driver"
    assert "sensor model diverged" in e.fault["message"]


def test_real_time_scan_leaves_other_python_threads_running(engines):
    e = Engine(clock="real", cycle="1ms")
    engines.append(e)
    e.declare("n", "memory", DINT)
    e.add_program(lambda io: setattr(io, "n", io.n + 1), name="inc")
    e.start()
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    e.run_for("300ms")
    stop.set()
    t.join()
    assert counter[0] > 10_000
    assert e.read("n") > 100
    assert e.state == "RUN"


def test_the_watchdog_faults_a_task_that_runs_too_long_and_keeps_the_figures(engines):
    e = Engine(clock="real", cycle="5ms")
    engines.append(e)
    e.add_task("main", period="5ms", watchdog="2ms", watchdog_tolerance=1)
    calls = [0]

    def slow(io):
        calls[0] += 1
        if calls[0] >= 5:
            # Over the 2 ms limit, under the 4 ms that one cycle may take with one
            # breach tolerated (limit * (tolerance + 1), CODESYS's rule).
            time.sleep(0.003)

    e.add_program(slow, task="main")
    e.start()
    assert e.wait(duration="2s", stop_on_fault=True) == "fault"
    f = e.fault
    assert f["kind"] == "watchdog"
    assert "limit 2.000 ms" in f["message"] and "2 consecutive" in f["message"]
    assert calls[0] == 6  # one breach tolerated, the second faults


def test_one_cycle_longer_than_limit_times_tolerance_plus_one_faults_at_once(engines):
    e = Engine(clock="real", cycle="5ms")
    engines.append(e)
    e.add_task("main", period="5ms", watchdog="2ms", watchdog_tolerance=1)
    calls = [0]

    def slow(io):
        calls[0] += 1
        if calls[0] == 5:
            time.sleep(0.05)

    e.add_program(slow, task="main")
    e.start()
    assert e.wait(duration="2s", stop_on_fault=True) == "fault"
    f = e.fault
    assert f["kind"] == "watchdog"
    assert "tolerance 1: at most 4.000 ms for one cycle" in f["message"]
    assert f["cycle"] == 4


def test_the_fault_overrun_policy_faults_on_the_first_overrun(engines):
    e = Engine(clock="real")
    engines.append(e)
    e.add_task("main", period="2ms", overrun="fault")
    calls = [0]

    def slow(io):
        calls[0] += 1
        if calls[0] == 3:
            time.sleep(0.006)

    e.add_program(slow, task="main")
    e.start()
    assert e.wait(duration="2s", stop_on_fault=True) == "fault"
    assert e.fault["kind"] == "overrun"
    assert "period 2.000 ms" in e.fault["message"]


def test_skip_policy_counts_overruns_and_keeps_running(engines):
    e = Engine(clock="real")
    engines.append(e)
    e.add_task("main", period="2ms", overrun="skip")
    calls = [0]

    def slow(io):
        calls[0] += 1
        if calls[0] == 3:
            time.sleep(0.0065)

    e.add_program(slow, task="main")
    e.start()
    e.wait(cycles=20)
    st = e.stats()[0]
    assert e.state == "RUN"
    assert st["overruns"] >= 1 and st["missed"] >= 3


def test_a_refused_real_time_request_warns_once_and_shows_in_the_status(engines):
    from softplc import RealtimeWarning

    e = Engine(clock="real", cycle="1ms", priority=10, lock_memory=False, cpu=1000)
    engines.append(e)
    e.add_program(lambda io: None, name="noop")
    with pytest.warns(RealtimeWarning, match="CPU affinity 1000 refused") as caught:
        e.start()
    assert len(caught) == 1
    rt = e.status()["realtime"]
    assert rt["cpu"] is None and rt["priority"] == 10
    assert any("CPU affinity 1000 refused" in d for d in rt["degraded"])
    e.run_for("20ms")
    assert e.state == "RUN"  # degraded, not stopped


def test_run_from_fault_asks_for_clear_fault_first(engines):
    e = engine(engines, Bomb())
    e.run_cycles(3)
    assert e.state == "FAULT"
    with pytest.raises(StateError, match="clear_fault"):
        e.run()


DROP_WITHOUT_CLOSE = """
import gc, time
from softplc import Engine, DINT
e = Engine(clock="real", cycle="1ms")
e.declare("n", "memory", DINT)
e.add_program(lambda io: setattr(io, "n", io.n + 1), name="inc")
e.start()
time.sleep(0.1)
del e
gc.collect()
print("dropped")
"""


def test_a_running_engine_dropped_without_close_stops_instead_of_hanging():
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-c", DROP_WITHOUT_CLOSE],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "dropped"


def test_waiting_on_a_virtual_engine_is_refused_instead_of_hanging(engines):
    e = engine(engines)
    with pytest.raises(StateError, match="run_cycles"):
        e.wait(cycles=1)


def test_a_program_that_fails_to_compile_leaves_no_variables_behind(engines, tmp_path):
    from softplc import ProgramError
    from softplc.loader import load_program_file

    src = tmp_path / "half.py"
    src.write_text(
        "from softplc import INT, Memory, program\n"
        "@program\n"
        "class Half:\n"
        "    x = Memory(INT)\n"
        "    def scan(self):\n"
        "        self.x = undefined_thing\n"
    )
    (cls,) = load_program_file(src).programs
    e = Engine(clock="virtual")
    engines.append(e)
    with pytest.raises(ProgramError, match="undefined_thing"):
        e.add_program(cls())
    e.add_program(cls(), mode="reference")  # the same names declare again
    e.start()
    assert [v["name"] for v in e.variables] == ["half.x"]
