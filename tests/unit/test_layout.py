"""Binding a program file's variables as the engine does, without starting it."""

from pathlib import Path

from softplc import limits
from softplc.layout import bind_program_file
from softplc.loader import load_program_file

ROOT = Path(__file__).resolve().parents[2]


def test_a_valid_file_binds_every_variable_to_its_address():
    b = bind_program_file(load_program_file(ROOT / "programs" / "tank.py"))
    assert b.errors == []
    by_name = {v["name"]: v for v in b.variables}
    assert by_name["tank.level"]["address"] == "%ID0"
    assert all(v["address"].startswith("%") for v in b.variables)


def test_an_overlap_is_reported_at_the_declaration_of_the_later_variable(tmp_path):
    prog = tmp_path / "tank_level.py"
    prog.write_text(
        "from softplc import BOOL, REAL, Input, program\n\n\n"
        "@program\n"
        "class TankLevel:\n"
        '    level = Input(REAL, "%ID0")\n'
        '    start = Input(BOOL, "%IX0.0")\n\n'
        "    def scan(self):\n"
        "        pass\n"
    )
    (err,) = bind_program_file(load_program_file(prog)).errors
    assert (err.program, err.line, err.column) == ("tank_level", 7, 5)
    assert err.construct == "declaration of start"
    assert err.detail == 'address %IX0.0 of "tank_level.start" overlaps %ID0 of "tank_level.level"'
    assert str(err).startswith(f"{err.file}:7:5: error: declaration of start: address %IX0.0")
    assert "hint: " in str(err)


def test_programs_that_together_pass_the_image_limit_are_refused_by_the_engine(tmp_path):
    # Each program is within its own limit; the image holds only MAX_VARIABLES in all.
    n = limits.MAX_VARIABLES // 2 + 1
    prog = tmp_path / "halves.py"
    prog.write_text(
        "from softplc import ARRAY, BOOL, Memory, program\n\n\n"
        "@program\n"
        "class A:\n"
        f"    bits = Memory(ARRAY(BOOL, {n}))\n\n"
        "    def scan(self):\n"
        "        pass\n\n\n"
        "@program\n"
        "class B:\n"
        f"    bits = Memory(ARRAY(BOOL, {n}))\n\n"
        "    def scan(self):\n"
        "        pass\n"
    )
    b = bind_program_file(load_program_file(prog))
    (err,) = b.errors
    assert (err.program, err.line, err.construct) == ("b", 14, "declaration of bits")
    assert f"a process image holds at most {limits.MAX_VARIABLES} variables" in err.detail
    assert f'"b.bits[{limits.MAX_VARIABLES - n}]"' in err.detail
