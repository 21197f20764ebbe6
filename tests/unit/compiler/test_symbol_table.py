"""The compiled form carries a symbol table of every cell that holds state across
scans: the fields of standard and user block instances, arrays of them included, with
their instance paths, IEC types and roles; the verifier checks it."""

from softplc import BOOL, DINT, INT, Input, Memory, Output, _native, function_block, program
from softplc.compiler import compile_instance
from softplc.differential import run_both
from softplc.stdlib import CTU, TON, ms


@function_block
class Gate:
    go = Input(BOOL)
    done = Output(BOOL)
    count = Memory(DINT)
    timer = TON(PT=ms(20))

    def scan(self):
        self.timer(IN=self.go)
        if self.timer.Q:
            self.count += 1
        self.done = self.timer.Q


@program
class Tracker:
    sel = Input(INT)
    run = Input(BOOL)
    out = Output(BOOL)
    gates = [Gate() for _ in range(3)]  # noqa: RUF012 (an array of blocks)
    mixer = Gate()
    parts = CTU(PV=5)

    def scan(self):
        self.gates[self.sel](go=self.run)
        self.mixer(go=self.run)
        self.parts(CU=self.run)
        self.out = self.gates[self.sel].done


def symbols(obj):
    return {p: (t, r, c) for p, t, r, c in _native.vm_symbols(compile_instance(obj))}


def test_every_field_of_every_block_instance_has_its_path_type_and_role():
    table = symbols(Tracker())
    assert table["tracker.gates[2].timer.ET"][:2] == ("TIME", "output")
    assert table["tracker.gates[0].go"][:2] == ("BOOL", "input")
    assert table["tracker.gates[1].count"][:2] == ("DINT", "internal")
    assert table["tracker.mixer.timer.START"][:2] == ("TIME", "internal")
    assert table["tracker.parts.CV"][:2] == ("INT", "output")
    # 3 gates and the mixer (3 variables + 7 timer fields each) and a CTU (6 fields).
    assert len(table) == 4 * 10 + 6
    # Elements of an array are equal runs of cells, one after another.
    stride = table["tracker.gates[1].go"][2] - table["tracker.gates[0].go"][2]
    assert table["tracker.gates[2].count"][2] - table["tracker.gates[1].count"][2] == stride


def test_a_runtime_index_into_an_array_of_user_blocks_agrees_and_faults_by_name():
    p = "tracker."
    steps = [{p + "sel": k % 3, p + "run": k % 4 != 3} for k in range(12)] + [{p + "sel": 3}]
    rows = run_both(Tracker, steps)
    assert rows[5][p + "out"] is True and rows[-2]["@fault"] is None
    assert "index 3 of tracker.gates is out of range 0..2" in rows[-1]["@fault"]
