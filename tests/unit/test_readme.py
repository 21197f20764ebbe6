"""Every code block of README.md works as a newcomer would use it.

* ``python`` blocks run (from the project root). A block that declares ``@program``
  classes is also loaded as a program file and run, compiled and in reference mode.
* ``sh`` blocks run line by line, in order, in one scratch directory (so a trace recorded
  by one line is there for the next), with the virtual environment's ``bin`` on
  ``PATH``: ``softplc ...`` lines as subprocesses with a time bound; a ``softplc run``
  without ``--duration`` or ``--cycles`` runs until Ctrl-C, so it gets SIGINT after a
  few seconds and must then stop cleanly. A ``softplc run ... &`` line starts a runtime
  in the background, as a shell would: the next lines run once its control channel
  answers, and it gets Ctrl-C at the end of the block. Runtimes and their state live in
  the scratch directory. ``make ...`` lines are not run (they set up the checkout this
  test runs in) but must name targets of the Makefile.
* ``text`` blocks are not code. A block in any other language fails the test, so that
  no block escapes it.
"""

from __future__ import annotations

import os
import re
import runpy
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from softplc import authoring
from softplc.loader import load_program_file

from tests.conftest import ROOT

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
# A `softplc run` that does not end by itself gets Ctrl-C after this long.
RUN_UNTIL_INTERRUPTED_S = 2.5
# Any other command must end within this.
COMMAND_TIMEOUT_S = 60


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, text, first line and the heading above it."""

    lang: str
    text: str
    line: int
    heading: str

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.heading})"


def readme_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    heading = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):  # a heading: code blocks are skipped whole below
            heading = line.lstrip("#").strip()
        m = re.match(r"^```(\S*)\s*$", line)
        if m:
            start = i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].startswith("```"))
            blocks.append(Block(m.group(1), "\n".join(lines[start:end]) + "\n", start, heading))
            i = end
        i += 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def _of(lang: str) -> list[Block]:
    return [b for b in BLOCKS if b.lang == lang]


def test_every_readme_block_says_its_language_and_is_one_the_test_knows():
    assert [str(b) for b in BLOCKS if b.lang not in ("python", "sh", "text")] == []
    assert _of("python") and _of("sh")


# -- python --------------------------------------------------------------------------------


@pytest.mark.parametrize("block", _of("python"), ids=str)
def test_python_blocks_run(block, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = tmp_path / f"readme_block_{block.line}.py"
    path.write_text(block.text)
    namespace = runpy.run_path(str(path), run_name="readme_block")
    classes = [v for v in namespace.values() if isinstance(v, type) and authoring.is_program(v)]
    if not classes:
        return
    # A program-form example: it runs as the program file it would be.
    pf = load_program_file(path)
    for mode in ("auto", "reference"):
        with pf.build_engine(clock="virtual", cycle="10ms", mode=mode) as plc:
            plc.start()
            plc.run_cycles(100)
            assert plc.state == "RUN", (mode, plc.fault)


# -- sh ------------------------------------------------------------------------------------


def _commands(block: Block) -> list[tuple[int, list[str]]]:
    out = []
    for k, line in enumerate(block.text.splitlines()):
        argv = shlex.split(line, comments=True)
        if argv:
            out.append((block.line + k + 1, argv))
    return out


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


def _runs_until_interrupted(argv: list[str]) -> bool:
    return argv[:2] == ["softplc", "run"] and not {"--duration", "--cycles", "--replay"} & set(argv)


def _free_port(argv: list[str]) -> list[str]:
    """``--modbus-server HOST:PORT`` with port 0: another test run on this machine may
    hold the README's fixed port. The command is otherwise run as written."""
    out = list(argv)
    for k, a in enumerate(out[:-1]):
        if a == "--modbus-server":
            out[k + 1] = out[k + 1].rpartition(":")[0] + ":0"
    return out


def _env(cwd: Path) -> dict[str, str]:
    runtime = cwd / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_STATE_HOME": str(cwd / "state"),
    }


def _start_background(argv: list[str], cwd: Path, where: str) -> subprocess.Popen[str]:
    """``softplc run ... &``: started, and waited for until its control channel answers."""
    assert argv[:2] == ["softplc", "run"], f"{where}: only softplc run goes in the background"
    env = _env(cwd)
    proc = subprocess.Popen(
        _free_port(argv), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    name = argv[argv.index("--name") + 1] if "--name" in argv else None
    assert name, f"{where}: a runtime in the background needs --name to be talked to"
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"{where}: ended at once ({proc.returncode}): {err}")
        r = subprocess.run(
            ["softplc", "status", name], cwd=cwd, env=env, capture_output=True, text=True,
            timeout=COMMAND_TIMEOUT_S,
        )  # fmt: skip
        if r.returncode == 0:
            return proc
        assert time.monotonic() < deadline, f"{where}: its control channel never answered"
        time.sleep(0.1)


def _stop_background(procs: list[tuple[str, subprocess.Popen[str]]]) -> None:
    for where, proc in procs:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=COMMAND_TIMEOUT_S)
        assert proc.returncode == 0, f"{where}: {err}"


def _run(argv: list[str], cwd: Path, where: str) -> None:
    env = _env(cwd)
    if _runs_until_interrupted(argv):
        proc = subprocess.Popen(
            _free_port(argv),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = proc.communicate(timeout=RUN_UNTIL_INTERRUPTED_S)
            pytest.fail(f"{where}: ended before Ctrl-C ({proc.returncode}): {err}")
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=COMMAND_TIMEOUT_S)
        assert proc.returncode == 0, f"{where}: {err}"
        assert "ran" in out and "cycles" in out, f"{where}: no summary: {out}"
        return
    r = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    assert r.returncode == 0, f"{where}: exit {r.returncode}: {r.stderr}"


@pytest.mark.parametrize("block", _of("sh"), ids=str)
def test_sh_blocks_run(block, tmp_path):
    # The commands name files as seen from the project root.
    (tmp_path / "programs").symlink_to(ROOT / "programs")
    targets = _makefile_targets()
    background: list[tuple[str, subprocess.Popen[str]]] = []
    try:
        for line, argv in _commands(block):
            where = f"README.md:{line}: {shlex.join(argv)}"
            if argv[0] == "make":
                assert set(argv[1:]) <= targets, f"{where}: no such Makefile target"
            elif argv[:2] in ([".", ".venv/bin/activate"], ["source", ".venv/bin/activate"]):
                # This test has the environment's bin on PATH already; the script exists.
                assert (BIN / "activate").is_file(), where
            elif argv[0] == "softplc" and argv[-1] == "&":
                background.append((where, _start_background(argv[:-1], tmp_path, where)))
            elif argv[0] == "softplc":
                assert (BIN / "softplc").is_file(), f"{where}: the venv has no softplc command"
                _run(argv, tmp_path, where)
            else:
                pytest.fail(f"{where}: this test knows only softplc, make and activate lines")
    finally:
        _stop_background(background)


def test_make_help_prints_plain_text_into_a_pipe():
    r = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "\x1b" not in r.stdout
    assert re.search(r"^  test +Set up, then run every test", r.stdout, flags=re.MULTILINE)
