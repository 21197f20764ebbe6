"""Constants: module-level and class-level names bound to numbers, typed values,
durations, strings and enumeration members are folded into the code, alike in both
modes; assigning one is a compile error at its place."""

import enum
from pathlib import Path

from softplc import DINT, INT, REAL, STRING, TIME, Input, Output, program
from softplc.compiler import CompileError, compile_instance
from softplc.differential import run_both
from softplc.stdlib import TO_INT, TO_REAL, ms

SOURCE = Path(__file__).read_text().splitlines()


class Mode(enum.IntEnum):
    OFF = 0
    ON = 1


LIMIT = 100  # untyped: takes the type it meets
STEP = TO_INT(7)  # typed INT
GAIN = TO_REAL(0.5)
HOLD = ms(250)
NAME = "line 1"
DEFAULT_MODE = Mode.ON


@program
class UsesConstants:
    x = Input(INT)
    y = Output(DINT)
    r = Output(REAL)
    t = Output(TIME)
    label = Output(STRING(10))
    mode = Output(Mode)
    OFFSET = 3  # a class constant

    def scan(self):
        self.y = self.x * STEP + LIMIT + self.OFFSET
        self.r = TO_REAL(self.x) * GAIN
        self.t = HOLD * 2
        self.label = NAME + "!"
        self.mode = DEFAULT_MODE if self.x > LIMIT else Mode.OFF


def test_constants_fold_alike_in_both_modes():
    rows = run_both(UsesConstants, [{"uses_constants.x": 5}, {"uses_constants.x": 200}])
    p = "uses_constants."
    assert rows[0][p + "y"] == 5 * 7 + 100 + 3 and rows[0][p + "r"] == 2.5
    assert rows[0][p + "t"] == 500_000_000 and rows[0][p + "label"] == "line 1!"
    assert rows[0][p + "mode"] == Mode.OFF and rows[1][p + "mode"] == Mode.ON


@program
class AssignsConstant:
    y = Output(INT)
    OFFSET = 3

    def scan(self):
        self.OFFSET = 4  # E:assign
        self.y = self.OFFSET


def test_assigning_a_constant_is_an_error_at_its_place():
    try:
        compile_instance(AssignsConstant())
    except CompileError as e:
        err = e.errors[0]
    else:
        raise AssertionError("compiled")
    line = next(i for i, s in enumerate(SOURCE, 1) if s.rstrip().endswith("# E:assign"))
    assert (err.line, err.column) == (line, SOURCE[line - 1].index("self.OFFSET") + 1)
    assert "self.OFFSET is a constant" in str(err) and "Memory(" in str(err), str(err)
