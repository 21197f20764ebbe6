"""Generates the 1,000-rung benchmark program (boolean logic, comparisons, arithmetic,
100 timers, 100 counters) as straight-line source, the way a ladder-to-code generator
would. ``benches/src/main.rs`` has the hand-written Rust equivalent (same index
formulas); the benchmark cross-checks their outputs."""

from __future__ import annotations

HEAD = """from softplc import BOOL, INT, Input, Output, program
from softplc import ARRAY
from softplc.stdlib import CTU, TON, ms


@program
class Rungs:
    ib = Input(ARRAY(BOOL, 32))
    ii = Input(ARRAY(INT, 16))
    ob = Output(ARRAY(BOOL, 400))
    oc = Output(ARRAY(BOOL, 200))
    oi = Output(ARRAY(INT, 200))
    ot = Output(ARRAY(BOOL, 100))
    ocv = Output(ARRAY(INT, 100))
    tm = [TON(PT=ms(10 * (k % 10 + 1))) for k in range(100)]
    ct = [CTU(PV=k % 20 + 5) for k in range(100)]

    def scan(self):
"""


def source() -> str:
    """The program's source text."""
    lines = []
    for i in range(400):
        a, b, c = i % 32, (i * 7 + 3) % 32, (i * 13 + 5) % 32
        lines.append(f"self.ob[{i}] = (self.ib[{a}] and self.ib[{b}]) or not self.ib[{c}]")
    for j in range(200):
        lines.append(f"self.oc[{j}] = self.ii[{j % 16}] > self.ii[{(j * 5 + 1) % 16}] + {j}")
    for j in range(200):
        lines.append(f"self.oi[{j}] = (self.ii[{j % 16}] * 3 + self.ii[{(j + 1) % 16}]) // 7 - {j}")
    for k in range(100):
        lines.append(f"self.tm[{k}](IN=self.ib[{k % 32}])")
        lines.append(f"self.ot[{k}] = self.tm[{k}].Q")
    for k in range(100):
        lines.append(f"self.ct[{k}](CU=self.ib[{(k + 3) % 32}], R=self.ib[{(k + 11) % 32}])")
        lines.append(f"self.ocv[{k}] = self.ct[{k}].CV")
    return HEAD + "".join(f"        {ln}\n" for ln in lines)
