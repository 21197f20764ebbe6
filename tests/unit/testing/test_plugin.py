"""The pytest plugin, run as a user runs it: pytest in a subprocess on a test folder,
with the plugin found through softplc's pytest11 entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PROGRAMS

TESTS = """
from softplc.testing import always

def test_passes(plc):
    bench = plc("tank.py")
    bench.run_for("5s")
    always(bench, "0 <= level <= 100")

def test_fails_an_assertion(plc):
    bench = plc("tank.py", mode="reference")
    bench.run_for("5s")
    always(bench, "level > 49")

def test_leaves_a_fault_unreported(plc):
    bench = plc(Div(), plant=None)
    bench.set(d=0)
    bench.engine.run_cycles(2)
"""

DIV = """
from softplc import INT, Input, Output, program

@program
class Div:
    d = Input(INT, initial=1)
    q = Output(INT)

    def scan(self):
        self.q = 100 // self.d
"""


def pytest_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *args,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tank.py").write_text((PROGRAMS / "tank.py").read_text())
    (tmp_path / "divprog.py").write_text(DIV)
    (tmp_path / "test_bench.py").write_text("from divprog import Div\n" + TESTS)
    return tmp_path


def test_failing_tests_keep_their_traces_and_the_report_prints_them(project):
    keep = project / "kept"
    r = pytest_in(project, "--softplc-keep-traces", str(keep))
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    # The test that left a fault passes its body and errors at teardown.
    assert "1 failed, 2 passed, 1 error" in out
    # The failing assertion, with its table, and the traces section with the path.
    assert "always(level > 49) failed at cycle" in out
    assert "softplc traces" in out
    failing = keep / "test_bench.py_test_fails_an_assertion" / "tank-1.trace"
    assert str(failing) in out and failing.is_file()
    # A fault the test did not look at fails it at teardown, naming the cause.
    assert "ERROR at teardown of test_leaves_a_fault_unreported" in out
    assert "division by zero" in out
    faulted = keep / "test_bench.py_test_leaves_a_fault_unreported" / "div-1.trace"
    assert faulted.is_file()
    # The passing test's traces are gone.
    assert sorted(p.name for p in keep.iterdir()) == [
        "test_bench.py_test_fails_an_assertion",
        "test_bench.py_test_leaves_a_fault_unreported",
    ]


def test_without_the_option_the_traces_stay_in_a_temporary_folder(project):
    r = pytest_in(project, "-k", "fails_an_assertion")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    at = next(k for k, ln in enumerate(lines) if ln.startswith("traces of this test"))
    line = lines[at + 1]
    assert Path(line).is_file() and "softplc-traces-" in line
    assert "--softplc-keep-traces DIR keeps them in DIR" in r.stdout
    Path(line).unlink()


def test_the_golden_option_is_accepted_and_a_clean_run_keeps_nothing(project, tmp_path):
    keep = tmp_path / "kept"
    r = pytest_in(
        project, "-k", "passes", "--softplc-update-golden", "--softplc-keep-traces", str(keep)
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert not keep.exists() or list(keep.iterdir()) == []


def test_a_program_file_is_found_from_the_rootdir_and_beside_the_test(project):
    sub = project / "sub"
    sub.mkdir()
    (sub / "test_nested.py").write_text(
        textwrap.dedent(
            """
            def test_from_root(plc):
                plc("tank.py").run_for("10ms")

            def test_missing(plc):
                plc("nope.py")
            """
        )
    )
    r = pytest_in(project, "sub")
    assert "1 failed, 1 passed" in r.stdout, r.stdout
    assert "program file 'nope.py' not found (looked in:" in r.stdout


def test_loading_the_plugin_builds_no_bench_machinery():
    code = (
        "import sys, softplc.testing.plugin\n"
        "print(sorted(m for m in sys.modules if m.startswith(('softplc.testing.', 'hypothesis'))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "['softplc.testing._registry', 'softplc.testing.plugin']"


def test_keep_traces_keeps_a_passing_test_s_trace(project, tmp_path):
    (project / "test_keep.py").write_text(
        "def test_keeps(plc):\n"
        "    bench = plc('tank.py')\n"
        "    bench.run_for('1s')\n"
        "    bench.keep_traces()\n"
        "\n"
        "def test_forgets(plc):\n"
        "    plc('tank.py').run_for('1s')\n"
    )
    keep = tmp_path / "kept"
    r = pytest_in(project, "test_keep.py", "--softplc-keep-traces", str(keep))
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(str(p.relative_to(keep)) for p in keep.rglob("*.trace")) == [
        "test_keep.py_test_keeps/tank-1.trace"
    ]
