"""``softplc check``: compiles every program of a file and reports errors by location."""

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
