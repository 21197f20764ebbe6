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

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from softplc import program as _unused  # noqa: F401  (the decorator, for type checkers)
from softplc._modules import prog
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
    }[tname]
    if tname.startswith("U"):
        return st.integers(0, (1 << bits) - 1)
    return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def input_steps(draw, inputs, n):
    """Random input changes: each cycle changes a few inputs (or none)."""
    steps = []
    for _ in range(n):
        step = {}
        for name, tname in inputs:
            if draw(st.integers(0, 3)) == 0:
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
from softplc import BOOL, DINT, INT, LREAL, REAL, TIME, UINT, Input, Memory, Output, program
from softplc.program import ARRAY
from softplc.stdlib import (ABS, COS, CTU, EXP, GET_BIT, LIMIT, MAX, MIN, R_TRIG, SEL, SIN,
    SQRT, TO_DINT, TO_INT, TO_LREAL, TO_REAL, TO_UINT, TOF, TON, TRUNC, ms)


def clamp3(x):
    if x < 0:
        return TO_INT(0)
    if x > 3:
        return TO_INT(3)
    return TO_INT(x)


@program
class Gen:
    a = Input(INT)
    b = Input(DINT)
    u = Input(UINT)
    r = Input(REAL)
    lr = Input(LREAL)
    f = Input(BOOL)
    g = Input(BOOL)
    m = Memory(INT)
    mr = Memory(REAL)
    mb = Memory(BOOL)
    md = Memory(DINT)
    arr = Memory(ARRAY(INT, 4))
    o_int = Output(DINT)
    o_real = Output(LREAL)
    o_bool = Output(BOOL)
    t = TON(PT=ms(30))
    off = TOF(PT=ms(20))
    c = CTU(PV=3)
    rt = R_TRIG()
    ts = [TON(PT=ms(10 * (k + 1))) for k in range(3)]

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
]


class Gen:
    """Draws typed Python source text."""

    def __init__(self, draw):
        self.draw = draw
        self.loop_vars: list[str] = []
        self.locals: list[str] = []

    def pick(self, xs):
        return self.draw(st.sampled_from(xs))

    def lit_int(self):
        return str(self.draw(st.integers(-50, 50)))

    def lit_real(self):
        return repr(self.draw(st.sampled_from([0.0, 0.5, -1.25, 3.0, 1e-3, 100.0, 0.1])))

    def int_(self, d):
        """An INT-typed expression (always has a typed leaf)."""
        leaves = ["self.a", "self.m", "self.arr[0]", "self.arr[3]", "self.c.CV"]
        leaves += [f"TO_INT({v})" for v in self.locals]
        if self.loop_vars:
            leaves.append(f"self.arr[{self.loop_vars[-1]}]")
        if d <= 0:
            return self.pick(leaves)
        k = self.draw(st.integers(0, 12))
        e = lambda: self.int_(d - 1)
        if k == 0:
            return self.pick(leaves)
        if k in (1, 2, 3):
            op = self.pick(["+", "-", "*", "//", "%", "&", "|", "^"])
            rhs = e() if self.draw(st.booleans()) else self.lit_int()
            if self.loop_vars and self.draw(st.booleans()):
                rhs = self.loop_vars[-1]
            return f"({e()} {op} {rhs})"
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
            return f"({e()} {self.pick(['<<', '>>'])} {self.draw(st.integers(0, 17))})"
        if k == 10:
            return f"TO_INT({self.dint_(d - 1)})"
        if k == 11:
            return f"(-{e()})"
        return f"self.arr[{self.pick(['clamp3(self.a)', 'LIMIT(0, self.m, 3)', 'self.a'])}]"

    def dint_(self, d):
        leaves = ["self.b", "self.md", "self.o_int"] + self.locals
        if d <= 0:
            return self.pick(leaves)
        k = self.draw(st.integers(0, 5))
        if k == 0:
            return self.pick(leaves)
        if k in (1, 2):
            op = self.pick(["+", "-", "*", "//", "%"])
            return f"({self.dint_(d - 1)} {op} {self.pick([self.int_(d - 1), self.dint_(d - 1), self.lit_int()])})"
        if k == 3:
            return f"TO_DINT({self.real_(d - 1)})"
        if k == 4:
            return f"TO_DINT(TRUNC({self.lreal_(d - 1)}))"
        return f"MAX({self.dint_(d - 1)}, {self.int_(d - 1)})"

    def real_(self, d):
        leaves = ["self.r", "self.mr"]
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
            return f"TO_REAL({self.int_(d - 1)})"
        if k == 6:
            return f"EXP(LIMIT(-20.0, {e()}, 20.0))"
        if k == 7:
            return f"TO_REAL({self.lreal_(d - 1)})"
        return f"{self.pick(['MIN', 'MAX'])}({e()}, {self.lit_real()})"

    def lreal_(self, d):
        leaves = ["self.lr", "self.o_real", "TO_LREAL(self.r)"]
        if d <= 0:
            return self.pick(leaves)
        k = self.draw(st.integers(0, 3))
        if k == 0:
            return self.pick(leaves)
        if k == 1:
            return f"({self.lreal_(d - 1)} {self.pick(['+', '-', '*', '/'])} {self.pick([self.real_(d - 1), self.dint_(d - 1), self.lit_real()])})"
        if k == 2:
            return f"({self.dint_(d - 1)} * {self.real_(d - 1)})"
        return f"SQRT(ABS({self.lreal_(d - 1)}))"

    def bool_(self, d):
        leaves = [
            "self.f",
            "self.g",
            "self.mb",
            "self.t.Q",
            "self.c.Q",
            "self.rt.Q",
            "self.off.Q",
            "self.ts[2].Q",
        ]
        if d <= 0:
            return self.pick(leaves)
        k = self.draw(st.integers(0, 7))
        if k == 0:
            return self.pick(leaves)
        if k == 1:
            return f"({self.int_(d - 1)} {self.pick(['<', '<=', '==', '!=', '>', '>='])} {self.pick([self.int_(d - 1), self.lit_int()])})"
        if k == 2:
            return f"({self.real_(d - 1)} {self.pick(['<', '>', '>='])} {self.pick([self.real_(d - 1), self.lit_real(), self.int_(d - 1)])})"
        if k == 3:
            return f"({self.bool_(d - 1)} {self.pick(['and', 'or'])} {self.bool_(d - 1)})"
        if k == 4:
            return f"(not {self.bool_(d - 1)})"
        if k == 5:
            return f"GET_BIT(TO_UINT({self.int_(d - 1)}), {self.draw(st.integers(0, 15))})"
        if k == 6:
            return f"({self.bool_(d - 1)} != {self.bool_(d - 1)})"
        return f"({self.dint_(d - 1)} < {self.int_(d - 1)} < {self.dint_(d - 1)})"

    def stmt(self, d, ind):
        p = " " * ind
        k = self.draw(st.integers(0, 11 if d > 0 else 6))
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
            call = self.pick(
                [
                    f"self.t(IN={self.bool_(1)})",
                    f"self.off(IN={self.bool_(1)})",
                    f"self.c(CU={self.bool_(1)}, R={self.bool_(1)})",
                    f"self.rt(CLK={self.bool_(1)})",
                    f"self.md += {self.int_(1)}",
                ]
            )
            return f"{p}{call}\n"
        if k == 7:
            s = f"{p}if {self.bool_(2)}:\n{self.block(d - 1, ind + 4)}"
            if self.draw(st.booleans()):
                s += f"{p}elif {self.bool_(1)}:\n{self.block(d - 1, ind + 4)}"
            if self.draw(st.booleans()):
                s += f"{p}else:\n{self.block(d - 1, ind + 4)}"
            return s
        if k == 8:
            v = f"i{len(self.loop_vars)}"
            n = self.draw(st.integers(0, 4))
            self.loop_vars.append(v)
            body = f"{p}    self.arr[{v}] = {self.int_(2)}\n" + self.block(d - 1, ind + 4)
            self.loop_vars.pop()
            return f"{p}for {v} in range({n}):\n{body}"
        if k == 9:
            v = f"v{len(self.locals)}"
            s = f"{p}{v} = TO_DINT({self.int_(2)})\n"
            self.locals.append(v)
            return s
        if k == 10:
            v = f"j{len(self.loop_vars)}"
            self.loop_vars.append(v)
            s = f"{p}for {v} in range(3):\n{p}    self.ts[{v}](IN={self.bool_(1)})\n{p}    self.o_bool = self.ts[{v}].Q\n"
            self.loop_vars.pop()
            return s
        return f"{p}self.arr[{self.pick(['clamp3(self.m)', 'self.a'])}] = {self.int_(1)}\n"

    def block(self, d, ind):
        saved = list(self.locals)
        n = self.draw(st.integers(1, 3))
        out = "".join(self.stmt(d, ind) for _ in range(n))
        self.locals = saved  # locals assigned in a branch are not visible after it
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


_ = (math, f32)
