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
