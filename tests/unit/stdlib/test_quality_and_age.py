"""QUALITY and AGE: programs read the quality and data age of their inputs, with the
same results compiled and in reference mode (virtual time, inputs written from Python,
which stamps them with the cycle's now)."""

import pytest
import softplc
from softplc import (
    AGE,
    ARRAY,
    BAD,
    BOOL,
    GOOD,
    INT,
    QUALITY,
    REAL,
    STALE,
    TIME,
    USINT,
    Engine,
    Input,
    Memory,
    Output,
    function_block,
    ms,
    program,
    s,
)
from softplc.compiler import CompileError, compile_instance
from softplc.differential import run_both, run_mode
from softplc.iectypes import type_of

MODES = ("compiled", "reference")
CYCLE_NS = 10_000_000


@program
class Freshness:
    level = Input(REAL)
    sw = Input(ARRAY(BOOL, 3))
    pick = Input(INT)
    q = Output(USINT)
    age = Output(TIME)
    q_pick = Output(USINT)
    age_pick = Output(TIME)
    age_sw0 = Output(TIME)
    fresh = Output(BOOL)
    all_good = Output(BOOL)

    def scan(self):
        self.q = QUALITY(self.level)
        self.age = AGE(self.level)
        self.q_pick = QUALITY(self.sw[self.pick])
        self.age_pick = AGE(self.sw[self.pick])
        self.age_sw0 = AGE(self.sw[0])
        self.fresh = self.level_fresh()
        ok = True
        for i in range(3):
            if QUALITY(self.sw[i]) != GOOD:
                ok = False
        self.all_good = ok and QUALITY(self.level) == GOOD

    def level_fresh(self):
        return AGE(self.level) < ms(25)


def test_quality_codes_are_usint_constants_exported_by_the_package():
    assert (GOOD, BAD, STALE) == (0, 1, 2)
    assert {type_of(c) for c in (GOOD, BAD, STALE)} == {"USINT"}
    assert {"GOOD", "BAD", "STALE"} <= set(softplc.__all__)
    assert softplc.QUALITY is softplc.stdlib.QUALITY and softplc.AGE is softplc.stdlib.AGE


@pytest.mark.parametrize("mode", MODES)
def test_age_is_the_time_since_the_python_write_landed(mode):
    # Written before cycle 0, so stamped with cycle 0's now: the 5th scan sees 40 ms.
    rows = run_mode(Freshness, [{"freshness.level": 2.5}] + [{}] * 4, mode=mode)
    assert [r["@fault"] for r in rows] == [None] * 5
    assert rows[4]["freshness.age"] == 40_000_000
    assert [r["freshness.age"] for r in rows] == [k * CYCLE_NS for k in range(5)]
    assert [r["freshness.fresh"] for r in rows] == [True, True, True, False, False]
    assert all(r["freshness.q"] == 0 and r["freshness.all_good"] for r in rows)


@pytest.mark.parametrize("mode", MODES)
def test_a_new_write_restarts_the_age_and_quality_stays_good(mode):
    steps = [{"freshness.level": 1.0}, {}, {}, {"freshness.level": 1.0}, {}, {}]
    rows = run_mode(Freshness, steps, mode=mode)
    assert [r["freshness.age"] // CYCLE_NS for r in rows] == [0, 1, 2, 0, 1, 2]
    assert {r["freshness.q"] for r in rows} == {0}


@pytest.mark.parametrize("mode", MODES)
def test_an_element_picked_at_run_time_reports_its_own_age(mode):
    # sw[1] written at cycle 2, sw[2] never: an input nobody wrote is as old as the run.
    steps = [{"freshness.pick": 1}, {}, {"freshness.sw[1]": True}, {}, {"freshness.pick": 2}]
    rows = run_mode(Freshness, steps, mode=mode)
    assert [r["freshness.age_pick"] // CYCLE_NS for r in rows] == [0, 1, 0, 1, 4]
    assert [r["freshness.age_sw0"] // CYCLE_NS for r in rows] == [0, 1, 2, 3, 4]
    assert {r["freshness.q_pick"] for r in rows} == {0}


def test_compiled_and_reference_agree_cycle_for_cycle():
    steps = [
        {"freshness.level": 10.0, "freshness.pick": 2},
        {},
        {"freshness.sw[2]": True},
        {},
        {"freshness.level": 11.0, "freshness.pick": 0},
        {},
        {},
        {"freshness.sw[0]": False, "freshness.pick": 1},
        {},
        {"freshness.pick": 3},  # out of range: both fault in the same cycle
        {},
    ]
    rows = run_both(Freshness, steps)
    assert rows[8]["@fault"] is None and rows[9]["@state"] == "FAULT"
    assert "out of range" in rows[9]["@fault"]


@pytest.mark.parametrize("mode", MODES)
def test_age_is_read_from_the_cycle_now_seen_by_every_program(mode):
    # Two programs in one task see the same now, hence the same age.
    @program
    class Second:
        level = Input(REAL)
        age = Output(TIME)

        def scan(self):
            self.age = AGE(self.level)

    with Engine(clock="virtual", cycle="10ms") as plc:
        plc.add_program(Freshness(), mode=mode)
        plc.add_program(Second(), mode=mode)
        plc.start()
        plc.write("freshness.level", 3.0)
        plc.write("second.level", 3.0)
        plc.run_cycles(3)
        assert plc.read("freshness.age") == plc.read("second.age") == 20_000_000
        assert plc.age_ns("freshness.level") == 20_000_000


@program
class AgeOfMemory:
    m = Memory(REAL)
    a = Output(TIME)

    def scan(self):
        self.a = AGE(self.m)


@program
class QualityOfLocal:
    level = Input(REAL)
    q = Output(USINT)

    def scan(self):
        x = self.level
        self.q = QUALITY(x)


@program
class QualityOfWholeArray:
    sw = Input(ARRAY(BOOL, 2))
    q = Output(USINT)

    def scan(self):
        self.q = QUALITY(self.sw)


@function_block
class Watch:
    raw = Input(REAL)
    q = Output(USINT)

    def scan(self):
        self.q = QUALITY(self.raw)


@program
class QualityInBlock:
    level = Input(REAL)
    w = Watch()
    q = Output(USINT)

    def scan(self):
        self.w(raw=self.level)
        self.q = self.w.q


BAD_ARGUMENTS = {
    AgeOfMemory: "memory variable",
    QualityOfLocal: "not x",
    QualityOfWholeArray: "is an array",
    QualityInBlock: "function block Watch",
}


@pytest.mark.parametrize("cls", list(BAD_ARGUMENTS), ids=lambda c: c.__name__)
def test_reference_mode_refuses_what_the_compiler_refuses(cls):
    with pytest.raises(CompileError) as ei:
        compile_instance(cls())
    assert ei.value.hint, str(ei.value)
    with Engine(clock="virtual", cycle="10ms") as plc:
        plc.add_program(cls(), mode="reference")
        plc.start()
        plc.run_cycles(1)
        assert plc.state == "FAULT"
        message = plc.fault["message"]
    assert BAD_ARGUMENTS[cls] in message, message
    if cls is not QualityOfLocal:
        assert BAD_ARGUMENTS[cls] in str(ei.value), str(ei.value)


def test_quality_outside_a_program_scan_is_refused():
    with pytest.raises(TypeError, match="input variable of the program"):
        QUALITY(1.0)


@pytest.mark.parametrize("mode", ["compiled", "reference"])
def test_a_held_quality_and_age_reach_the_program_until_released(mode):
    from softplc import AGE, BAD, GOOD, QUALITY, REAL, Input, Output, program

    @program
    class Watch:
        level = Input(REAL)
        bad = Output(BOOL)
        old = Output(BOOL)

        def scan(self):
            self.bad = QUALITY(self.level) == BAD
            self.old = QUALITY(self.level) == GOOD and AGE(self.level) > s(1)

    with Engine(clock="virtual", cycle="10ms") as e:
        e.add_program(Watch(), mode=mode)
        e.start()
        e.run_cycles(300)
        e.hold_quality("watch.level", "bad")
        e.run_cycles(1)
        assert (e.read("watch.bad"), e.read("watch.old")) == (True, False)
        e.hold_quality("watch.level", "good", age="1.5s")
        e.run_cycles(1)
        assert (e.read("watch.bad"), e.read("watch.old")) == (False, True)
        e.hold_quality("watch.level", None)
        e.write("watch.level", 1.0)  # a fresh value: good and young again
        e.run_cycles(1)
        assert (e.read("watch.bad"), e.read("watch.old")) == (False, False)
