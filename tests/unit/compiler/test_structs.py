"""Structures, multi-dimensional arrays and references: image variables of structure
type (with addresses and leaf names), arrays of structures with runtime indices, nested
structures, structures in blocks and as block inputs/outputs, helpers taking arrays and
structures by reference, whole-structure assignment; alike in both modes, with each
error at its place."""

import enum
from pathlib import Path

import pytest
from softplc import (
    ARRAY,
    BOOL,
    DINT,
    INT,
    REAL,
    ConfigError,
    Engine,
    Field,
    Input,
    Memory,
    Output,
    function_block,
    program,
    struct,
)
from softplc.compiler import CompileError, compile_instance
from softplc.differential import run_both
from softplc.stdlib import LIMIT, TO_INT, TON, ms

SOURCE = Path(__file__).read_text().splitlines()


def where(marker, token):
    for i, line in enumerate(SOURCE, start=1):
        if line.rstrip().endswith(f"# E:{marker}"):
            return i, line.index(token) + 1
    raise AssertionError(f"no marker {marker}")


class Kind(enum.IntEnum):
    SMALL = 1
    BIG = 2


@struct
class Dims:
    w = Field(INT)
    h = Field(INT, 2)


@struct
class Part:
    id = Field(DINT)
    kind = Field(Kind)
    weight = Field(REAL, 1.5)
    size = Field(Dims)
    bins = Field(ARRAY(INT, 3))


def total(p):
    return p.bins[0] + p.bins[1] + p.bins[2]


def bump_all(parts, n):
    for i in range(4):
        parts[i].id += n


def swap_ids(a, b):
    t = a.id
    a.id = b.id
    b.id = t


@function_block
class Gate:
    part = Input(Part)
    go = Input(BOOL)
    last = Output(Part)
    count = Output(DINT)
    history = Memory(ARRAY(DINT, 2, 3))
    timer = TON(PT=ms(20))

    def scan(self):
        self.timer(IN=self.go)
        if self.timer.Q:
            self.last = self.part
            self.count += 1
            self.history[self.count % 2, self.part.id % 3] = self.part.id


@program
class Tracker:
    sel = Input(INT)
    new_id = Input(DINT)
    go = Input(BOOL)
    entry = Input(Part, "%IB10")
    recs = Memory(ARRAY(Part, 4))
    grid = Memory(ARRAY(INT, 2, 3))
    gates = [Gate() for _ in range(3)]  # noqa: RUF012 (an array of blocks)
    out_id = Output(DINT)
    out_sum = Output(INT)
    out_w = Output(REAL)
    big = Output(BOOL)

    def scan(self):
        i = LIMIT(0, self.sel, 3)
        r = self.recs[i]  # a reference: r names element i from here on
        r.id = self.new_id
        r.kind = Kind.BIG if self.new_id > 100 else Kind.SMALL
        r.bins[TO_INT(self.new_id % 3)] += 1
        r.size.w = self.entry.size.w + 1
        self.recs[3 - i].weight = self.entry.weight * 2.0
        self.grid[i % 2, 2] = total(r)
        self.grid[1][i % 3] += self.grid[0, 2]
        bump_all(self.recs, 1)
        swap_ids(self.recs[0], self.recs[3])
        self.gates[i % 3](part=self.recs[i], go=self.go)
        self.out_id = self.gates[i % 3].last.id + self.gates[0].count
        self.out_sum = self.grid[1, 0] + total(self.recs[1])
        self.out_w = self.recs[i].weight + self.entry.weight
        self.big = self.recs[i].kind == Kind.BIG
        if self.sel > 3:
            self.recs[2] = self.entry  # a whole structure, leaf by leaf


def test_structures_and_multidimensional_arrays_agree_in_both_modes():
    p = "tracker."
    steps = [
        {p + "sel": 0, p + "new_id": 7, p + "go": True, p + "entry.weight": 2.5},
        {p + "sel": 2, p + "new_id": 150},
        {p + "sel": 1, p + "entry.size.w": 4},
        {p + "sel": 3, p + "go": False},
        {p + "sel": 5, p + "entry.id": 99, p + "entry.bins[2]": 8},
        {p + "sel": 2},
    ] + [{p + "sel": k % 4, p + "go": k % 3 != 0} for k in range(10)]
    rows = run_both(Tracker, steps)
    assert rows[0][p + "recs[3].id"] == 7 + 1  # swapped after the bump
    assert rows[4][p + "recs[2].id"] == 99 and rows[4][p + "recs[2].bins[2]"] == 8
    assert rows[2][p + "recs[1].size.w"] == 5


def test_leaves_have_paths_types_and_packed_addresses():
    with Engine(clock="virtual") as plc:
        plc.add_program(Tracker())
        plc.start()
        v = {x["name"]: x for x in plc.variables}
        # Part at %IB10: id DINT at byte 12 (aligned), kind INT, weight REAL, size, bins.
        assert [v[f"tracker.entry.{f}"]["address"] for f in ("id", "kind", "weight")] == [
            "%ID3",
            "%IW8",
            "%ID5",
        ]
        assert v["tracker.entry.bins[2]"]["address"] == "%IW16"  # size.w at 24, h 26, bins 28
        assert v["tracker.grid[1,2]"]["type"] == "INT"
        assert v["tracker.recs[3].size.h"]["type"] == "INT"
        plc.run_cycles(1)
        assert plc.read("tracker.recs[0].size.h") == 2
        assert plc.read("tracker.recs[1].kind") is Kind.SMALL


def test_a_runtime_index_past_an_array_of_structures_faults_naming_it():
    p = "tracker."

    @program
    class Picky:
        i = Input(INT)
        recs = Memory(ARRAY(Part, 3))
        y = Output(DINT)

        def scan(self):
            self.y = self.recs[self.i].id

    steps = [{p.replace("tracker", "picky") + "i": 2}, {"picky.i": 3}]
    rows = run_both(Picky, steps)
    assert "index 3 of picky.recs is out of range 0..2" in rows[-1]["@fault"]


@program
class NoField:
    recs = Memory(ARRAY(Part, 2))
    y = Output(DINT)

    def scan(self):
        self.y = self.recs[1].idx  # E:no-field


@program
class Aliased:
    recs = Memory(ARRAY(Part, 4))
    i = Input(INT)

    def scan(self):
        swap_ids(self.recs[self.i], self.recs[1])  # E:aliased


@program
class NotAliased:
    recs = Memory(ARRAY(Part, 4))
    y = Output(INT)

    def scan(self):
        swap_ids(self.recs[0], self.recs[1])
        self.y = total(self.recs[0]) + total(self.recs[0])


@program
class WrongShape:
    recs = Memory(ARRAY(Part, 4))
    d = Memory(Dims)

    def scan(self):
        self.recs[0] = self.d  # E:wrong-shape


@program
class AmbiguousRef:
    recs = Memory(ARRAY(Part, 4))
    c = Input(BOOL)
    y = Output(DINT)

    def scan(self):
        if self.c:
            r = self.recs[0]
        else:
            r = self.recs[1]
        self.y = r.id  # E:ambiguous


@program
class StructAsValue:
    d = Memory(Dims)
    y = Output(INT)

    def scan(self):
        self.y = self.d + 1  # E:struct-value


@pytest.mark.parametrize(
    ("cls", "marker", "token", "construct", "words"),
    [
        (NoField, "no-field", "self.recs[1].idx", "structure field", "Part has no field 'idx'"),
        (Aliased, "aliased", "swap_ids(", "aliased arguments", "writes through"),
        (WrongShape, "wrong-shape", "self.recs[0]", "assignment", "Dims"),
        (AmbiguousRef, "ambiguous", "r.id", "local reference", "different places"),
        (StructAsValue, "struct-value", "self.d", "value", "structure (Dims)"),
    ],
)
def test_each_structure_error_is_reported_at_its_place(cls, marker, token, construct, words):
    with pytest.raises(CompileError) as ei:
        compile_instance(cls())
    e = ei.value
    assert (e.line, e.column) == where(marker, token), str(e)
    assert e.construct == construct, str(e)
    assert words in str(e), str(e)


def test_distinct_constant_indices_do_not_alias():
    compile_instance(NotAliased())


def test_a_recursive_structure_is_refused_naming_the_chain():
    @struct
    class Node:
        value = Field(INT)
        next = Field("Node")

    with pytest.raises(ConfigError, match=r"Node contains itself \(Node\.next -> Node\)"):
        Memory(Node)

    @struct
    class A:
        b = Field("B")

    @struct
    class B:
        a = Field(ARRAY(A, 2))

    with pytest.raises(ConfigError, match=r"contains itself \(A\.b -> B\.a -> A\)"):
        Memory(ARRAY(A, 2))
