"""``softplc check``: compiles every program of a file and reports errors by location."""

import json
from pathlib import Path

from softplc.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_check_reports_compiled_programs(capsys):
    assert main(["check", str(ROOT / "programs" / "traffic_light.py")]) == 0
    out = capsys.readouterr().out
    assert "traffic_light: compiled (" in out and "1 program ok, 0 with errors" in out


def test_check_reports_each_error_with_file_line_and_column(capsys):
    bad = ROOT / "tests" / "unit" / "compiler" / "bad_programs.py"
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "# E:WhileLoop" in t)
    assert f"bad_programs.py:{line}:9: error: while loop" in out
    assert "with errors" in out


def test_check_names_the_helper_module_where_an_error_is(tmp_path, capsys, monkeypatch):
    (tmp_path / "limits.py").write_text(
        "from softplc.stdlib import TO_INT\n\n\n"
        "def big_cmp(k):\n"
        "    if k < 100000000000000000000000:\n"
        "        return TO_INT(1)\n"
        "    return TO_INT(0)\n"
    )
    prog = tmp_path / "plant.py"
    prog.write_text(
        "from limits import big_cmp\n"
        "from softplc import INT, Output, program\n\n\n"
        "@program\n"
        "class Plant:\n"
        "    y = Output(INT)\n\n"
        "    def scan(self):\n"
        "        for i in range(3):\n"
        "            self.y = big_cmp(i)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as `python -m softplc` run from here
    assert main(["check", str(prog)]) == 1
    out = capsys.readouterr().out
    assert "limits.py:5:12: error: integer constant" in out, out
    assert "hint:" in out


def test_check_reports_scan_with_an_io_parameter(tmp_path, capsys):
    prog = tmp_path / "scan_io.py"
    prog.write_text(
        "from softplc import INT, Output, program\n\n\n"
        "@program\n"
        "class ScanIo:\n"
        "    y = Output(INT)\n\n"
        "    def scan(self, io):\n"
        "        self.y = 1\n"
    )
    assert main(["check", str(prog)]) == 1
    out = capsys.readouterr().out
    assert "scan_io.py:8:20: error: scan signature" in out, out
    assert "def scan(self)" in out


# The README's program-form example as first published: %IX0.0 is bit 0 of byte 0,
# which %ID0 (bytes 0-3) already holds.
README_TANK = """\
from softplc import program, Input, Output, Memory, BOOL, REAL, TON, R_TRIG, s

@program
class TankLevel:
    level = Input(REAL, "%ID0")
    start = Input(BOOL, "%IX0.0")
    stop = Input(BOOL, "%IX0.1")
    pump = Output(BOOL, "%QX0.0")
    alarm = Output(BOOL)                 # address assigned automatically
    running = Memory(BOOL)
    low_limit = Memory(REAL, 20.0)       # initial value
    dry_run = TON(PT=s(5))               # function block instance with a parameter
    start_edge = R_TRIG()

    def scan(self):
        self.start_edge(CLK=self.start)
        if self.start_edge.Q:
            self.running = True
        if self.stop:
            self.running = False
        if self.level < self.low_limit:
            self.pump = self.running
        elif self.level > 80.0:
            self.pump = False
        self.dry_run(IN=self.pump and self.level < 1.0)
        self.alarm = self.dry_run.Q
"""


def test_check_reports_an_address_overlap_at_the_declaration(tmp_path, capsys, monkeypatch):
    (tmp_path / "tank_level.py").write_text(README_TANK)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "tank_level.py"]) == 1
    out = capsys.readouterr().out
    assert (
        'tank_level.py:6:5: error: declaration of start: address %IX0.0 of "tank_level.start" '
        'overlaps %ID0 of "tank_level.level" (hint: ' in out
    ), out
    assert "0 programs ok, 1 with errors" in out


def test_check_reports_programs_that_overlap_each_other_as_json(tmp_path, capsys, monkeypatch):
    (tmp_path / "two.py").write_text(
        "from softplc import BOOL, INT, Output, program\n\n\n"
        "@program\n"
        "class First:\n"
        '    y = Output(INT, "%QW0")\n\n'
        "    def scan(self):\n"
        "        self.y = 1\n\n\n"
        "@program\n"
        "class Second:\n"
        '    flag = Output(BOOL, "%QX1.0")\n\n'
        "    def scan(self):\n"
        "        self.flag = True\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["check", "two.py", "--json"]) == 1
    report = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert report["first"]["kind"] == "compiled"
    second = report["second"]
    assert second["kind"] == "error", second
    assert (second["file"], second["line"], second["column"]) == ("two.py", 14, 5)
    assert second["construct"] == "declaration of flag"
    assert '%QX1.0 of "second.flag" overlaps %QW0 of "first.y"' in second["error"]


def test_check_reports_an_overlap_of_global_variables(tmp_path, capsys):
    prog = tmp_path / "globals.py"
    prog.write_text(
        "from softplc import BOOL, INT, Input\n\n"
        'speed = Input(INT, "%IW0")\n'
        'running = Input(BOOL, "%IX1.0")\n\n\n'
        "def logic(io):\n"
        "    pass\n\n\n"
        "PROGRAMS = [logic]\n"
    )
    assert main(["check", str(prog)]) == 1
    out = capsys.readouterr().out
    assert 'variable running: address %IX1.0 of "running" overlaps %IW0 of "speed"' in out, out


def test_check_reports_every_error_of_a_program_each_at_its_place(tmp_path, capsys):
    prog = tmp_path / "many.py"
    prog.write_text(
        "from softplc import INT, REAL, Input, Output, program\n\n\n"
        "@program\n"
        "class Many:\n"
        "    a = Input(INT)\n"
        "    r = Input(REAL)\n"
        "    y = Output(INT)\n\n"
        "    def scan(self):\n"
        "        self.y = self.nope\n"
        "        while self.a > 0:\n"
        "            self.y = 1\n"
        "        v = self.r ** 2\n"
        "        self.y = v + 1\n"
        "        self.y = self.r\n"
    )
    assert main(["check", str(prog), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    got = [(r["line"], r["column"], r["construct"]) for r in report]
    # v's assignment fails, so its use on line 15 is not reported a second time.
    assert got == [
        (11, 18, "attribute"),
        (12, 9, "while loop"),
        (14, 13, "operator Pow"),
        (16, 9, "implicit conversion"),
    ], got


def test_check_stops_after_the_error_cap(tmp_path, capsys):
    from softplc.compiler.errors import MAX_ERRORS

    body = "".join(f"        self.y = self.nope{k}\n" for k in range(MAX_ERRORS + 5))
    prog = tmp_path / "lots.py"
    prog.write_text(
        "from softplc import INT, Output, program\n\n\n"
        "@program\n"
        "class Lots:\n"
        "    y = Output(INT)\n\n"
        "    def scan(self):\n" + body
    )
    assert main(["check", str(prog)]) == 1
    out = capsys.readouterr().out
    assert out.count("error: attribute") == MAX_ERRORS
    assert f"lots: stopped after {MAX_ERRORS} errors" in out
