"""The reference blocks and the VM agree on every block's fields; functions and
numeric rules behave as documented in both forms."""

import math

import pytest
from softplc import BOOL, DINT, INT, LREAL, REAL, UINT, Input, Output, _native, program
from softplc.differential import run_both
from softplc.iectypes import TypeRuleError, f32, make, type_of
from softplc.stdlib import (
    ABS,
    EXP,
    FB_TYPES,
    GET_BIT,
    LIMIT,
    LN,
    MAX,
    MIN,
    MUX,
    SEL,
    SET_BIT,
    SQRT,
    TO_INT,
    TO_REAL,
    TRUNC,
)


def test_reference_blocks_have_the_vm_cell_layout():
    native = {name: [tuple(f) for f in fields] for name, fields in _native.vm_fb_layouts()}
    ours = {n: [(f, t, r) for f, t, r, _ in c.FIELDS] for n, c in FB_TYPES.items()}
    assert native == ours


def test_integer_arithmetic_wraps_and_division_truncates_toward_zero():
    assert make("INT", 32767) + 1 == -32768
    assert type_of(make("SINT", -7) // 2) == "SINT" and make("SINT", -7) // 2 == -3
    assert make("SINT", -7) % 2 == -1
    assert make("USINT", 3) - 5 == 254
    with pytest.raises(ZeroDivisionError):
        make("DINT", 1) // 0


def test_real_results_are_rounded_to_32_bits_and_mixing_follows_widening():
    r = make("REAL", 0.1)
    assert float(r) == f32(0.1) and type_of(r * 3) == "REAL"
    assert type_of(make("DINT", 1) * make("REAL", 1.0)) == "LREAL"
    with pytest.raises(TypeRuleError):
        make("LINT", 1) + make("REAL", 1.0)
    with pytest.raises(TypeRuleError):
        make("INT", 1) / 2


def test_functions_follow_their_definitions():
    assert LIMIT(0, 150, 100) == 100 and MIN(3, 1, 2) == 1 and MAX(1, 7, 3) == 7
    assert SEL(True, 1.5, 2.5) == 2.5 and MUX(2, 10, 20, 30) == 30
    assert ABS(make("INT", -32768)) == -32768
    assert TO_INT(2.5) == 2 and TO_INT(3.5) == 4 and TO_INT(1e9) == 32767 and TO_INT(math.nan) == 0
    assert TRUNC(-2.7) == -2
    assert GET_BIT(make("UINT", 4), 2) and SET_BIT(make("USINT", 0), 7, True) == 128
    assert type_of(SQRT(make("REAL", 2.0))) == "REAL"
    for bad in (lambda: SQRT(-1.0), lambda: LN(0.0), lambda: EXP(1000.0), lambda: MUX(5, 1, 2)):
        with pytest.raises((ArithmeticError, IndexError)):
            bad()
    assert EXP(make("REAL", 100.0)) == math.inf  # f32 overflow rounds, no fault


@program
class Funcs:
    a = Input(INT)
    r = Input(REAL)
    k = Input(DINT)
    u = Input(UINT)
    y_int = Output(INT)
    y_real = Output(REAL)
    y_lreal = Output(LREAL)
    y_bool = Output(BOOL)

    def scan(self):
        self.y_int = LIMIT(-100, self.a * 3, 100) + MUX(LIMIT(0, self.k, 2), self.a, 7, -7)
        self.y_real = SQRT(ABS(self.r)) + TO_REAL(self.a) / 3.0
        self.y_lreal = self.k * self.r + EXP(TO_REAL(LIMIT(-5, self.a, 5)))
        self.y_bool = GET_BIT(SET_BIT(self.u, 3, self.y_real > 1.0), 3) and self.a // 7 != 0


def test_functions_agree_in_both_forms_including_faults():
    steps = [
        {"funcs.a": 5, "funcs.r": 2.25, "funcs.k": 1, "funcs.u": 8},
        {"funcs.a": -32768, "funcs.r": -0.5, "funcs.k": 70000},
        {"funcs.a": 12, "funcs.r": 1e30, "funcs.k": -3, "funcs.u": 65535},
        {"funcs.k": 9},  # MUX selector is limited: no fault
    ]
    rows = run_both(Funcs, steps)
    assert rows[0]["funcs.y_int"] == 15 + 7
    assert all(r["@state"] == "RUN" for r in rows)


@program
class Divider:
    a = Input(DINT)
    b = Input(DINT)
    q = Output(DINT)

    def scan(self):
        self.q = self.a // self.b


def test_division_by_zero_faults_in_the_same_cycle_in_both_forms():
    rows = run_both(
        Divider, [{"divider.a": -7, "divider.b": 2}, {"divider.b": 0}, {"divider.b": 1}]
    )
    assert rows[0]["divider.q"] == -3
    assert rows[1]["@state"] == "FAULT" and "division by zero" in rows[1]["@fault"]
