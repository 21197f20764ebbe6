"""Global variables: declared once, named by programs in any task, the same in both
modes; a second declaration of a name with another type is an error naming both."""

import textwrap

import pytest
from softplc import DINT, INT, REAL, ConfigError, Engine, Global, Memory, Output, program
from softplc.loader import load_program_file

TASKS_SRC = """
    from softplc import BOOL, DINT, INT, Field, Global, Input, Output, Task, program, struct


    @struct
    class Belt:
        parts = Field(DINT)
        jam = Field(BOOL)


    belt = Global(Belt)
    speed = Global(INT, 3, address="%MW100")


    @program
    class Tracker:
        eye = Input(BOOL)
        line = belt
        v = speed

        def scan(self):
            if self.eye:
                self.line.parts += self.v
            self.line.jam = self.line.parts > 40


    @program
    class Sequencer:
        line = belt
        v = speed
        seen = Output(DINT)
        slow = Output(BOOL)

        def scan(self):
            self.seen = self.line.parts
            if self.line.jam:
                self.v = 1
            self.slow = self.v < 3


    TASKS = [
        Task("fast", period="1ms", programs=[Tracker], priority=0),
        Task("slow", period="5ms", programs=[Sequencer], priority=1),
    ]
"""


def run(path, mode, cycles=60):
    pf = load_program_file(path)
    rows = []
    with pf.build_engine(clock="virtual", mode=mode) as plc:
        plc.start()
        for k in range(cycles):
            plc.write("tracker.eye", k % 2 == 0)
            plc.run_cycles(1)
            rows.append(dict(plc.snapshot().values()))
    return rows


def test_globals_shared_by_two_tasks_agree_in_both_modes(tmp_path):
    path = tmp_path / "plant.py"
    path.write_text(textwrap.dedent(TASKS_SRC))
    compiled = run(path, "compiled")
    assert compiled == run(path, "reference")
    last = compiled[-1]
    assert last["belt.jam"] is True and last["speed"] == 1 and last["sequencer.slow"] is True
    # The slow task reads what the fast one wrote before it: never more than the
    # fast task's last value.
    assert all(r["sequencer.seen"] <= r["belt.parts"] for r in compiled)


def test_a_global_keeps_its_name_and_address(tmp_path):
    path = tmp_path / "plant.py"
    path.write_text(textwrap.dedent(TASKS_SRC))
    with load_program_file(path).build_engine(clock="virtual") as plc:
        plc.start()
        v = {x["name"]: x["address"] for x in plc.variables}
        assert v["speed"] == "%MW100" and "belt.parts" in v and "tracker.line" not in str(v)
        assert plc.read("speed") == 3


parts_a = Global(DINT)
parts_b = Global(REAL, name="parts_a")


@program
class UsesA:
    p = parts_a
    y = Output(DINT)

    def scan(self):
        self.p += 1
        self.y = self.p


@program
class UsesB:
    p = parts_b
    y = Output(REAL)

    def scan(self):
        self.y = self.p


def test_a_global_declared_twice_with_different_types_is_an_error_naming_both():
    with Engine(clock="virtual") as plc:
        plc.add_program(UsesA())
        with pytest.raises(ConfigError) as ei:
            plc.add_program(UsesB())
    msg = str(ei.value)
    assert "'parts_a' is declared twice" in msg and "DINT" in msg and "REAL" in msg
    assert "test_globals.py" in msg


def test_a_global_the_compiler_and_reference_mode_read_by_its_own_name():
    from softplc.differential import run_both

    rows = run_both(lambda: [UsesA(name="a1"), UsesA(name="a2")], [{}] * 3)
    # Both programs count the one global.
    assert [r["parts_a"] for r in rows] == [2, 4, 6]
    assert [r["a2.y"] for r in rows] == [2, 4, 6]


def test_a_global_without_a_module_name_is_refused_with_its_place():
    def make():
        return Global(INT)

    g = make()
    with pytest.raises(ConfigError, match=r"test_globals\.py:\d+ has no name"):
        _ = g.global_name
    with pytest.raises(ConfigError, match="function block does not name globals"):
        from softplc import function_block

        @function_block
        class Bad:
            x = parts_a

            def scan(self):
                pass

    _ = Memory
