"""A compiled program reads the quality and age of a Modbus input with QUALITY/AGE and
sees BAD when the pymodbus device is stopped mid-run, GOOD again when it returns."""

from __future__ import annotations

import pytest
import softplc.io as sio
from conftest import wait_until
from softplc import (
    AGE,
    BAD,
    BOOL,
    GOOD,
    QUALITY,
    REAL,
    TIME,
    USINT,
    Engine,
    Input,
    Memory,
    Output,
    program,
)


@program
class LevelWatch:
    level = Input(REAL, "%ID0")
    q = Output(USINT)
    age = Output(TIME)
    lost = Output(BOOL)
    was_bad = Memory(BOOL)

    def scan(self):
        self.q = QUALITY(self.level)
        self.age = AGE(self.level)
        self.lost = QUALITY(self.level) == BAD
        if self.lost:
            self.was_bad = True


TOML = """
[[device]]
name = "d"
host = "127.0.0.1"
port = {port}
poll_ms = 20
timeout_ms = 200
fail_after = 2
reconnect_min_ms = 20
reconnect_max_ms = 100

[[device.read]]
var = "level_watch.level"
table = "input_register"
address = 0
type = "INT"
scale = 0.1
"""


def test_a_compiled_program_sees_bad_quality_when_the_device_stops(device, tmp_path):
    path = tmp_path / "io.toml"
    path.write_text(TOML.format(port=device.port))
    device.set("input_register", 0, [420])
    with Engine(clock="real", cycle="5ms") as e:
        e.add_program(LevelWatch(), mode="compiled")
        sio.attach(e, io=path)
        e.start()
        assert e.status()["programs"][0]["mode"] == "compiled"
        assert wait_until(
            lambda: (
                e.read("level_watch.q") == GOOD
                and e.read("level_watch.level") == pytest.approx(42.0)
            )
        )
        assert e.read("level_watch.lost") is False
        # Polled every 20 ms: fresh data is younger than a poll period plus a few cycles.
        assert 0 <= e.read("level_watch.age") < 200_000_000
        device.stop()
        assert wait_until(lambda: e.read("level_watch.q") == BAD, timeout=2)
        assert e.read("level_watch.lost") is True and e.read("level_watch.was_bad") is True
        assert e.quality("level_watch.level") == "bad"
        # The kept value grows old, and the program sees it age.
        first = e.read("level_watch.age")
        assert wait_until(lambda: e.read("level_watch.age") >= first + 50_000_000)
        device.start()
        assert wait_until(lambda: e.read("level_watch.q") == GOOD, timeout=3)
        assert e.read("level_watch.lost") is False
