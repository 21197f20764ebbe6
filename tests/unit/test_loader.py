"""Program files: what ``load_program_file`` accepts, and the engine
``ProgramFile.build_engine`` makes of it (what ``softplc run`` and
``softplc io check --program`` use)."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest
from softplc import ConfigError, Engine
from softplc.loader import load_program_file

from tests.conftest import PROGRAMS


def write(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


def test_a_module_level_scan_function_is_the_files_program(tmp_path):
    path = write(
        tmp_path,
        "counter.py",
        """
        from softplc import DINT, BOOL, Memory, Output

        n = Memory(DINT)
        odd = Output(BOOL, "%QX0.0")

        def scan(io):
            io.n = io.n + 1
            io.odd = io.n % 2 == 1
        """,
    )
    pf = load_program_file(path)
    assert [p.__name__ for p in pf.programs] == ["scan"]
    with pf.build_engine(clock="virtual", cycle="1ms") as plc:
        plc.start()
        plc.run_cycles(7)
        assert (plc.read("n"), plc.read("%QX0.0"), plc.state) == (7, True, "RUN")
        assert plc.status()["programs"] == [{"name": "scan", "task": "main", "mode": "python"}]


def test_a_module_level_scan_without_the_io_argument_says_what_to_write(tmp_path):
    path = write(tmp_path, "noarg.py", "x = 1\n\n\ndef scan():\n    pass\n")
    with pytest.raises(ConfigError) as e:
        load_program_file(path)
    assert str(e.value).startswith(f"{path}:4: the module-level scan must take one argument")
    assert "def scan(io):" in str(e.value)


def test_a_file_with_program_classes_and_a_module_level_scan_asks_which_runs(tmp_path):
    path = write(
        tmp_path,
        "both.py",
        """
        from softplc import BOOL, Output, program

        @program
        class Lamp:
            on = Output(BOOL)
            def scan(self):
                self.on = True

        def scan(io):
            pass
        """,
    )
    with pytest.raises(ConfigError, match=r"both\.py:10: .*\(Lamp\) and a module-level scan"):
        load_program_file(path)


def test_a_scan_function_imported_from_another_module_is_not_a_program(tmp_path):
    write(tmp_path, "helpers_for_scan.py", "def scan(io):\n    pass\n")
    path = write(tmp_path, "user.py", "from helpers_for_scan import scan\n")
    with pytest.raises(ConfigError, match="defines no program"):
        load_program_file(path)


def test_a_file_without_programs_names_every_form_a_program_can_take(tmp_path):
    path = write(tmp_path, "empty.py", "x = 1\n")
    with pytest.raises(ConfigError) as e:
        load_program_file(path)
    for form in ("@program class", "def scan(io)", "PROGRAMS = [...]", "TASKS = [...]"):
        assert form in str(e.value)


def test_build_engine_runs_program_classes_in_the_mode_asked(tmp_path):
    pf = load_program_file(PROGRAMS / "tank.py")
    for mode, shown in (("auto", "compiled"), ("reference", "reference")):
        with pf.build_engine(clock="virtual", cycle="20ms", mode=mode) as plc:
            plc.start()
            plc.run_cycles(3)
            assert [p["mode"] for p in plc.status()["programs"]] == [shown]
            assert plc.stats()[0]["period_ns"] == 20_000_000


def test_build_engine_gives_the_watchdog_to_declared_tasks_that_have_none(tmp_path):
    path = write(
        tmp_path,
        "tasks.py",
        """
        import time
        from softplc import Task

        def slow(io):
            time.sleep(0.02)

        TASKS = [Task("only", period="50ms", programs=[slow])]
        """,
    )
    pf = load_program_file(path)
    with pf.build_engine(clock="real", watchdog="5ms") as plc:
        plc.start()
        assert plc.wait(duration="2s", stop_on_fault=True) == "fault"
        assert plc.fault["kind"] == "watchdog"
    with pf.build_engine(clock="real") as plc:
        plc.start()
        assert plc.wait(cycles=3, stop_on_fault=True) == "cycles"
        assert plc.state == "RUN"


def test_build_engine_takes_keyword_arguments_only():
    pf = load_program_file(PROGRAMS / "blink.py")
    with pytest.raises(TypeError):
        pf.build_engine("virtual")  # type: ignore[misc]


def test_build_engine_leaves_nothing_open_when_a_driver_is_refused():
    pf = load_program_file(PROGRAMS / "blink.py")
    before = threading.active_count()
    with pytest.raises(ConfigError, match="is not a softplc driver"):
        pf.build_engine(clock="virtual", drivers=["not a driver"])
    assert threading.active_count() == before


def test_build_engine_makes_an_engine_with_the_files_plant():
    pf = load_program_file(PROGRAMS / "tank.py")
    plc = pf.build_engine(clock="virtual")
    try:
        assert isinstance(plc, Engine)
        plc.start()
        plc.run_cycles(100)
        assert plc.read("tank.level") != 0
    finally:
        plc.close()
