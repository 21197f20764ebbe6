"""Record and replay: a real run with a Modbus device, recorded, then replayed in
virtual time; the outputs are reproduced, a changed program is caught at its first
divergence, and a capture of another program is refused (issue: plants and
campaigns, item 3)."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import softplc.io as sio
from modbus_peers import Device
from softplc import ConfigError
from softplc.loader import load_program_file
from softplc.replay import replay

PROGRAM = """
from softplc import program, Input, Output, Memory, BOOL, INT, DINT

@program
class Sump:
    level = Input(INT, "%IW0")
    float_high = Input(BOOL, "%IX4.0")
    pump = Output(BOOL, "%QX0.0")
    alarm = Output(BOOL, "%QX0.1")
    starts = Memory(DINT)
    running = Memory(BOOL)

    def scan(self):
        if self.level > 600 or self.float_high:
            if not self.running:
                self.starts = self.starts + 1
            self.running = True
        elif self.level < 300:
            self.running = False
        self.pump = self.running
        self.alarm = self.level > 900
"""

IO = """
[[device]]
name = "sump"
host = "127.0.0.1"
port = {port}
poll_ms = 5
timeout_ms = 200

[[device.read]]
var = "sump.level"
table = "input_register"
address = 0
type = "INT"

[[device.read]]
var = "sump.float_high"
table = "discrete_input"
address = 0
"""


def record(tmp_path: Path) -> Path:
    """A real-time run polling a pymodbus device whose level rises and falls."""
    prog = tmp_path / "sump.py"
    prog.write_text(textwrap.dedent(PROGRAM))
    capture = tmp_path / "capture.trace"
    with Device() as dev:
        toml = tmp_path / "io.toml"
        toml.write_text(IO.format(port=dev.port))
        stop = threading.Event()

        def wave() -> None:
            k = 0
            while not stop.is_set():
                level = int(500 + 450 * ((k % 40) / 20 - 1))
                dev.set("input_register", 0, [level & 0xFFFF])
                dev.set("discrete_input", 0, [k % 37 == 0])
                k += 1
                time.sleep(0.01)

        t = threading.Thread(target=wave, daemon=True)
        t.start()
        pf = load_program_file(prog)
        e = pf.build_engine(clock="real", cycle="2ms", drivers=sio.build_drivers(io=toml))
        e.start()
        e.start_trace(capture)
        time.sleep(1.5)
        e.stop_trace()
        e.close()
        stop.set()
        t.join(2)
    return prog


def test_a_recorded_modbus_run_replays_to_the_same_outputs(tmp_path: Path) -> None:
    prog = record(tmp_path)
    result = replay(prog, tmp_path / "capture.trace")
    assert result.cycles > 300
    assert result.same, result.text
    assert set(result.compared) == {"sump.pump", "sump.alarm"}


def test_a_changed_program_diverges_at_a_named_cycle(tmp_path: Path) -> None:
    prog = record(tmp_path)
    changed = tmp_path / "sump2.py"
    changed.write_text(prog.read_text().replace("self.level > 900", "self.level > 800"))
    result = replay(changed, tmp_path / "capture.trace")
    assert not result.same
    first = result.divergences[0]
    assert first.signal == "sump.alarm"
    assert (first.recorded, first.replayed) == (False, True)
    assert f"first divergence at cycle {first.cycle}" in result.text


def test_a_capture_of_another_program_is_refused(tmp_path: Path) -> None:
    record(tmp_path)
    other = tmp_path / "other.py"
    other.write_text(
        "from softplc import program, Input, Output, BOOL\n\n@program\nclass Other:\n"
        "    button = Input(BOOL)\n    lamp = Output(BOOL)\n\n"
        "    def scan(self):\n        self.lamp = self.button\n"
    )
    with pytest.raises(ConfigError, match=r"does not hold other\.button.*not a trace of"):
        replay(other, tmp_path / "capture.trace")
