"""Locals as a Python user writes them: ``n = 0`` and ``x = 0.0`` take a type (DINT,
LREAL), ``n: INT = 0`` declares one, and the branches of a conditional expression meet
at one type; reference mode applies the same conversions, so both modes wrap alike."""

from pathlib import Path

import pytest
from softplc import BOOL, DINT, INT, LINT, LREAL, SINT, Input, Output, program
from softplc.compiler import CompileError, compile_instance
from softplc.differential import run_both
from softplc.stdlib import TO_DINT

SOURCE = Path(__file__).read_text().splitlines()


def where(marker, token):
    for i, line in enumerate(SOURCE, start=1):
        if line.rstrip().endswith(f"# E:{marker}"):
            return i, line.index(token) + 1
    raise AssertionError(f"no marker {marker}")


@program
class LiteralLocals:
    k = Input(INT)
    s = Input(SINT)
    big = Output(LINT)
    small = Output(INT)
    f = Output(LREAL)

    def scan(self):
        n = 2147483000  # DINT: wraps at 32 bits in both modes
        n += self.k
        self.big = n
        m: INT = 32000  # INT: wraps at 16 bits
        m += self.k
        m = m + self.s  # a SINT widens into the INT local
        self.small = m
        x = 0.1  # LREAL, as a Python float
        for i in range(3):
            j = i  # a loop index gives DINT
            x = x * 3 + j
        self.f = x


def test_literal_and_annotated_locals_wrap_alike_in_both_modes():
    p = "literal_locals."
    rows = run_both(LiteralLocals, [{p + "k": 1000, p + "s": -5}, {p + "k": -7}])
    assert rows[0][p + "big"] == 2147483000 + 1000 - 2**32
    assert rows[0][p + "small"] == 32000 + 1000 - 5 - 2**16
    assert rows[0][p + "f"] == ((0.1 * 3 + 0) * 3 + 1) * 3 + 2


def twice(x):
    return x * 2


@program
class Branches:
    c = Input(BOOL)
    i = Input(INT)
    d = Output(DINT)
    e = Output(DINT)
    r = Output(LREAL)

    def scan(self):
        # The literal takes INT, the other branch's type: INT * 2 wraps in both modes.
        self.d = (self.i if self.c else 30000) * 2
        # Branches that call a helper run one at a time; the literal still takes INT.
        self.e = (twice(self.i) if self.c else 30000) * 2
        # Two typed branches meet at their common type.
        self.r = TO_DINT(self.i) if self.c else 2.5


def test_a_literal_branch_takes_the_type_of_the_other_branch_in_both_modes():
    p = "branches."
    rows = run_both(Branches, [{p + "c": False, p + "i": 7}, {p + "c": True}])
    assert rows[0][p + "d"] == 60000 - 2**16 and rows[0][p + "e"] == 60000 - 2**16
    assert rows[1][p + "d"] == 14 and rows[1][p + "e"] == 28
    assert rows[0][p + "r"] == 2.5 and rows[1][p + "r"] == 7.0


def positive(x):
    return x if x > 0 else 0  # E:two-calls


@program
class TwoCalls:
    a = Input(INT)
    b = Input(DINT)
    y = Output(DINT)

    def scan(self):
        self.y = positive(self.a) + positive(self.b)


def test_a_literal_that_would_take_two_types_at_two_calls_is_an_error_at_the_literal():
    with pytest.raises(CompileError) as ei:
        compile_instance(TwoCalls())
    e = ei.value
    assert (e.line, e.column) == where("two-calls", "0  #"), str(e)
    assert "DINT" in e.detail and "INT" in e.detail and "TO_" in e.hint


def test_reference_mode_keeps_the_line_numbers_of_a_rewritten_function():
    from softplc.compiler.reference import prepare

    prepare(Branches())
    code = Branches.scan.__code__
    assert code.co_filename == __file__
    first = next(i for i, t in enumerate(SOURCE, 1) if "class Branches" in t)
    assert first < code.co_firstlineno < first + 10
