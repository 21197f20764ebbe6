"""BenchMachine: a Hypothesis state machine that owns a bench per run."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import invariant, rule
from softplc import ConfigError, RuntimeFaulted
from softplc.testing import Bench
from softplc.testing.stateful import BenchMachine

from tests.unit.testing.benchprogs import Motor

# Without the explain phase: after tests/unit/test_watchdog.py has interrupted a stuck
# Python program, Hypothesis's explain phase (its line tracer) never finishes on a
# failing example; the machines here that fail on purpose do not need it.
FAST = settings(
    max_examples=5,
    stateful_step_count=6,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)


def run_machine(machine: type[BenchMachine]) -> None:
    machine.TestCase.settings = FAST
    machine.TestCase().runTest()


class MotorMachine(BenchMachine):
    made: list[Bench] = []  # noqa: RUF012 (shared on purpose: the test reads it)

    def make_bench(self) -> Bench:
        bench = Bench.from_programs(Motor(), record=False)
        MotorMachine.made.append(bench)
        return bench

    @rule()
    def press_start(self):
        self.bench.pulse("start", "20ms")

    @rule()
    def press_stop(self):
        self.bench.pulse("stop", "20ms")

    @rule()
    def wait(self):
        self.bench.run_for("300ms")

    @invariant()
    def speed_only_at_speed(self):
        assert (self.bench["speed"] > 0) == self.bench["at_speed"]


def test_each_run_gets_a_fresh_bench_closed_in_teardown():
    MotorMachine.made.clear()
    run_machine(MotorMachine)
    assert len(MotorMachine.made) >= 5
    assert all(b.closed for b in MotorMachine.made)
    assert len({id(b) for b in MotorMachine.made}) == len(MotorMachine.made)


class FaultingMachine(BenchMachine):
    def make_bench(self) -> Bench:
        return Bench.from_programs(Motor(), record=False)

    @rule()
    def divide_by_zero(self):
        self.bench.set(divisor=0)
        self.bench.run_for("10ms")


def test_a_fault_in_a_rule_fails_the_machine_with_runtime_faulted():
    with pytest.raises(RuntimeFaulted, match="division by zero"):
        run_machine(FaultingMachine)


class TankMachine(BenchMachine):
    program = "../../../programs/tank.py"  # found beside this file

    @rule()
    def run(self):
        self.bench.run_for("1s")

    @invariant()
    def level_in_the_tank(self):
        assert 0.0 <= self.bench["level"] <= 100.0


def test_program_is_found_relative_to_the_machine_s_file():
    run_machine(TankMachine)


class NoProgram(BenchMachine):
    @rule()
    def nothing(self):
        pass


def test_a_machine_without_a_program_says_what_to_set():
    with pytest.raises(ConfigError, match="set program ="):
        run_machine(NoProgram)
