"""programs/xgt_press.py with its I/O file, polling an XGK PLC over XGT: softplc's own
XGT server answering as that PLC (programs/xgt_press_plc.py), run by ``softplc run`` in
another process. pyXGTClient (tests/xgt_peers.py) looks into the PLC from a third
connection. Real clock."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import softplc.io as sio
from softplc import Engine
from softplc.loader import load_program_file
from xgt_peers import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], Any], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


class Plc:
    """The simulated press PLC: ``softplc run`` serving XGT on ``port``."""

    def __init__(self, tmp: Path, port: int) -> None:
        self.port = port
        toml = (ROOT / "programs" / "xgt_press_plc.toml").read_text()
        self.io = tmp / "xgt_press_plc.toml"
        self.io.write_text(toml.replace("127.0.0.1:2004", f"127.0.0.1:{port}"))
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        # Ctrl-C (SIGINT) must reach `softplc run` even when the test runner started us
        # with SIGINT ignored (see tests/unit/io/test_io_cli.py).
        boot = (
            "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from softplc.cli import main; sys.exit(main(sys.argv[1:]))"
        )
        cmd = [sys.executable, "-c", boot, "run"]
        cmd += [str(ROOT / "programs" / "xgt_press_plc.py"), "--io", str(self.io)]
        cmd += ["--cycle", "10ms", "--priority", "0", "--no-control"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return False
            return True

        assert wait_until(listening, timeout=20), self.proc.stderr and self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
        self.proc = None

    def peer(self) -> Client:
        return Client("127.0.0.1", self.port)


@pytest.fixture
def cell(tmp_path: Path) -> Iterator[tuple[Engine, Plc]]:
    plc = Plc(tmp_path, free_port())
    plc.start()
    toml = (ROOT / "programs" / "xgt_press.toml").read_text()
    io = tmp_path / "xgt_press.toml"
    io.write_text(toml.replace("port = 2004", f"port = {plc.port}"))
    pf = load_program_file(str(ROOT / "programs" / "xgt_press.py"))
    e = pf.build_engine(clock="real", cycle="10ms", drivers=sio.build_drivers(io=io))
    e.start()
    yield e, plc
    e.close()
    plc.stop()


def test_the_cell_runs_the_press_through_its_xgk_names(cell):
    e, plc = cell
    assert wait_until(lambda: e.read("xgt_press.comms_ok"))
    assert e.quality("xgt_press.pressure") == "good"
    e.force("xgt_press.start", True)
    assert wait_until(lambda: e.read("xgt_press.running"))
    # The setpoint reached the PLC's D200 (0.1 % per count), the enable bit M0100 (bit 0
    # of word M010: %MX160).
    with plc.peer() as p:
        assert wait_until(lambda: p.read(["%DW200"]) == [600])
        assert p.read(["%MX160"]) == [1]
    # The press builds up pressure (0.6 bar per %: 36 bar) and counts strokes.
    assert wait_until(lambda: e.read("xgt_press.pressure") > 30.0)
    first = e.read("xgt_press.strokes")
    assert wait_until(lambda: e.read("xgt_press.strokes") > first)
    assert e.read("xgt_press.alarm") is False


def test_a_press_fault_disables_the_press_until_the_next_start(cell):
    e, plc = cell
    # A start while the press's inputs are not known yet would be latched as a trip.
    assert wait_until(lambda: e.read("xgt_press.comms_ok"))
    e.force("xgt_press.start", True)
    assert wait_until(lambda: e.read("xgt_press.running"))
    with plc.peer() as p:
        p.write(["%MX1"], [1])  # M0001: the press reports a fault
        assert wait_until(lambda: e.read("xgt_press.alarm"))
        assert e.read("xgt_press.enable") is False
        assert wait_until(lambda: p.read(["%MX160", "%MX0"]) == [0, 0])
        p.write(["%MX1"], [0])
    e.wait(cycles=20)
    assert e.read("xgt_press.enable") is False, "latched until a new start"
    e.force("xgt_press.start", False)
    e.wait(cycles=2)
    e.force("xgt_press.start", True)
    assert wait_until(lambda: e.read("xgt_press.running"))


def test_a_silent_press_plc_turns_the_inputs_bad_and_a_restart_brings_them_back(cell):
    e, plc = cell
    assert wait_until(lambda: e.read("xgt_press.comms_ok"))
    e.force("xgt_press.start", True)
    assert wait_until(lambda: e.read("xgt_press.running"))
    plc.stop()
    assert wait_until(lambda: e.quality("xgt_press.pressure") == "bad")
    assert e.read("xgt_press.comms_ok") is False
    assert e.read("xgt_press.alarm") is True
    assert e.read("xgt_press.enable") is False
    st = e.status()["drivers"]["xgt"]
    assert st["devices"]["press"]["health"] == "bad", st
    # The PLC comes back (memory cleared): the cell writes its outputs again.
    plc.start()
    assert wait_until(lambda: e.quality("xgt_press.pressure") == "good", timeout=10)
    texts = [ev["text"] for ev in e.events()[0]]
    assert any("outputs written again" in t for t in texts), texts
    with plc.peer() as p:
        # Disabled (alarm latched), so the setpoint written again is 0.
        assert wait_until(lambda: p.read(["%DW200"]) == [0] and p.read(["%MX160"]) == [0])
