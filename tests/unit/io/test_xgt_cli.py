"""``softplc run PROGRAM.py --xgt-server HOST:PORT [--xgt-cpu CPU]`` as a real
subprocess, read by pyXGTClient (tests/xgt_peers.py) while it runs."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_until
from xgt_peers import Client, XgtNakReply

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = """
from softplc import INT, Output, program


@program
class Served:
    answer = Output(INT, "%QW3")

    def scan(self):
        self.answer = 1234
"""

# Ctrl-C must reach `softplc run` as KeyboardInterrupt even when the test runner
# started us with SIGINT ignored (see tests/unit/io/test_io_cli.py).
BOOT = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from softplc.cli import main; sys.exit(main(sys.argv[1:]))"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("cpu", "name"), [(None, "%QW3"), ("XGK", "%DW3")])
def test_softplc_run_answers_as_an_xgt_plc_until_ctrl_c(tmp_path, cpu, name):
    prog = tmp_path / "served.py"
    prog.write_text(PROGRAM)
    port = free_port()
    cmd = [sys.executable, "-c", BOOT, "run", str(prog), "--xgt-server", f"127.0.0.1:{port}"]
    if cpu is not None:
        cmd += ["--xgt-cpu", cpu]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:

        def answer() -> list[int] | None:
            try:
                with Client("127.0.0.1", port, timeout=0.5) as c:
                    return c.read([name])
            except (ConnectionError, OSError, XgtNakReply):
                return None

        assert wait_until(lambda: answer() == [1234], timeout=30, step=0.1), proc.poll()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "state RUN" in out, out


def test_an_xgt_cpu_without_a_server_is_a_usage_error(tmp_path):
    prog = tmp_path / "served.py"
    prog.write_text(PROGRAM)
    r = subprocess.run(
        [sys.executable, "-m", "softplc.cli", "run", str(prog), "--xgt-cpu", "XGK"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--xgt-cpu needs --xgt-server" in r.stderr, r.stderr
