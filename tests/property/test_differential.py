"""Differential tests: compiled and reference mode give identical outputs at every cycle.

1. Every program in programs/ under random input sequences (with its plant, if any).
2. Randomly generated programs (expressions of every type, branches, loops, arrays,
   function block calls, locals) under random input sequences. Faults (division by
   zero, index out of range, math errors) must happen at the same cycle in both.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import struct
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from softplc import authoring as prog
from softplc.differential import run_both

ROOT = Path(__file__).resolve().parents[2]
PROGRAM_FILES = sorted((ROOT / "programs").glob("*.py"))
_counter = itertools.count()


def load_module(path: Path):
    name = f"_diff_{path.stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def program_classes(mod):
    return [
        v
        for v in vars(mod).values()
        if isinstance(v, type) and prog.is_program(v) and v.__module__ == mod.__name__
    ]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def value_strategy(tname):
    if tname == "BOOL":
        return st.booleans()
    if tname == "REAL":
        return st.floats(-1e4, 1e4, allow_nan=False, width=32)
    if tname == "LREAL":
        return st.floats(-1e6, 1e6, allow_nan=False)
    if tname == "TIME":
        return st.integers(0, 10_000_000_000)
    bits = {
        "SINT": 8,
        "INT": 16,
        "DINT": 32,
        "LINT": 64,
        "USINT": 8,
        "UINT": 16,
        "UDINT": 32,
        "ULINT": 64,
        "BYTE": 8,
        "WORD": 16,
        "DWORD": 32,
        "LWORD": 64,
    }[tname]
    if tname.startswith("U") or tname in ("BYTE", "WORD", "DWORD", "LWORD"):
        return st.integers(0, (1 << bits) - 1)
    return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def input_steps(draw, inputs, n):
    """Random input changes: the first cycle sets every input (so that not every
    program divides by an input still at 0), later cycles change a few (or none)."""
    steps = []
    for k in range(n):
        step = {}
        for name, tname in inputs:
            if k == 0 or draw(st.integers(0, 3)) == 0:
                step[name] = draw(value_strategy(tname))
        steps.append(step)
    return steps


# -- programs/ ----------------------------------------------------------------------


@st.composite
def example_case(draw):
    path = draw(st.sampled_from(PROGRAM_FILES))
    return path, draw(st.randoms(use_true_random=False))


def inputs_of(cls):
    name = prog.instance_name(cls())
    return [
        (f"{name}.{v.attr}", v.type) for v in prog.program_variables(cls()) if v.area == "input"
    ]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_example_program_agrees_under_random_inputs(data):
    path = data.draw(st.sampled_from(PROGRAM_FILES), label="program")
    mod = load_module(path)
    plant = getattr(mod, "PLANT", None)
    for cls in program_classes(mod):
        ins = inputs_of(cls)
        steps = input_steps(data.draw, ins, data.draw(st.integers(5, 60), label="cycles"))
        run_both(cls, steps, cycles=len(steps) + 20, plant=plant)


# -- generated programs ---------------------------------------------------------------

HEADER = """
import enum

from softplc import (BOOL, DINT, INT, LINT, LREAL, REAL, SINT, TIME, UDINT, UINT, ULINT, USINT,
    BYTE, WORD, DWORD, LWORD, Field, Input, Memory, Output, function_block, program, struct)
from softplc import ARRAY
from softplc.stdlib import (ABS, COS, CTD, CTU, CTUD, EXP, F_TRIG, GET_BIT, HYSTERESIS, LIMIT,
    MAX, MIN, MUX, PID, R_TRIG, RAMP, RS, SEL, SET_BIT, SIN, SQRT, SR, TIME_TO_MS, TO_DINT,
    TO_INT, TO_LINT, TO_LREAL, TO_REAL, TO_SINT, TO_UDINT, TO_UINT, TO_ULINT, TO_USINT, TOF, TON,
    TP, TRUNC, ms, ROL, ROR, SHL, SHR, TO_BYTE, TO_WORD, TO_DWORD, TO_LWORD)
from softplc import STRING
from softplc.stdlib import CONCAT, FIND, LEFT, LEN, MID, RIGHT, TO_STRING


class St(enum.IntEnum):
    A = 0
    B = 1
    C = 2
    D = 5


@struct
class Rec:
    n = Field(INT)
    f = Field(BOOL)
    v = Field(ARRAY(DINT, 2), [3, -4])
    s = Field(STRING(4), "r")


def rec_sum(r):
    return TO_DINT(r.n) + r.v[0] + r.v[1]


def rec_bump(r, k):
    r.n += k
    r.v[1] = r.v[0]


def clamp3(x):
    if x < 0:
        return TO_INT(0)
    if x > 3:
        return TO_INT(3)
    return TO_INT(x)


@function_block
class Acc:
    x = Input(INT)
    en = Input(BOOL)
    out = Output(DINT)
    hit = Output(BOOL)
    m = Memory(DINT)
    tag = Output(STRING(6))
    edge = R_TRIG()

    def bump(self, k):
        self.m = self.m + k
        return TO_DINT(self.m % 7)

    def scan(self):
        self.edge(CLK=self.en)
        if self.edge.Q:
            self.m += self.bump(TO_DINT(self.x))
        self.out = self.m
        self.hit = self.out > 100
        self.tag = RIGHT(self.tag + TO_STRING(self.x % 10), 6)


@program
class Gen:
    a = Input(INT)
    b = Input(DINT)
    u = Input(UINT)
    r = Input(REAL)
    lr = Input(LREAL)
    f = Input(BOOL)
    g = Input(BOOL)
    sa = Input(SINT)
    ua = Input(USINT)
    ud = Input(UDINT)
    la = Input(LINT)
    ul = Input(ULINT)
    ti = Input(TIME)
    sh = Input(USINT)
    sn = Input(SINT)
    bb = Input(BYTE)
    bw = Input(WORD)
    bd = Input(DWORD)
    mw = Memory(WORD, 0x5A5A)
    o_word = Output(WORD)
    o_lword = Output(LWORD)
    st = Memory(St)
    o_st = Output(St, initial=St.D)
    rin = Input(Rec)
    recs = Memory(ARRAY(Rec, 3))
    grid = Memory(ARRAY(INT, 2, 3))
    m = Memory(INT)
    mr = Memory(REAL)
    mb = Memory(BOOL)
    md = Memory(DINT)
    msi = Memory(SINT)
    mu = Memory(USINT)
    ml = Memory(LINT)
    mt = Memory(TIME)
    arr = Memory(ARRAY(INT, 4))
    ms1 = Memory(STRING(8))
    o_str = Output(STRING(20), initial="x")
    strs = Memory(ARRAY(STRING(5), 3))
    o_int = Output(DINT)
    o_real = Output(LREAL)
    o_bool = Output(BOOL)
    o_sint = Output(SINT)
    o_usint = Output(USINT)
    o_udint = Output(UDINT)
    o_lint = Output(LINT)
    o_ulint = Output(ULINT)
    o_time = Output(TIME)
    t = TON(PT=ms(30))
    off = TOF(PT=ms(20))
    tp = TP(PT=ms(40))
    c = CTU(PV=3)
    cd = CTD(PV=4)
    cud = CTUD(PV=3)
    rt = R_TRIG()
    ft = F_TRIG()
    sr = SR()
    rs = RS()
    pid = PID(KP=2.0, TI=ms(500), TD=ms(50), OUT_MIN=-50.0, OUT_MAX=50.0)
    ramp = RAMP(TR=ms(80))
    hy = HYSTERESIS(EPS=1.0)
    ts = [TON(PT=ms(10 * (k + 1))) for k in range(3)]
    acc = Acc()
    accs = [Acc() for _ in range(2)]

    def pick(self, k):
        if k > 0:
            self.mt += ms(1)
        return MUX(LIMIT(0, k, 2), self.a, self.m, self.cud.CV)

    def bump(self):
        self.md = self.md + 1
        return TO_DINT(2)

    def scan(self):
"""

INPUTS = [
    ("gen.a", "INT"),
    ("gen.b", "DINT"),
    ("gen.u", "UINT"),
    ("gen.r", "REAL"),
    ("gen.lr", "LREAL"),
    ("gen.f", "BOOL"),
    ("gen.g", "BOOL"),
    ("gen.sa", "SINT"),
    ("gen.ua", "USINT"),
    ("gen.ud", "UDINT"),
    ("gen.la", "LINT"),
    ("gen.ul", "ULINT"),
    ("gen.ti", "TIME"),
    ("gen.sh", "USINT"),  # shift counts: 0..255, so past the width of every type
    ("gen.sn", "SINT"),  # may be negative: faults in both modes
    ("gen.bb", "BYTE"),
    ("gen.bw", "WORD"),
    ("gen.bd", "DWORD"),
    ("gen.rin.n", "INT"),
    ("gen.rin.f", "BOOL"),
    ("gen.rin.v[0]", "DINT"),
    ("gen.rin.v[1]", "DINT"),
]

# Typed integer leaves by type (variables, block inputs and outputs, user block outputs).
TYPED_LEAVES = {
    "SINT": ["self.sa", "self.msi", "self.o_sint"],
    "USINT": ["self.ua", "self.mu", "self.sh"],
    "UDINT": ["self.ud", "self.o_udint"],
    "LINT": ["self.la", "self.ml", "self.o_lint"],
    "ULINT": ["self.ul", "self.o_ulint"],
}
TIME_LEAVES = ["self.ti", "self.mt", "self.t.ET", "self.tp.ET", "self.t.PT", "self.o_time"]
BITS = {"SINT": 8, "USINT": 8, "INT": 16, "UDINT": 32, "LINT": 64, "ULINT": 64}
# Bit-string leaves by type, and the types each widens from.
BIT_LEAVES = {
    "BYTE": ["self.bb", "TO_BYTE(self.a)"],
    "WORD": ["self.bw", "self.mw", "self.o_word", "TO_WORD(self.sa)"],
    "DWORD": ["self.bd", "TO_DWORD(self.la)"],
    "LWORD": ["self.o_lword", "TO_LWORD(self.ul)"],
}
BIT_WIDTH = {"BYTE": 8, "WORD": 16, "DWORD": 32, "LWORD": 64}
NARROWER = {"BYTE": [], "WORD": ["BYTE"], "DWORD": ["BYTE", "WORD"], "LWORD": ["WORD", "DWORD"]}


class Gen:
    """Draws typed Python source text."""

    def __init__(self, draw):
        self.draw = draw
        self.loop_vars: list[str] = []
        self.locals: list[str] = []
        self.str_locals: list[str] = []

    def pick(self, xs):
        return self.draw(st.sampled_from(xs))

    def lit_int(self):
        return str(self.draw(st.integers(-50, 50)))

    def lit_real(self):
        return repr(self.draw(st.sampled_from([0.0, 0.5, -1.25, 3.0, 1e-3, 100.0, 0.1])))

    def divisor(self, op, rhs):
        """Mostly a divisor that cannot be zero (``x | 1``), so that fewer programs fault
        on their first division; sometimes the raw value, so division by zero stays
        covered."""
        if op in ("//", "%") and not rhs.lstrip("-").isdigit() and self.draw(st.integers(0, 3)):
            return f"({rhs} | 1)"
        if op in ("//", "%") and rhs.lstrip("-").isdigit() and int(rhs) == 0:
            return "7"
        return rhs

    def count(self, d):
        """A shift count: typed (often out of range), rarely negative, or a constant."""
        k = self.draw(st.integers(0, 9))
        if k < 3:
            return "self.sh"
        if k == 3:
            return "self.sn"
        if k == 4:
            return f"TO_USINT({self.int_(d - 1)})"
        if k == 5:
            return "self.ua"
        if k == 6:
            return "TO_ULINT(self.sh)"
        if k == 7 and self.loop_vars:
            return self.loop_vars[-1]
        return str(self.draw(st.integers(0, 70)))

    def tint(self, t, d):
        """An expression of typed integer type ``t`` (SINT, USINT, UDINT, LINT, ULINT)."""
        leaves = TYPED_LEAVES[t]
        if d <= 0:
            return self.pick(leaves)
        e = lambda: self.tint(t, d - 1)
        lit = str(self.draw(st.integers(0 if t[0] == "U" else -50, 50)))
        k = self.draw(st.integers(0, 10))
        if k == 0:
            return self.pick(leaves)
        if k in (1, 2):
            op = self.pick(["+", "-", "*", "//", "%", "&", "|", "^"])
            rhs = e() if self.draw(st.booleans()) else lit
            return f"({e()} {op} {self.divisor(op, rhs)})"
        if k == 3:
            return f"({e()} {self.pick(['<<', '>>'])} {self.count(d)})"
        if k == 4:
            src = self.pick(["self.a", "self.b", "self.la", "self.ul", "self.sa", "self.ud"])
            return f"TO_{t}({src})"
        if k == 5:
            return f"TO_{t}({self.real_(d - 1)})"
        if k == 6:
            n = self.pick([str(self.draw(st.integers(0, BITS[t] - 1))), "(self.sh % 8)"])
            return f"SET_BIT({e()}, {n}, {self.bool_(d - 1)})"
        if k == 7:
            sel = self.pick(["(self.sh % 3)", "LIMIT(0, self.a, 2)", "(self.ua % 4)"])
            return f"MUX({sel}, {e()}, {e()}, {e()})"
        if k == 8:
            return f"{self.pick(['MIN', 'MAX'])}({e()}, {e()})"
        if k == 9 and t == "LINT":
            return self.pick(
                [
                    f"TIME_TO_MS({self.time_(d - 1)})",
                    f"({self.time_(d - 1)} // ms({self.draw(st.integers(1, 9))}))",
                    f"({e()} + ({self.draw(st.integers(0, 5000))} >> {self.count(d)}))",
                ]
            )
        return f"(~{e()})" if t[0] == "U" else f"(-{e()})"

    def bits(self, t, d):
        """An expression of bit-string type ``t``."""
        leaves = BIT_LEAVES[t]
        if d <= 0:
            return self.pick(leaves)
        e = lambda: self.bits(t, d - 1)
        lit = hex(self.draw(st.integers(0, (1 << BIT_WIDTH[t]) - 1)))
        k = self.draw(st.integers(0, 9))
        if k == 0:
            return self.pick(leaves)
        if k in (1, 2):
            rhs = self.pick([e(), lit] + [self.bits(n, d - 1) for n in NARROWER[t]])
            return f"({e()} {self.pick(['&', '|', '^'])} {rhs})"
        if k == 3:
            return f"(~{e()})"
        if k == 4:
            return f"({e()} {self.pick(['<<', '>>'])} {self.count(d)})"
        if k == 5:
            return f"{self.pick(['SHL', 'SHR', 'ROL', 'ROR'])}({e()}, {self.count(d)})"
        if k == 6:
            n = self.pick([str(self.draw(st.integers(0, BIT_WIDTH[t] - 1))), "(self.sh % 8)"])
            return f"SET_BIT({e()}, {n}, {self.bool_(d - 1)})"
        if k == 7:
            return f"SEL({self.bool_(d - 1)}, {e()}, {e()})"
        if k == 8:
            return f"TO_{t}({self.pick([self.int_(d - 1), self.real_(d - 1)])})"
        return f"{self.pick(['MIN', 'MAX'])}({e()}, {e()})"

    def time_(self, d):
        leaves = TIME_LEAVES
        if d <= 0:
            return self.pick(leaves)
        e = lambda: self.time_(d - 1)
        k = self.draw(st.integers(0, 8))
        if k == 0:
            return self.pick(leaves)
        if k == 1:
            return f"({e()} {self.pick(['+', '-'])} {e()})"
        if k == 2:
            return f"({e()} * {self.pick([self.int_(d - 1), str(self.draw(st.integers(0, 5)))])})"
        if k == 3:
            return f"({e()} // {self.pick([self.int_(d - 1), str(self.draw(st.integers(1, 7)))])})"
        if k == 4:
            return f"({e()} % {self.pick([e(), f'ms({self.draw(st.integers(1, 9))})'])})"
        if k == 5:
            return f"{self.pick(['MIN', 'MAX'])}({e()}, {e()})"
        if k == 6:
            return f"ms({self.int_(d - 1)})"
        if k == 7:
            return f"SEL({self.bool_(d - 1)}, {e()}, {e()})"
        return f"LIMIT(ms(0), {e()}, ms(500))"

    def int_(self, d):
        """An INT-typed expression (always has a typed leaf)."""
        leaves = ["self.a", "self.m", "self.arr[0]", "self.arr[3]", "self.c.CV", "self.c.PV"]
        leaves += ["self.cud.CV", "self.cd.CV", "self.cud.PV", "self.acc.x"]
        leaves += [f"TO_INT({v})" for v in self.locals]
        if self.loop_vars:
            leaves.append(f"self.arr[{self.loop_vars[-1]}]")
        if d <= 0:
            return self.pick(leaves)
        k = self.draw(st.integers(0, 14))
        e = lambda: self.int_(d - 1)
        if k == 0:
            return self.pick(leaves)
        if k in (1, 2, 3):
            op = self.pick(["+", "-", "*", "//", "%", "&", "|", "^"])
            rhs = e() if self.draw(st.booleans()) else self.lit_int()
            if self.loop_vars and self.draw(st.booleans()):
                rhs = self.loop_vars[-1]
            return f"({e()} {op} {self.divisor(op, rhs)})"
        if k == 4:
            return f"ABS({e()})"
        if k == 5:
            return f"{self.pick(['MIN', 'MAX'])}({e()}, {e()})"
        if k == 6:
            return f"LIMIT({self.lit_int()}, {e()}, {e()})"
        if k == 7:
            return f"SEL({self.bool_(d - 1)}, {e()}, {e()})"
        if k == 8:
            return f"TO_INT({self.real_(d - 1)})"
        if k == 9:
            return f"({e()} {self.pick(['<<', '>>'])} {self.count(d)})"
        if k == 10:
            return f"TO_INT({self.dint_(d - 1)})"
        if k == 11:
            return f"(-{e()})"
        if k == 12:
            return f"TO_INT({self.tint(self.pick(sorted(TYPED_LEAVES)), d - 1)})"
        if k == 13:
            c = self.draw(st.integers(0, 3))
            if c == 0:
                return f"TO_INT({self.bits(self.pick(sorted(BIT_LEAVES)), d - 1)})"
            if c == 1:
                return self.pick(
                    [f"self.recs[{self.rix()}].n", f"self.grid{self.gix()}", "self.rin.n"]
                )
            if c == 2:
                return self.str_num(d - 1)
            return f"self.pick({e()})"
        idx = self.pick(["clamp3(self.a)", "LIMIT(0, self.m, 3)", "(self.a & 3)", "(self.a % 5)"])
        return f"self.arr[{idx}]"

    def dint_(self, d):
        leaves = ["self.b", "self.md", "self.o_int", "self.acc.out", "self.accs[1].out"]
        leaves += self.locals
        if d <= 0:
            return self.pick(leaves)
        k = self.draw(st.integers(0, 6))
        if k == 0:
            return self.pick(leaves)
        if k in (1, 2):
            op = self.pick(["+", "-", "*", "//", "%"])
            rhs = self.pick([self.int_(d - 1), self.dint_(d - 1), self.lit_int()])
            return f"({self.dint_(d - 1)} {op} {self.divisor(op, rhs)})"
        if k == 3:
            return f"TO_DINT({self.real_(d - 1)})"
        if k == 4:
            if self.draw(st.booleans()):
                return self.pick(
                    [
                        f"rec_sum(self.recs[{self.rix()}])",
                        "rec_sum(self.rin)",
                        f"self.recs[{self.rix()}].v[1]",
                    ]
                )
            return f"TO_DINT(TRUNC({self.lreal_(d - 1)}))"
        if k == 5:
            return f"({self.dint_(d - 1)} << {self.count(d)})"
        return f"MAX({self.dint_(d - 1)}, {self.int_(d - 1)})"

    def real_(self, d):
        leaves = ["self.r", "self.mr", "self.pid.XOUT", "self.ramp.XOUT", "self.hy.XIN1"]
        if d <= 0:
            return self.pick(leaves)
        k = self.draw(st.integers(0, 8))
        e = lambda: self.real_(d - 1)
        if k == 0:
            return self.pick(leaves)
        if k in (1, 2):
            op = self.pick(["+", "-", "*", "/"])
            rhs = self.pick([e(), self.lit_real(), self.int_(d - 1)])
            return f"({e()} {op} {rhs})"
        if k == 3:
            return f"SQRT(ABS({e()}))"
        if k == 4:
            return f"{self.pick(['SIN', 'COS'])}({e()})"
        if k == 5:
            return f"TO_REAL({self.pick([self.int_(d - 1), self.tint(self.pick(sorted(TYPED_LEAVES)), d - 1)])})"
        if k == 6:
            return f"EXP(LIMIT(-20.0, {e()}, 20.0))"
        if k == 7:
            if self.draw(st.booleans()):
                return f"TO_REAL({self.str_(d - 1)})"
            return f"TO_REAL({self.lreal_(d - 1)})"
        return f"{self.pick(['MIN', 'MAX'])}({e()}, {self.lit_real()})"

    def lreal_(self, d):
        leaves = ["self.lr", "self.o_real", "TO_LREAL(self.r)"]
        if d <= 0:
            return self.pick(leaves)
        k = self.draw(st.integers(0, 4))
        if k == 0:
            return self.pick(leaves)
        if k == 1:
            return f"({self.lreal_(d - 1)} {self.pick(['+', '-', '*', '/'])} {self.pick([self.real_(d - 1), self.dint_(d - 1), self.lit_real()])})"
        if k == 2:
            return f"({self.dint_(d - 1)} * {self.real_(d - 1)})"
        if k == 3:
            return f"TO_LREAL({self.tint(self.pick(['LINT', 'ULINT', 'UDINT']), d - 1)})"
        return f"SQRT(ABS({self.lreal_(d - 1)}))"

    def bool_(self, d):
        leaves = [
            "self.f",
            "self.g",
            "self.mb",
            "self.t.Q",
            "self.t.IN",
            "self.c.Q",
            "self.rt.Q",
            "self.off.Q",
            "self.ts[2].Q",
            "self.tp.Q",
            "self.cd.Q",
            "self.cud.QU",
            "self.cud.QD",
            "self.cud.CU",
            "self.ft.Q",
            "self.sr.Q1",
            "self.sr.S1",
            "self.rs.Q1",
            "self.rs.R1",
            "self.rs.S",
            "self.cud.CD",
            "self.hy.Q",
            "self.ramp.BUSY",
            "self.pid.AUTO",
            "self.acc.hit",
            "self.accs[0].hit",
            "self.rin.f",
            "self.recs[1].f",
        ]
        if d <= 0:
            return self.pick(leaves)
        k = self.draw(st.integers(0, 9))
        if k == 0:
            return self.pick(leaves)
        if k == 1:
            return f"({self.int_(d - 1)} {self.pick(['<', '<=', '==', '!=', '>', '>='])} {self.pick([self.int_(d - 1), self.lit_int()])})"
        if k == 2:
            return f"({self.real_(d - 1)} {self.pick(['<', '>', '>='])} {self.pick([self.real_(d - 1), self.lit_real(), self.int_(d - 1)])})"
        if k == 3:
            return f"({self.bool_(d - 1)} {self.pick(['and', 'or'])} {self.bool_(d - 1)})"
        if k == 4:
            if self.draw(st.booleans()):
                return f"({self.str_(d - 1)} {self.pick(['<', '<=', '==', '!=', '>', '>='])} {self.str_(d - 1)})"
            return f"(not {self.bool_(d - 1)})"
        if k == 5:
            return f"GET_BIT(TO_UINT({self.int_(d - 1)}), {self.pick([str(self.draw(st.integers(0, 15))), '(self.sh % 16)'])})"
        if k == 6:
            if self.draw(st.booleans()):
                return f"({self.enum_(d - 1)} {self.pick(['==', '!='])} {self.enum_(d - 1)})"
            return f"({self.bool_(d - 1)} != {self.bool_(d - 1)})"
        if k == 7:
            t = self.pick(sorted(TYPED_LEAVES))
            return f"({self.tint(t, d - 1)} {self.pick(['<', '==', '>='])} {self.tint(t, d - 1)})"
        if k == 8:
            if self.draw(st.booleans()):
                t = self.pick(sorted(BIT_LEAVES))
                return self.pick(
                    [
                        f"GET_BIT({self.bits(t, d - 1)}, {self.draw(st.integers(0, BIT_WIDTH[t] - 1))})",
                        f"({self.bits(t, d - 1)} {self.pick(['==', '!=', '<', '>='])} {self.bits(t, d - 1)})",
                    ]
                )
            return f"({self.time_(d - 1)} {self.pick(['<', '>=', '!='])} {self.pick([self.time_(d - 1), 'ms(50)'])})"
        return f"({self.dint_(d - 1)} < {self.int_(d - 1)} < {self.dint_(d - 1)})"

    def block_call(self, p):
        b = lambda: self.bool_(1)
        i = lambda: self.int_(1)
        r = lambda: self.real_(1)
        builtin = [
            lambda: f"self.t(IN={b()})",
            lambda: f"self.off(IN={b()})",
            lambda: f"self.tp(IN={b()})",
            lambda: f"self.c(CU={b()}, R={b()})",
            lambda: f"self.cd(CD={b()}, LD={b()}, PV={i()})",
            lambda: f"self.cud(CU={b()}, CD={b()}, R={b()}, LD={b()}, PV={i()})",
            lambda: f"self.rt(CLK={b()})",
            lambda: f"self.ft(CLK={b()})",
            lambda: f"self.sr(S1={b()}, R={b()})",
            lambda: f"self.rs(S={b()}, R1={b()})",
            lambda: f"self.pid(AUTO={b()}, PV={r()}, SP={r()}, X0={r()})",
            lambda: f"self.ramp(RUN={b()}, X0={r()}, X1={r()})",
            lambda: f"self.hy(XIN1={r()}, XIN2={r()})",
            lambda: f"self.sr.S1 = {b()}",
            lambda: f"self.t.PT = {self.time_(1)}",
        ]
        user = [
            lambda: f"self.acc(x={i()}, en={b()})",
            lambda: "self.acc(x=self.acc.x + 1, en=not self.acc.en)",
            lambda: f"self.md += {i()}",
            lambda: "self.md += self.bump()",
        ]
        # A keyword value that reads an input an earlier keyword of the same call sets:
        # Python evaluates every value before the call stores any. The second line
        # makes the inputs visible in an output.
        readback = [
            lambda: (
                f"self.sr(S1=self.sr.R, R=self.sr.S1)\n{p}self.o_bool = self.sr.S1 != self.sr.R"
            ),
            lambda: f"self.rs(R1={b()}, S=self.rs.R1)\n{p}self.o_bool = self.rs.S",
            lambda: "self.cud(CU=self.cud.CD, CD=self.cud.CU)",
            lambda: (
                f"self.cud(PV={i()}, CU=self.cud.PV > 1, CD=self.cud.CU)\n"
                f"{p}self.mb = self.cud.CU != self.cud.CD"
            ),
            lambda: f"self.acc(x={i()}, en=self.acc.x > 0)\n{p}self.mb = self.acc.en",
        ]
        group = self.pick([builtin, builtin, user, readback])
        return group[self.draw(st.integers(0, len(group) - 1))]()

    def enum_(self, d):
        """An expression of enumeration St."""
        k = self.draw(st.integers(0, 4 if d > 0 else 1))
        if k == 0:
            return self.pick(["self.st", "self.o_st"])
        if k == 1:
            return f"St.{self.pick(['A', 'B', 'C', 'D'])}"
        if k == 2:
            return f"St(LIMIT(0, {self.int_(d - 1)}, 2))"
        if k == 3:
            return f"({self.enum_(d - 1)} if {self.bool_(d - 1)} else {self.enum_(d - 1)})"
        return f"MUX(self.sh % 3, St.A, {self.enum_(d - 1)}, St.D)"

    def str_(self, d):
        """A STRING expression (literals, variables, block fields, array elements at run
        time, conversions, the string functions)."""
        leaves = ['"ab"', '""', '"conveyor"', "self.ms1", "self.o_str", "self.acc.tag"]
        leaves += [f"self.strs[{self.rix()}]", f"self.recs[{self.rix()}].s", "self.accs[1].tag"]
        leaves += self.str_locals
        if d <= 0:
            return self.pick(leaves)
        k = self.draw(st.integers(0, 9))
        e = lambda: self.str_(d - 1)
        if k == 0:
            return self.pick(leaves)
        if k == 1:
            return f"({e()} + {e()})"
        if k == 2:
            return f"{self.pick(['LEFT', 'RIGHT'])}({e()}, {self.int_(d - 1)})"
        if k == 3:
            return (
                f"MID({e()}, {self.pick([self.int_(d - 1), self.lit_int()])}, {self.int_(d - 1)})"
            )
        if k == 4:
            return f"CONCAT({e()}, {e()}, {e()})"
        if k == 5:
            return f"({e()} if {self.bool_(d - 1)} else {e()})"
        if k == 6:
            return (
                f"TO_STRING({self.pick([self.int_(d - 1), self.dint_(d - 1), self.bool_(d - 1)])})"
            )
        if k == 7:
            return f"TO_STRING({self.pick([self.real_(d - 1), self.lreal_(d - 1)])})"
        if k == 8:
            t = self.pick(sorted(TYPED_LEAVES))
            return f"TO_STRING({self.pick([self.tint(t, d - 1), self.bits(self.pick(sorted(BIT_LEAVES)), d - 1)])})"
        return f"TO_STRING({self.lit_int()})"

    def str_num(self, d):
        """A number read from a string."""
        k = self.draw(st.integers(0, 3))
        if k == 0:
            return f"LEN({self.str_(d)})"
        if k == 1:
            return f"FIND({self.str_(d)}, {self.str_(d)})"
        if k == 2:
            return f"TO_INT({self.str_(d)})"
        return f"TO_INT(TO_DINT({self.str_(d)}) % 30000)"

    def str_stmt(self, p):
        k = self.draw(st.integers(0, 4))
        if k == 0:
            return f"{p}self.ms1 = {self.str_(2)}\n"
        if k == 1:
            return f"{p}self.o_str = {self.str_(2)}\n"
        if k == 2:
            return f"{p}self.strs[{self.rix()}] = {self.str_(2)}\n"
        if k == 3:
            return f"{p}self.recs[{self.rix()}].s = {self.str_(2)}\n"
        v = f"s{next(_counter)}"
        out = f"{p}{v} = {self.str_(2)}\n"
        self.str_locals.append(v)
        return out

    def rix(self):
        """An index into recs (length 3): constant, computed (possibly out of range: a
        fault in both modes) or a loop index."""
        opts = ["0", "2", "(self.a & 1)", "LIMIT(0, self.m, 2)", "(self.ua % 4)"]
        if self.loop_vars:
            opts.append(f"({self.loop_vars[-1]} % 3)")
        return self.pick(opts)

    def gix(self):
        """Indices into grid (2 x 3), one of the two spellings."""
        i = self.pick(["1", "(self.sh % 2)", "LIMIT(0, self.a, 1)"])
        j = self.pick(["2", "(self.ua % 3)", "clamp3(self.m) % 3"])
        return self.pick([f"[{i}, {j}]", f"[{i}][{j}]"])

    def struct_stmt(self, p):
        k = self.draw(st.integers(0, 6))
        if k == 0:
            return f"{p}self.recs[{self.rix()}].n = {self.int_(1)}\n"
        if k == 1:
            return f"{p}self.grid{self.gix()} = {self.int_(1)}\n"
        if k == 2:
            return f"{p}self.recs[{self.rix()}].v[{self.pick(['0', '1', '(self.sh % 2)'])}] = {self.dint_(1)}\n"
        if k == 3:
            return f"{p}rec_bump(self.recs[{self.rix()}], TO_INT({self.lit_int()}))\n"
        if k == 4:
            src = self.pick(["self.rin", f"self.recs[{self.rix()}]"])
            return f"{p}self.recs[{self.rix()}] = {src}\n"
        if k == 5:
            r = f"r{next(_counter)}"
            return f"{p}{r} = self.recs[{self.rix()}]\n{p}{r}.f = {self.bool_(1)}\n{p}{r}.n += 1\n"
        return f"{p}self.grid{self.gix()} += {self.lit_int()}\n"

    def match_stmt(self, d, ind):
        """A match over the enumeration or over an integer, with alternatives, guards,
        captures and a default."""
        p = " " * ind
        if self.draw(st.booleans()):
            subject, values = self.enum_(1), ["St.A", "St.B", "St.C", "St.D"]
        else:
            subject = self.pick(["self.a", "TO_DINT(self.m) % 9", "self.ua", "self.sn"])
            values = [str(self.draw(st.integers(-3, 9))) for _ in range(6)]
        out = f"{p}match {subject}:\n"
        for _ in range(self.draw(st.integers(1, 4))):
            pat = " | ".join(self.pick(values) for _ in range(self.draw(st.integers(1, 3))))
            out += f"{p}    case {pat}:\n{self.block(d - 1, ind + 8)}"
        if not values[0].startswith("St") and self.draw(st.booleans()):
            x = f"x{next(_counter)}"  # a capture keeps the subject's type: a new name each
            out += f"{p}    case {x} if {x} > 3:\n{p}        self.m = TO_INT({x})\n"
        if self.draw(st.booleans()):
            out += f"{p}    case _:\n{self.block(d - 1, ind + 8)}"
        return out

    def stmt(self, d, ind):
        p = " " * ind
        k = self.draw(st.integers(0, 17 if d > 0 else 9))
        if k == 17:
            return self.match_stmt(d, ind)
        if k == 16 and self.draw(st.booleans()):
            if self.draw(st.booleans()):
                return self.str_stmt(p)
            return f"{p}self.{self.pick(['st', 'o_st'])} = {self.enum_(2)}\n"
        if k == 16:
            return self.struct_stmt(p)
        if k > 14:
            k = 6  # block calls (and what they read) are where the subtle cases are
        if k == 0:
            return f"{p}self.m = {self.int_(2)}\n"
        if k == 1:
            return f"{p}self.mr = {self.real_(2)}\n"
        if k == 2:
            return f"{p}self.mb = {self.bool_(2)}\n"
        if k == 3:
            return f"{p}self.o_int = {self.dint_(2)}\n"
        if k == 4:
            return f"{p}self.o_real = {self.lreal_(2)}\n"
        if k == 5:
            return f"{p}self.o_bool = {self.bool_(2)}\n"
        if k == 6:
            return f"{p}{self.block_call(p)}\n"
        if k == 7:
            t = self.pick(sorted(TYPED_LEAVES))
            target = {"SINT": "o_sint", "USINT": "o_usint", "UDINT": "o_udint"}
            target.update({"LINT": "o_lint", "ULINT": "o_ulint"})
            return f"{p}self.{target[t]} = {self.tint(t, 2)}\n"
        if k == 8:
            return f"{p}self.{self.pick(['o_time', 'mt'])} = {self.time_(2)}\n"
        if k == 9:
            if self.draw(st.booleans()):
                t = self.pick(["WORD", "LWORD"])
                target = self.pick(["o_word", "mw"]) if t == "WORD" else "o_lword"
                return f"{p}self.{target} = {self.bits(t, 2)}\n"
            return f"{p}self.{self.pick(['ml', 'msi', 'mu'])} += 1\n"
        if k == 10:
            s = f"{p}if {self.bool_(2)}:\n{self.block(d - 1, ind + 4)}"
            if self.draw(st.booleans()):
                s += f"{p}elif {self.bool_(1)}:\n{self.block(d - 1, ind + 4)}"
            if self.draw(st.booleans()):
                s += f"{p}else:\n{self.block(d - 1, ind + 4)}"
            return s
        if k == 11:
            v = f"i{len(self.loop_vars)}"
            n = self.draw(st.integers(0, 4))
            self.loop_vars.append(v)
            body = f"{p}    self.arr[{v}] = {self.int_(2)}\n" + self.block(d - 1, ind + 4)
            self.loop_vars.pop()
            return f"{p}for {v} in range({n}):\n{body}"
        if k == 12:
            v = f"v{len(self.locals)}"
            s = f"{p}{v} = TO_DINT({self.int_(2)})\n"
            self.locals.append(v)
            return s
        if k == 13:
            v = f"j{len(self.loop_vars)}"
            self.loop_vars.append(v)
            if self.draw(st.booleans()):
                s = f"{p}for {v} in range(3):\n{p}    self.ts[{v}](IN={self.bool_(1)})\n{p}    self.o_bool = self.ts[{v}].Q\n"
            else:
                # An array of user blocks: the loop is unrolled.
                s = (
                    f"{p}for {v} in range(2):\n{p}    self.accs[{v}](x={self.int_(1)}, "
                    f"en={self.bool_(1)})\n{p}    self.md += self.accs[{v}].out\n"
                )
            self.loop_vars.pop()
            return s
        idx = self.pick(["clamp3(self.m)", "(self.a & 3)", "(self.a % 5)"])
        return f"{p}self.arr[{idx}] = {self.int_(1)}\n"

    def block(self, d, ind):
        saved, saved_str = list(self.locals), list(self.str_locals)
        n = self.draw(st.integers(1, 3))
        out = "".join(self.stmt(d, ind) for _ in range(n))
        # Locals assigned in a branch are not visible after it.
        self.locals, self.str_locals = saved, saved_str
        return out


@st.composite
def generated_program(draw):
    g = Gen(draw)
    body = "".join(g.stmt(2, 8) for _ in range(draw(st.integers(2, 6))))
    return HEADER + body


_tmpdir = Path(tempfile.mkdtemp(prefix="softplc_diff_"))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(src=generated_program(), data=st.data())
def test_random_programs_agree_under_random_inputs(src, data):
    path = _tmpdir / f"gen_{next(_counter)}.py"
    path.write_text(src)
    mod = load_module(path)
    steps = input_steps(data.draw, INPUTS, data.draw(st.integers(3, 25), label="cycles"))
    try:
        run_both(mod.Gen, steps)
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- program ---\n{src}") from None


def test_generated_source_compiles_for_a_fixed_seed():
    # Guards the generator itself: a typing mistake in it would make every
    # example above fail with a CompileError instead of testing anything.
    from softplc.compiler import compile_instance

    @given(generated_program())
    @settings(max_examples=20, deadline=None, database=None)
    def check(src):
        path = _tmpdir / f"fixed_{next(_counter)}.py"
        path.write_text(src)
        compile_instance(load_module(path).Gen())

    check()


def test_run_both_compares_floats_bit_for_bit(monkeypatch):
    # -0.0 == 0.0 and NaN != NaN in Python; the modes must agree on the bits instead.
    from softplc import differential

    quiet_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000))[0]
    other_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000001))[0]
    cases = [(0.0, -0.0, False), (quiet_nan, other_nan, False), (quiet_nan, quiet_nan, True)]
    for compiled, reference, agree in cases:
        rows = {"compiled": compiled, "reference": reference}

        def fake(factory, steps, *, mode, rows=rows, **kw):
            return [{"p.x": rows[mode], "@state": "RUN", "@fault": None}]

        monkeypatch.setattr(differential, "run_mode", fake)
        if agree:
            assert differential.run_both(None, [{}])[0]["p.x"] is compiled
        else:
            with pytest.raises(differential.DifferentialMismatch, match="bits"):
                differential.run_both(None, [{}])


_ = (math, f32)


# -- globals shared by two tasks ---------------------------------------------------------

GLOBALS_HEADER = """
from softplc import ARRAY, BOOL, DINT, INT, Field, Global, Input, Output, Task, program, struct
from softplc.stdlib import LIMIT, MAX, TO_DINT, TO_INT


@struct
class Shared:
    n = Field(INT)
    flag = Field(BOOL)
    v = Field(ARRAY(DINT, 3))


g_n = Global(INT, 1)
g_rec = Global(Shared)

"""


def task_program(draw, name, depth=2):
    """A program of one task: statements over its input x, its output y and the two
    globals (a scalar and a structure)."""

    def expr(d):
        leaves = ["self.x", "self.n", "self.rec.n", "TO_INT(self.rec.v[1])", "TO_INT(self.y)"]
        if d <= 0:
            return draw(st.sampled_from(leaves))
        k = draw(st.integers(0, 4))
        if k == 0:
            return draw(st.sampled_from(leaves))
        if k == 1:
            op = draw(st.sampled_from(["+", "-", "*", "&", "^"]))
            return f"({expr(d - 1)} {op} {draw(st.sampled_from([expr(d - 1), str(draw(st.integers(-9, 9)))]))})"
        if k == 2:
            return f"LIMIT(-100, {expr(d - 1)}, 100)"
        if k == 3:
            return f"({expr(d - 1)} if self.rec.flag else {draw(st.integers(-5, 5))})"
        return f"MAX({expr(d - 1)}, {expr(d - 1)})"

    def stmt(d, ind):
        p = " " * ind
        k = draw(st.integers(0, 5 if d > 0 else 3))
        if k == 0:
            return f"{p}self.n = {expr(2)}\n"
        if k == 1:
            i = draw(st.sampled_from(["0", "2", "(self.x & 1)", "LIMIT(0, self.n, 2)"]))
            return f"{p}self.rec.v[{i}] = TO_DINT({expr(1)})\n"
        if k == 2:
            return f"{p}self.rec.flag = {expr(1)} > {draw(st.integers(-20, 20))}\n"
        if k == 3:
            return f"{p}self.y = TO_DINT({expr(2)}) + self.rec.v[0]\n"
        if k == 4:
            body = "".join(stmt(d - 1, ind + 4) for _ in range(draw(st.integers(1, 2))))
            return f"{p}if {expr(1)} < {expr(1)}:\n{body}"
        return f"{p}self.rec.n += 1\n"

    body = "".join(stmt(depth, 8) for _ in range(draw(st.integers(1, 4))))
    return (
        f"@program\nclass {name}:\n    x = Input(INT)\n    y = Output(DINT)\n"
        f"    n = g_n\n    rec = g_rec\n\n    def scan(self):\n{body}\n"
    )


@st.composite
def two_task_file(draw):
    fast, slow = task_program(draw, "Fast"), task_program(draw, "Slow")
    periods = draw(st.sampled_from([("1ms", "3ms"), ("2ms", "2ms"), ("1ms", "5ms")]))
    tasks = (
        f"TASKS = [Task('fast', period='{periods[0]}', programs=[Fast], priority=0), "
        f"Task('slow', period='{periods[1]}', programs=[Slow], priority=1)]\n"
    )
    return GLOBALS_HEADER + fast + "\n" + slow + "\n" + tasks


def run_file(path, mode, xs):
    from softplc.loader import load_program_file

    rows = []
    with load_program_file(path).build_engine(clock="virtual", mode=mode) as plc:
        plc.start()
        for k, (a, b) in enumerate(xs):
            plc.write("fast.x", a)
            plc.write("slow.x", b)
            plc.run_cycles(1)
            row = dict(plc.snapshot().values())
            row["@state"] = plc.state
            rows.append((k, row))
    return rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=two_task_file(), data=st.data())
def test_random_programs_sharing_globals_in_two_tasks_agree(src, data):
    path = _tmpdir / f"tasks_{next(_counter)}.py"
    path.write_text(src)
    xs = data.draw(
        st.lists(st.tuples(st.integers(-50, 50), st.integers(-50, 50)), min_size=3, max_size=15)
    )
    compiled, reference = run_file(path, "compiled", xs), run_file(path, "reference", xs)
    for (k, a), (_, b) in zip(compiled, reference, strict=True):
        assert a == b, f"cycle {k}: {a} != {b}\n--- program ---\n{src}"
