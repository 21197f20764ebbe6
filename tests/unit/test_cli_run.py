"""``softplc run`` in a real subprocess: summaries, JSON, bad input, faults, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import PROGRAMS

CLI = [sys.executable, "-m", "softplc.cli"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "run", *args], check=False, capture_output=True, text=True, timeout=timeout
    )


def write(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return str(p)


def test_blink_runs_in_real_time_and_prints_a_summary():
    r = run(str(PROGRAMS / "blink.py"), "--cycle", "1ms", "--cycles", "200", "--priority", "0")
    assert r.returncode == 0, r.stderr
    assert "ran 200 cycles" in r.stdout
    assert "program blink:" in r.stdout
    assert "latency" in r.stdout and "p99.9" in r.stdout


def test_json_summary_has_the_documented_keys():
    r = run(str(PROGRAMS / "tank.py"), "--virtual", "--cycles", "500", "--json")
    assert r.returncode == 0, r.stderr
    js = json.loads(r.stdout)
    assert js["cycles"] == 500 and js["overruns"] == 0 and js["state"] in ("RUN", "STOP")
    for key in ("latency_us", "exec_us", "period_us"):
        assert set(js[key]) == {"p50", "p99", "p999", "max"}
    assert js["tasks"][0]["name"] == "main"
    assert js["period_us"]["p50"] == pytest.approx(10_000, rel=0.01)


def test_a_fixed_virtual_period_is_reported_exactly_not_as_a_histogram_bucket():
    r = run(str(PROGRAMS / "tank.py"), "--virtual", "--cycle", "10ms", "--cycles", "300", "--json")
    assert r.returncode == 0, r.stderr
    period = json.loads(r.stdout)["period_us"]
    assert period == {"p50": 10_000.0, "p99": 10_000.0, "p999": 10_000.0, "max": 10_000.0}
    r = run(str(PROGRAMS / "tank.py"), "--virtual", "--cycle", "10ms", "--cycles", "300")
    assert "period     10000.0   10000.0   10000.0   10000.0" in r.stdout


def test_several_tasks_are_reported_under_tasks(tmp_path):
    prog = write(
        tmp_path,
        "two.py",
        """
        from softplc import Task, Memory, DINT, program

        @program
        class A:
            n = Memory(DINT)
            def scan(self):
                self.n = self.n + 1

        @program
        class B:
            n = Memory(DINT)
            def scan(self):
                self.n = self.n + 1

        TASKS = [Task("fast", period="1ms", programs=[A()]),
                 Task("slow", period="5ms", programs=[B()], priority=1)]
        """,
    )
    r = run(prog, "--virtual", "--duration", "10ms", "--json", "--reference")
    assert r.returncode == 0, r.stderr
    js = json.loads(r.stdout)
    assert {t["name"]: t["cycles"] for t in js["tasks"]} == {"fast": 10, "slow": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.py"], "program file 'missing.py' does not exist"),
        (["{blink}", "--cycle", "0ms"], "--cycle must be greater than 0"),
        (["{blink}", "--duration=-5s"], "--duration must not be negative"),
        (["{blink}", "--virtual"], "--virtual needs --cycles N or --duration T"),
        (["{blink}", "--cycle", "fast"], "--cycle: cannot read duration 'fast'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args, message):
    args = [a.format(blink=PROGRAMS / "blink.py") for a in args]
    r = run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"softplc: error: {message}"), lines


def test_a_file_without_programs_is_an_error(tmp_path):
    prog = write(tmp_path, "empty.py", "x = 1\n")
    r = run(prog, "--virtual", "--cycles", "1")
    assert r.returncode == 2
    assert "defines no program" in r.stderr and "empty.py" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_file_that_fails_to_import_names_file_and_line(tmp_path):
    prog = write(tmp_path, "bad.py", "import softplc\n\nundefined_name + 1\n")
    r = run(prog, "--virtual", "--cycles", "1")
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        == f"softplc: error: {prog}:3: NameError: name 'undefined_name' is not defined"
    )


def test_a_bad_address_in_a_program_names_the_variable(tmp_path):
    prog = write(
        tmp_path,
        "addr.py",
        """
        from softplc import Output, REAL, program

        @program
        class P:
            speed = Output(REAL, "%QW2")
            def scan(self):
                pass
        """,
    )
    r = run(prog, "--virtual", "--cycles", "1")
    assert r.returncode == 2
    assert 'type mismatch for "p.speed" (REAL)' in r.stderr


def test_a_program_raising_on_its_first_scan_faults_and_exits_nonzero(tmp_path):
    prog = write(
        tmp_path,
        "raise.py",
        """
        from softplc import Output, BOOL, program

        @program
        class P:
            out = Output(BOOL)
            def scan(self):
                raise ZeroDivisionError("first scan")
        """,
    )
    for extra in (["--virtual", "--cycles", "10"], ["--duration", "2s", "--priority", "0"]):
        r = run(prog, "--reference", *extra)
        assert r.returncode == 3, r.stdout + r.stderr
        assert "FAULT: program in task main (p) at cycle 0" in r.stdout
        assert "ZeroDivisionError: first scan" in r.stdout


def test_ctrl_c_stops_cleanly_with_a_summary():
    # A shell without job control starts background jobs with SIGINT ignored, and the
    # child would inherit that; give it the default disposition, as a terminal would.
    p = subprocess.Popen(
        [*CLI, "run", str(PROGRAMS / "blink.py"), "--cycle", "1ms", "--priority", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert "ran" in out and "cycles" in out
    assert "Traceback" not in err


def test_sigterm_stops_cleanly_like_ctrl_c(tmp_path: Path) -> None:
    # Service managers stop a runtime with SIGTERM: outputs safe, retained values saved,
    # the summary printed, exit 0 (not the abrupt end SIGTERM's default action is).
    prog = tmp_path / "counter.py"
    prog.write_text(
        "from softplc import Memory, DINT, program\n\n"
        "@program\n"
        "class Counter:\n"
        "    n = Memory(DINT, retain=True)\n\n"
        "    def scan(self):\n"
        "        self.n += 1\n"
    )
    p = subprocess.Popen(
        [*CLI, "run", str(prog), "--cycle", "1ms", "--priority", "0", "--no-control",
         "--retain-dir", str(tmp_path / "retain"), "--retain-cadence", "1h"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    time.sleep(1.5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert "ran" in out and "cycles" in out
    assert "Traceback" not in err
    # The cadence is an hour: only the clean stop's final save wrote the slot.
    assert list((tmp_path / "retain").glob("counter.retain.*")), out


def test_the_live_status_line_is_shown_on_a_terminal():
    pid, fd = os.forkpty()
    if pid == 0:  # child: the CLI on a pseudo-terminal
        os.execv(sys.executable, [sys.executable, "-m", "softplc.cli", "run",
                                  str(PROGRAMS / "blink.py"), "--cycle", "1ms",
                                  "--duration", "700ms", "--priority", "0"])  # fmt: skip
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    text = b"".join(chunks).decode()
    assert "\rRUN   cycles" in text and "overruns" in text
