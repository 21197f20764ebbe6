"""Compiled and reference mode agree where Python's evaluation order or unbounded
integers make it subtle: shifts with computed counts, block calls whose keyword values
read the block's own inputs, augmented assignment around a method that changes its
target, helper parameters and loops over user blocks. Plus the compile errors these
cases produce where the compiled form cannot follow Python."""

from pathlib import Path

import pytest
from elsewhere_helpers import big_cmp, ratio
from softplc import (
    BOOL,
    DINT,
    INT,
    LINT,
    SINT,
    UDINT,
    ULINT,
    USINT,
    Input,
    Memory,
    Output,
    function_block,
    program,
)
from softplc.compiler import CompileError, compile_instance
from softplc.differential import run_both
from softplc.stdlib import RS, SR, TO_DINT, TO_INT, TO_LINT, TO_SINT, TO_UDINT, TO_ULINT

SOURCE = Path(__file__).read_text().splitlines()


def where(marker, token):
    """(line, column) of ``token`` on the line ending with ``# E:marker``."""
    for i, line in enumerate(SOURCE, start=1):
        if line.rstrip().endswith(f"# E:{marker}"):
            return i, line.index(token) + 1
    raise AssertionError(f"no marker {marker}")


# -- shifts -------------------------------------------------------------------------------


@program
class TypedShifts:
    n = Input(INT)
    un = Input(USINT)
    x = Input(DINT)
    y1 = Output(DINT)
    y2 = Output(DINT)
    y3 = Output(ULINT)
    y4 = Output(SINT)
    y5 = Output(LINT)
    y6 = Output(LINT)
    y7 = Output(UDINT)

    def scan(self):
        self.y1 = self.x << self.un
        self.y2 = self.x >> self.un
        self.y3 = TO_ULINT(self.x) >> self.un
        self.y4 = TO_SINT(self.x) << self.un
        self.y5 = 12345 >> self.un
        self.y7 = TO_UDINT(self.x) >> TO_ULINT(self.n)
        self.y6 = TO_LINT(self.x) << self.n


def test_shifts_by_every_typed_count_agree_including_counts_past_the_width():
    steps = [
        {"typed_shifts.n": n, "typed_shifts.un": n % 256, "typed_shifts.x": x}
        for n in [*range(70), 127, 128, 255, 32767]
        for x in (1, -1, -123456, 2**31 - 1)
    ]
    rows = run_both(TypedShifts, steps)
    assert all(r["@fault"] is None for r in rows)
    by = {(s["typed_shifts.n"], s["typed_shifts.x"]): r for s, r in zip(steps, rows, strict=False)}
    assert by[(31, 1)]["typed_shifts.y1"] == -(2**31)  # wraps at DINT
    assert by[(32, 1)]["typed_shifts.y1"] == 0
    assert by[(255, -1)]["typed_shifts.y2"] == -1  # >> of a negative value
    assert by[(63, 1)]["typed_shifts.y6"] == -(2**63)
    assert by[(64, 1)]["typed_shifts.y6"] == 0
    assert by[(3, 1)]["typed_shifts.y5"] == 12345 >> 3


@pytest.mark.parametrize("n", [-1, -32768])
def test_a_negative_typed_shift_count_faults_in_both_modes(n):
    rows = run_both(TypedShifts, [{"typed_shifts.n": n, "typed_shifts.x": 5}])
    assert "negative shift count" in rows[0]["@fault"]


@program
class UntypedShiftByInput:
    n = Input(INT)
    big = Output(BOOL)

    def scan(self):
        self.big = (1 << self.n) > 1000000  # E:untyped-shift


def test_untyped_value_shifted_left_by_a_typed_count_is_a_compile_error():
    # In Python 1 << 70 is a valid number, which a 64-bit cell cannot hold: both modes
    # could not agree, so the compiler refuses and says how to type the value.
    with pytest.raises(CompileError) as ei:
        compile_instance(UntypedShiftByInput())
    e = ei.value
    assert (e.line, e.column) == where("untyped-shift", "1 << self.n")
    assert "-32768..32767" in e.detail and "0..62" in e.detail
    assert "TO_LINT(1) << n" in e.hint


@program
class LoopShift:
    tot = Output(LINT)

    def scan(self):
        t = TO_LINT(0)
        for i in range(63):
            t += (1 << i) >> (i // 2)
        self.tot = t


def test_untyped_shift_by_a_loop_index_within_range_compiles_and_agrees():
    rows = run_both(LoopShift, [{}])
    assert rows[0]["loop_shift.tot"] == sum((1 << i) >> (i // 2) for i in range(63))


# -- evaluation order ------------------------------------------------------------------


@program
class SwapInputs:
    s = Input(BOOL)
    q = Output(BOOL)
    a = Output(BOOL)
    b = Output(BOOL)
    c = Output(BOOL)
    sr = SR()
    rs = RS()
    rss = [RS() for _ in range(2)]  # noqa: RUF012 (an array of blocks)
    k = Memory(INT, 1)

    def scan(self):
        self.sr.S1 = self.s
        self.sr(S1=self.sr.R, R=self.sr.S1)
        self.q = self.sr.Q1
        self.a = self.sr.S1
        self.b = self.sr.R
        self.rs(R1=self.s, S=self.rs.R1)
        self.rss[self.k](R1=self.s, S=self.rss[1].R1)
        self.c = self.rs.S != self.rss[1].S


def test_block_call_keyword_values_are_all_read_before_any_input_is_set():
    p = "swap_inputs."
    rows = run_both(SwapInputs, [{p + "s": True}, {}, {p + "s": False}, {}])
    # Cycle 0: S1 := R (FALSE) and R := S1 (TRUE, set just before), both old values.
    assert (rows[0][p + "a"], rows[0][p + "b"]) == (False, True)
    assert (rows[1][p + "a"], rows[1][p + "b"]) == (True, True)
    # S takes R1's value from before the call (FALSE in cycle 0, TRUE in cycle 1).
    assert [r[p + "c"] for r in rows] == [False, False, False, False]


@function_block
class Bumper:
    x = Input(INT)
    out = Output(INT)
    m = Memory(INT)

    def bump(self):
        self.m = self.m + 10
        return TO_INT(1)

    def scan(self):
        self.m += self.bump()
        self.out = self.m


@program
class AugAroundMethod:
    o = Output(INT)
    mo = Memory(INT)
    a = Bumper()

    def twice(self):
        self.mo = self.mo * 2
        return TO_INT(3)

    def scan(self):
        self.a(x=1)
        self.o = self.a.out
        self.mo += 1
        self.mo += self.twice()


def test_augmented_assignment_reads_its_target_before_the_right_hand_side_runs():
    rows = run_both(AugAroundMethod, [{}] * 3)
    # Python: m = m_old + bump() = m_old + 1 (bump's write of m is overwritten).
    assert [r["aug_around_method.o"] for r in rows] == [1, 2, 3]
    # mo: (mo + 1) + 3 each cycle, the doubling inside twice() is overwritten.
    assert [r["aug_around_method.mo"] for r in rows] == [4, 8, 12]


# -- helpers ----------------------------------------------------------------------------


def clamp0(x):
    if x < 0:
        x = TO_INT(0)
    return x


@program
class ParamAssign:
    a = Input(INT)
    y = Output(INT)
    z = Output(INT)

    def scan(self):
        self.y = clamp0(self.a)
        self.z = clamp0(TO_INT(-5)) + clamp0(TO_INT(4))


@program
class UntypedParamAssign:
    y = Output(INT)

    def scan(self):
        self.y = clamp0(TO_INT(1)) + clamp0(-5)  # E:untyped-arg


def test_a_helper_may_assign_a_parameter_bound_to_a_typed_constant():
    rows = run_both(ParamAssign, [{"param_assign.a": -3}, {"param_assign.a": 7}])
    assert [(r["param_assign.y"], r["param_assign.z"]) for r in rows] == [(0, 4), (7, 4)]


def test_an_untyped_argument_for_an_assigned_parameter_is_reported_at_the_call():
    with pytest.raises(CompileError) as ei:
        compile_instance(UntypedParamAssign())
    e = ei.value
    assert (Path(e.file).name, e.line, e.column) == (
        "test_compiled_semantics.py",
        *where("untyped-arg", "-5"),
    )
    assert "clamp0 assigns 'x'" in e.detail and "untyped integer" in e.detail
    assert "TO_INT" in e.hint


@program
class HelperElsewhere:
    y = Output(INT)

    def scan(self):
        for i in range(3):
            self.y = big_cmp(i)


def test_a_compile_error_in_a_helper_of_another_module_names_that_file_line_and_column():
    with pytest.raises(CompileError) as ei:
        compile_instance(HelperElsewhere())
    e = ei.value
    path = Path(__file__).with_name("elsewhere_helpers.py")
    line = next(
        i for i, t in enumerate(path.read_text().splitlines(), 1) if t.endswith("# E:too-big")
    )
    col = path.read_text().splitlines()[line - 1].index("100000000000000000000000") + 1
    assert (Path(e.file).name, e.line, e.column) == ("elsewhere_helpers.py", line, col)
    assert "64 bits" in e.detail and e.hint


@program
class FaultElsewhere:
    a = Input(INT)
    y = Output(INT)

    def scan(self):
        self.y = ratio(self.a, self.a) + 1


def test_a_fault_in_a_helper_of_another_module_names_that_file_and_line():
    rows = run_both(FaultElsewhere, [{"fault_elsewhere.a": 3}, {"fault_elsewhere.a": 0}])
    assert rows[0]["fault_elsewhere.y"] == 2
    path = Path(__file__).with_name("elsewhere_helpers.py")
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if t.endswith("# E:div"))
    assert f"elsewhere_helpers.py:{line})" in rows[1]["@fault"], rows[1]["@fault"]


@program
class ScanWithIo:
    y = Output(INT)

    def scan(self, io):  # E:scan-io
        self.y = 1


def test_scan_with_an_io_parameter_is_a_compile_error_with_a_hint():
    with pytest.raises(CompileError) as ei:
        compile_instance(ScanWithIo())
    e = ei.value
    assert (e.line, e.column) == where("scan-io", "io")
    assert "takes only self" in e.detail
    assert "def scan(self)" in e.hint


def test_scan_with_an_io_parameter_is_refused_in_reference_mode_too():
    from softplc import Engine, ProgramError

    e = Engine(clock="virtual")
    with pytest.raises(ProgramError, match=r"scan\(self\) takes no other argument"):
        e.add_program(ScanWithIo(), mode="reference")
    e.close()


# -- loops over user blocks -------------------------------------------------------------


@function_block
class Cell:
    en = Input(BOOL)
    n = Output(INT)

    def scan(self):
        if self.en:
            self.n += 1


@program
class UnrollThroughMethods:
    f = Input(BOOL)
    tot = Output(DINT)
    cells = [Cell() for _ in range(3)]  # noqa: RUF012 (an array of blocks)

    def step(self, k):
        self.cells[k](en=self.f and k != 1)
        return TO_DINT(self.cells[k].n)

    def outer(self, k):
        return self.step(k)

    def scan(self):
        s = TO_DINT(0)
        for i in range(3):
            s += self.outer(i)
        for i in range(0):
            self.cells[i](en=True)
        self.tot = s


def test_a_loop_that_indexes_user_blocks_inside_a_method_is_unrolled():
    p = "unroll_through_methods."
    rows = run_both(UnrollThroughMethods, [{p + "f": True}, {}, {p + "f": False}])
    assert [r[p + "tot"] for r in rows] == [2, 4, 4]


@program
class IntTrueDivision:
    y = Output(DINT)

    def scan(self):
        for i in range(3):
            self.y = TO_DINT(i / 2)  # E:int-div


def test_slash_on_untyped_integers_is_a_compile_error_like_on_typed_ones():
    with pytest.raises(CompileError) as ei:
        compile_instance(IntTrueDivision())
    e = ei.value
    assert (e.line, e.column) == where("int-div", "i / 2")
    assert "ambiguous" in e.detail and "//" in e.detail
