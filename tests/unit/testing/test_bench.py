"""The test bench: names, set/pulse/force, run_for/run_until, faults, recording."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from softplc import ConfigError, Engine, RuntimeFaulted, StateError
from softplc.testing import Bench, BenchTimeout, FaultNotRaised, UnknownName, _registry

from tests.conftest import PROGRAMS
from tests.unit.testing.benchprogs import Fan, Motor

MODES = ["compiled", "reference"]


@pytest.fixture
def outside_pytest_scope():
    """Benches made as a script would (no plugin scope), restored afterwards."""
    scope = _registry.current()
    _registry.end()
    yield
    _registry._current = scope


def motor(mode="compiled", **kw):
    return Bench.from_programs(Motor(), mode=mode, **kw)


# -- names --------------------------------------------------------------------------------


def test_short_full_and_address_names_read_the_same_variable():
    with motor(record=False) as b:
        b.set(start=True)
        b.run_cycles(1)
        assert b["running"] is b.read("motor.running") is b.read("%QX0.0") is True
        assert b.resolve("%IX0.1") == "motor.stop"


def test_an_unknown_name_is_named_with_the_closest_names():
    with motor(record=False) as b:
        with pytest.raises(
            UnknownName, match=r"no variable 'runing' \(did you mean motor\.running"
        ):
            b.read("runing")
        with pytest.raises(UnknownName, match="speed_sp"):
            b.set(speed_setpoint=3.0)
        with pytest.raises(UnknownName, match=r"did you mean motor\.start"):
            b.run_until("strat", timeout="1s")


def test_a_name_two_programs_share_is_ambiguous_and_the_full_names_are_listed():
    with Bench.from_programs(Motor(), Fan(), record=False) as b:
        with pytest.raises(UnknownName, match=r"ambiguous: motor\.running, fan\.running"):
            b.read("running")
        assert b.read("fan.running") is False


def test_set_refuses_outputs_and_points_to_force():
    with motor(record=False) as b, pytest.raises(ConfigError, match=r"is an output.*force"):
        b.set(running=True)


# -- driving ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_set_memory_setpoints_and_read_outputs_after_a_run(mode):
    with motor(mode, record=False) as b:
        b.set(start=True, speed_sp=75.5)
        b.run_for("400ms")
        assert (b["running"], b["at_speed"], b["speed"]) == (True, False, 0.0)
        b.run_for(timedelta(milliseconds=200))
        assert (b["at_speed"], b["speed"]) == (True, 75.5)
        assert b.time_ns == 600_000_000 and b.cycle == 60


def test_pulse_sets_the_input_for_its_width_and_restores_it():
    with motor(record=False) as b:
        b.pulse("start", "50ms")
        assert b.time_ns == 50_000_000
        assert b["start"] is True  # the restoring write lands at the next cycle
        b.step()
        assert b["start"] is False and b["running"] is True
        with pytest.raises(ConfigError, match="not a BOOL"):
            b.pulse("divisor", "10ms")
        b.pulse("divisor", "10ms", value=4)
        assert b["ratio"] == 25
        b.step()
        assert b["divisor"] == 1


def test_force_holds_an_output_until_unforce():
    with motor(record=False) as b:
        b.set(start=True)
        b.force(running=False)
        b.run_for("1s")
        assert b["running"] is False  # held after the programs too
        assert b.forced == {"motor.running": False}
        b.unforce("running")
        b.run_for("100ms")
        assert b["running"] is True and b.forced == {}
        b.force({"motor.stop": True})
        b.unforce()
        assert b.forced == {}


def test_run_until_returns_the_time_it_took_and_accepts_callables():
    with motor(record=False) as b:
        assert b.run_until("not running", timeout="1s") == 0
        b.set(start=True)
        assert b.run_until("at_speed", timeout="2s") == 510_000_000
        b.set(stop=True)
        took = b.run_until(lambda bench: not bench["running"], timeout="1s")
        assert took == 10_000_000


def test_run_until_sees_edges_between_cycles():
    with motor(record=False) as b:
        b.set(start=True)
        b.run_until("rose(at_speed)", timeout="2s")
        assert b.time_ns == 510_000_000


def test_run_until_times_out_with_the_state_of_the_involved_variables():
    with motor(record=False) as b:
        b.set(speed_sp=10.0)
        with pytest.raises(BenchTimeout) as ei:
            b.run_until("running and speed > 20", timeout="300ms")
    e = ei.value
    assert e.cycle == 30 and e.t_ns == 300_000_000
    assert e.values == {"motor.running": False, "motor.speed": 0.0}
    text = str(e)
    assert "run_until('running and speed > 20', timeout='300ms') timed out" in text
    assert "cycle 30 (t = 0.300 s" in text
    assert "motor.running = False" in text and "motor.speed = 0.0" in text


def test_a_callable_condition_reports_the_variables_it_read():
    with motor(record=False) as b, pytest.raises(BenchTimeout) as ei:
        b.run_until(lambda x: x["ratio"] > 100, timeout="50ms")
    assert ei.value.values == {"motor.ratio": 100}


def test_bad_durations_and_conditions_are_refused_before_running():
    with motor(record=False) as b:
        with pytest.raises(ConfigError, match="negative"):
            b.run_for("-1s")
        with pytest.raises(ConfigError, match="run_until timeout"):
            b.run_until("running", timeout=1.5)
        with pytest.raises(ConfigError, match="not allowed"):
            b.run_until("running()", timeout="1s")
        with pytest.raises(ConfigError, match="n must be an integer"):
            b.run_cycles(-1)
        assert b.cycle == 0


# -- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_fault_during_a_run_raises_runtime_faulted_with_its_cause_and_cycle(mode):
    with motor(mode, record=False) as b:
        b.run_for("1s")
        b.set(divisor=0)
        with pytest.raises(RuntimeFaulted) as ei:
            b.run_for("10s")
        e = ei.value
        assert (e.kind, e.program, e.task, e.cycle, e.t_ns) == (
            "program",
            "motor",
            "main",
            100,
            1_000_000_000,
        )
        assert "division by zero" in e.cause
        assert "run_for('10s'): the engine entered FAULT at cycle 100 (t = 1.000 s)" in str(e)
        # The run stopped soon after the fault instead of running the whole 10 s.
        assert b.time_ns <= 2_000_000_000
        assert b.state == "FAULT"


def test_a_fault_is_reported_once():
    with motor(record=False) as b:
        b.set(divisor=0)
        with pytest.raises(RuntimeFaulted):
            b.step()
        b.run_for("100ms")  # the same fault: the test has seen it
        b.check_no_fault()


def test_run_until_raises_at_a_fault_instead_of_waiting_for_the_timeout():
    with motor(record=False) as b:
        b.set(divisor=0)
        with pytest.raises(RuntimeFaulted, match="run_until"):
            b.run_until("running", timeout="5s")
        assert b.cycle == 1


def test_expect_fault_catches_the_fault_and_fails_without_one():
    with motor(record=False) as b:
        with pytest.raises(FaultNotRaised, match="expected the engine to enter FAULT"):
            b.run_for("100ms", expect_fault=True)
        b.set(divisor=0)
        b.run_for("100ms", expect_fault=True)
        assert b.fault["cycle"] == 10
    with motor(record=False) as b:
        with b.expect_fault() as caught:
            b.run_for("100ms")
            b.set(divisor=0)
            b.run_for("100ms")
        assert caught.fault is not None and caught.fault["kind"] == "program"
        with pytest.raises(FaultNotRaised, match="without a fault"), b.expect_fault():
            b.run_for("10ms")


def test_a_fault_caused_outside_the_bench_verbs_is_reported_by_check_no_fault():
    with motor(record=False) as b:
        b.set(divisor=0)
        b.engine.run_cycles(3)  # the test drives the engine directly
        with pytest.raises(RuntimeFaulted, match="at the end of the test"):
            b.check_no_fault()


def test_a_fault_inside_expect_fault_from_a_direct_engine_call_counts():
    with motor(record=False) as b, b.expect_fault() as caught:
        b.set(divisor=0)
        b.engine.run_cycles(1)
    assert caught.fault is not None


# -- recording ----------------------------------------------------------------------------


def test_the_recording_covers_every_cycle_across_reads_and_runs():
    with motor() as b:
        b.set(start=True)
        b.run_for("300ms")
        first = b.recorded()
        assert first.rows == 30 and first.cycle.tolist() == list(range(30))
        b.run_for("200ms")
        rec = b.recorded()
        assert len(rec.paths) == 2
        assert rec.cycle.tolist() == list(range(50))
        assert rec.t_ns.tolist() == [k * 10_000_000 for k in range(50)]
        assert rec["running"].all() and rec["at_speed"].sum() == 0


def test_a_bench_without_recording_says_so():
    with motor(record=False) as b, pytest.raises(StateError, match="record=False"):
        b.recorded()


def test_outside_pytest_the_traces_go_with_the_bench_unless_kept(outside_pytest_scope):
    b = motor()
    b.run_for("50ms")
    paths = b.trace_paths
    assert Path(paths[0]).is_file()
    b.close()
    assert not Path(paths[0]).exists()
    b = motor()
    b.run_for("50ms")
    kept = b.keep_traces()
    b.close()
    assert Path(kept[0]).is_file()
    Path(kept[0]).unlink()


def test_a_bench_records_into_a_given_folder(tmp_path):
    with motor(trace_dir=tmp_path) as b:
        b.run_for("20ms")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["motor.trace"]


# -- construction -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_from_file_runs_the_file_with_its_plant(mode):
    with Bench.from_file(PROGRAMS / "tank.py", mode=mode, record=False) as b:
        b.run_for("20s")
        assert 39.0 < b["level"] < 61.0
    with Bench.from_file(PROGRAMS / "tank.py", plant=None, record=False) as b:
        b.run_for("1s")
        assert b["level"] == 0.0  # no plant writes it


def test_each_bench_from_a_file_gets_its_own_plant():
    with Bench.from_file(PROGRAMS / "tank.py", record=False) as a:
        a.set(enable=False)
        a.run_for("5s")
        with Bench.from_file(PROGRAMS / "tank.py", record=False) as b:
            b.run_for("10ms")
            assert b["level"] > 49.0 and a["level"] < 30.0


def test_from_engine_leaves_the_engine_open_and_real_time_is_refused():
    plc = Engine(clock="virtual", cycle="10ms")
    plc.add_program(Motor())
    with Bench.from_engine(plc, record=False) as b:
        b.run_for("10ms")
    assert plc.state == "RUN"
    plc.close()
    with pytest.raises(ConfigError, match="virtual time"):
        Bench(Engine(clock="real"))


def test_a_closed_bench_refuses_to_run():
    b = motor(record=False)
    b.close()
    b.close()
    with pytest.raises(StateError, match="closed"):
        b.run_for("1s")


def test_a_missing_program_file_is_named():
    with pytest.raises(ConfigError, match=r"nope\.py"):
        Bench.from_file("nope.py")
