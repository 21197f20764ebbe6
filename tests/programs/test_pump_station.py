"""programs/pump_station.py with its I/O file, against a pymodbus device simulating the
wet well (programs/pump_station_device.py). Real clock: the plant runs fast."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "programs"))

import softplc.io as sio
from modbus_peers import Device
from pump_station_device import WetWell
from softplc import Engine
from softplc.loader import load_program_file


class Plant:
    """Steps the wet well against the device every 10 ms on a thread."""

    def __init__(self, dev: Device, well: WetWell) -> None:
        self.dev, self.well = dev, well
        self.lock = threading.Lock()
        self._stop = threading.Event()
        well.publish(dev)
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.01):
            now = time.monotonic()
            with self.lock:
                self.well.step(self.dev, now - last)
            last = now

    def close(self) -> None:
        self._stop.set()
        self._t.join(2)


@pytest.fixture
def station(tmp_path: Path) -> Iterator[tuple[Engine, Device, Plant]]:
    dev = Device().start()
    plant = Plant(dev, WetWell(level=85.0, inflow=30.0, pump_rate=25.0))
    toml = (ROOT / "programs" / "pump_station.toml").read_text()
    io = tmp_path / "pump_station.toml"
    io.write_text(toml.replace("port = 5020", f"port = {dev.port}"))
    pf = load_program_file(str(ROOT / "programs" / "pump_station.py"))
    e = pf.build_engine(clock="real", cycle="10ms", drivers=sio.build_drivers(io=io))
    e.start()
    yield e, dev, plant
    e.close()
    plant.close()
    dev.close()


def wait_until(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


def test_both_pumps_empty_the_well_and_stop_below_the_stop_level(station):
    e, dev, _ = station
    assert wait_until(lambda: e.read("pump_station.comms_ok"))
    assert wait_until(lambda: dev.get("coil", 0, 2) == [True, True])
    assert wait_until(lambda: dev.get("holding_register", 0) == [1000])
    assert wait_until(lambda: e.read("pump_station.outflow") > 0)
    # 50 %/s out, 30 %/s in: from 85 % to below 30 % in under 3 s.
    assert wait_until(lambda: dev.get("coil", 0, 2) == [False, False], timeout=6)
    assert e.read("pump_station.level") < 31.0
    assert e.read("pump_station.alarm") is False
    assert e.quality("pump_station.level") == "good"


def test_losing_the_device_raises_the_alarm_and_reconnecting_rewrites_the_outputs(station):
    e, dev, plant = station
    assert wait_until(lambda: dev.get("coil", 0, 2) == [True, True])
    dev.stop()
    assert wait_until(lambda: e.quality("pump_station.level") == "bad")
    assert e.read("pump_station.comms_ok") is False
    assert e.read("pump_station.alarm") is True
    # Without the transmitter and with the float switch unknown, the pumps stop.
    assert (e.read("pump_station.pump1"), e.read("pump_station.pump2")) == (False, False)
    # The device restarts with its coils cleared; the station writes its outputs again.
    with plant.lock:
        dev.set("coil", 0, [True, True, False])
        dev.start()
    assert wait_until(lambda: e.quality("pump_station.level") == "good")
    assert wait_until(lambda: e.read("pump_station.alarm") is False)
    assert wait_until(
        lambda: (
            dev.get("coil", 0, 3)
            == [e.read("pump_station.pump1"), e.read("pump_station.pump2"), False]
        )
    )
    texts = [ev["text"] for ev in e.events()[0]]
    assert any("outputs written again" in t for t in texts), texts


def test_a_float_switch_last_seen_up_is_not_trusted_once_the_device_is_silent(station):
    e, dev, plant = station
    # Inflow beyond both pumps: the well fills, the float switch goes up, both pumps run.
    with plant.lock:
        plant.well.inflow = 100.0
    assert wait_until(lambda: e.read("pump_station.float_high") is True)
    assert wait_until(
        lambda: (e.read("pump_station.pump1"), e.read("pump_station.pump2")) == (True, True)
    )
    dev.stop()
    assert wait_until(lambda: e.quality("pump_station.float_high") == "bad")
    # The kept value still says "up", but nothing known says so now: the pumps are
    # commanded off (they restart from fresh readings) and the alarm is on.
    assert e.read("pump_station.float_high") is True
    e.wait(cycles=2)
    assert (e.read("pump_station.pump1"), e.read("pump_station.pump2")) == (False, False)
    assert e.read("pump_station.alarm") is True
    # The device answers again with the float switch still up: both pumps run again.
    with plant.lock:
        dev.start()
    assert wait_until(lambda: e.quality("pump_station.float_high") == "good")
    assert wait_until(lambda: dev.get("coil", 0, 2) == [True, True])
