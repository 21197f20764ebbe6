"""Enumerations (IntEnum classes as types) and ``match``: alike in both modes, a jump
table where the cases are dense, errors at their place, members by name in the API,
write rules and traces."""

import enum
from pathlib import Path

import msgpack
import pytest
from softplc import ARRAY, BOOL, INT, REAL, Engine, Input, InvalidValue, Memory, Output, program
from softplc.compiler import CompileError, compile_instance
from softplc.differential import run_both
from softplc.stdlib import TO_INT

SOURCE = Path(__file__).read_text().splitlines()


def where(marker, token):
    for i, line in enumerate(SOURCE, start=1):
        if line.rstrip().endswith(f"# E:{marker}"):
            return i, line.index(token) + 1
    raise AssertionError(f"no marker {marker}")


class Phase(enum.IntEnum):
    RED = 0
    GREEN = 1
    YELLOW = 2
    OFF = 7


class Mode(enum.IntEnum):
    AUTO = 1
    HAND = 2


@program
class Light:
    n = Input(INT)
    go = Input(BOOL)
    cmd = Input(Phase)
    phase = Memory(Phase)
    hist = Memory(ARRAY(Phase, 3), [Phase.OFF, Phase.OFF, Phase.OFF])
    code = Output(INT)
    kind = Output(INT)

    def scan(self):
        match self.phase:
            case Phase.RED:
                if self.go:
                    self.phase = Phase.GREEN
            case Phase.GREEN | Phase.YELLOW:
                self.phase = Phase.YELLOW if self.phase == Phase.GREEN else Phase.RED
            case _:
                self.phase = self.cmd
        self.hist[TO_INT(self.phase) % 3] = self.phase
        self.code = TO_INT(self.phase) * 10
        match self.n:
            case 0 | 1:
                self.kind = 1
            case 2:
                self.kind = 2
            case 5:
                self.kind = 5
            case k if k > 100:
                self.kind = k // 2
            case _:
                self.kind = -1
        if self.n == 7 or self.n == 9:
            self.phase = Phase(self.n)


def test_enums_and_match_agree_in_both_modes_including_a_conversion_that_faults():
    p = "light."
    steps = [
        {p + "go": True, p + "n": 2, p + "cmd": Phase.GREEN},
        {},
        {p + "n": 5},
        {p + "n": 300},
        {p + "n": 7},
        {p + "n": 1},
        {p + "n": 9},
    ]
    rows = run_both(Light, steps)
    assert [r[p + "phase"] for r in rows[:3]] == [1, 2, 0]
    assert [r[p + "kind"] for r in rows[:6]] == [2, 2, 5, 150, -1, 1]
    assert rows[-1]["@fault"] is not None and "Phase" in rows[-1]["@fault"]


def test_dense_cases_take_a_jump_table_and_a_guard_a_chain():
    ops = [op for op, _ in msgpack.unpackb(compile_instance(Light()))["code"]]
    assert ops.count("jtab") == 1


def test_enum_variables_read_as_members_and_refuse_other_values_from_outside():
    with Engine(clock="virtual") as plc:
        plc.add_program(Light())
        plc.start()
        plc.write("light.cmd", "YELLOW")
        plc.run_cycles(1)
        assert plc.read("light.phase") is Phase.RED
        assert plc.read("light.cmd") is Phase.YELLOW
        with pytest.raises(InvalidValue, match="not a value of the variable's enumeration"):
            plc.write("light.cmd", 3)
        with pytest.raises(InvalidValue, match="members: RED, GREEN, YELLOW, OFF"):
            plc.write("light.cmd", "BLUE")
        plc.write("light.cmd", Phase.OFF)
        plc.run_cycles(1)
        assert plc.read("light.cmd") is Phase.OFF


def test_a_trace_names_the_values_of_an_enumeration(tmp_path):
    from softplc import trace
    from softplc.cli import main

    path = tmp_path / "light.trace"
    with Engine(clock="virtual") as plc:
        plc.add_program(Light())
        plc.start()
        plc.start_trace(path, signals=["light.phase", "light.code"])
        plc.write("light.go", True)
        plc.run_cycles(3)
        plc.stop_trace()
    tr = trace.load(path)
    sig = {s.name: s for s in tr.signals}["light.phase"]
    assert sig.labels == {0: "RED", 1: "GREEN", 2: "YELLOW", 7: "OFF"}
    assert tr["light.phase"].tolist() == [1, 2, 0]
    assert main(["trace", "show", str(path), "-s", "light.phase"]) == 0


def test_trace_show_prints_member_names(tmp_path, capsys):
    from softplc.cli import main

    path = tmp_path / "l.trace"
    with Engine(clock="virtual") as plc:
        plc.add_program(Light())
        plc.start()
        plc.start_trace(path, signals=["light.phase"])
        plc.write("light.go", True)
        plc.run_cycles(3)
        plc.stop_trace()
    capsys.readouterr()
    assert main(["trace", "show", str(path), "-s", "light.phase"]) == 0
    out = capsys.readouterr().out
    assert "GREEN" in out and "YELLOW" in out and "RED" in out


@program
class MatchOverReal:
    r = Input(REAL)
    y = Output(INT)

    def scan(self):
        match self.r:  # E:match-real
            case 1.0:
                self.y = 1


@program
class EnumArithmetic:
    phase = Memory(Phase)
    y = Output(INT)

    def scan(self):
        self.y = self.phase + 1  # E:enum-add


@program
class EnumFromInt:
    phase = Memory(Phase)

    def scan(self):
        self.phase = 1  # E:enum-int


@program
class OtherEnumPattern:
    phase = Memory(Phase)
    y = Output(INT)

    def scan(self):
        match self.phase:
            case Mode.AUTO:  # E:other-enum
                self.y = 1


@program
class EnumOrdered:
    phase = Memory(Phase)
    y = Output(BOOL)

    def scan(self):
        self.y = self.phase < Phase.GREEN  # E:enum-order


@program
class NotAMember:
    phase = Memory(Phase)

    def scan(self):
        self.phase = Phase(3)  # E:not-member


@pytest.mark.parametrize(
    ("cls", "marker", "token", "construct", "words"),
    [
        (MatchOverReal, "match-real", "self.r", "match subject", "REAL"),
        (EnumArithmetic, "enum-add", "self.phase + 1", "operator +", "TO_INT"),
        (EnumFromInt, "enum-int", "self.phase", "enumeration value", "Phase.RED"),
        (OtherEnumPattern, "other-enum", "Mode.AUTO", "enumeration value", "got Mode"),
        (EnumOrdered, "enum-order", "self.phase <", "comparison <", "== and !="),
        (NotAMember, "not-member", "Phase(3)", "Phase()", "3 is not a value"),
    ],
)
def test_each_enum_and_match_error_is_reported_at_its_place(cls, marker, token, construct, words):
    with pytest.raises(CompileError) as ei:
        compile_instance(cls())
    e = ei.value
    assert (e.line, e.column) == where(marker, token), str(e)
    assert e.construct == construct, str(e)
    assert words in str(e), str(e)


def test_an_initial_value_that_is_no_member_is_refused_where_declared():
    from softplc import ConfigError

    with pytest.raises(ConfigError, match="not a member of Phase"):
        Memory(Phase, 3)
    with pytest.raises(ConfigError, match="takes a min or max"):
        Memory(Phase, min=Phase.RED)


def test_a_stimulus_writes_members_by_name_and_refuses_other_values_by_place(tmp_path):
    from softplc import ConfigError
    from softplc.stimulus import load_stimulus

    good = tmp_path / "good.csv"
    good.write_text("light.cmd,light.go\nYELLOW,1\n1,0\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("light.cmd\nGREEN\n5\n")
    with Engine(clock="virtual") as plc:
        plc.add_program(Light())
        plc.start()
        stim = load_stimulus(good)
        stim.bind(plc)
        assert stim.row(0) == {"light.cmd": 2, "light.go": True}
        with pytest.raises(ConfigError, match=r"bad.csv: row 3, column 1 .*'5' is not a member"):
            load_stimulus(bad).bind(plc)


@program
class Holes:
    n = Input(INT)
    y = Output(INT)

    def scan(self):
        match self.n:
            case 2 | 9:
                self.y = 1
            case 5:
                self.y = 2
            case -3 | 6:
                self.y = 3
            case _:
                self.y = 4


def test_a_value_between_the_cases_of_a_jump_table_takes_the_default_case():
    # The values -3..9 go through one table; 0 is in its range but no case's value.
    rows = run_both(Holes, [{"holes.n": n} for n in (-3, 0, 2, 3, 6, 9, 10, -4)])
    assert [r["holes.y"] for r in rows] == [3, 4, 1, 4, 3, 1, 4, 4]
    assert "jtab" in [op for op, _ in msgpack.unpackb(compile_instance(Holes()))["code"]]
