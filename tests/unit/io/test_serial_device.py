"""Python serial devices: a user class on pyserial run on its own thread, over
``loop://``, ``socket://`` and a real pseudo-terminal; errors, hangs and restarts."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import softplc.io as sio
from conftest import wait_until
from serial_peers import PtyPair, socat_available
from softplc import BOOL, INT, REAL, ConfigError, Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "programs"))
from scale_device import Scale, SimulatedScale


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for e in made:
        e.close()


def run(engines: list[Engine], driver: Any, variables: list[tuple[str, str, Any, str]]) -> Engine:
    e = Engine(clock="real", cycle="2ms")
    for v in variables:
        e.declare(*v)
    e.add_task("main", period="2ms")
    e.add_driver(driver)
    e.start()
    engines.append(e)
    return e


class Counter:
    """Writes a counter to ``loop://`` and reads it back; records outputs written."""

    def __init__(self) -> None:
        self.n = 0
        self.written: list[dict[str, Any]] = []

    def poll(self, port: Any, deadline: float) -> dict[str, Any]:
        self.n += 1
        port.write(b"%d\n" % self.n)
        return {"c.count": int(port.readline())}

    def write(self, port: Any, outputs: dict[str, Any]) -> None:
        self.written.append(dict(outputs))


def test_a_device_over_loop_fills_its_inputs_with_quality_and_age(engines):
    dev = Counter()
    d = sio.serial_device(dev, port="loop://", inputs=["c.count"], outputs=["c.lamp"], poll="10ms")
    e = run(engines, d, [("c.count", "input", INT, "%IW0"), ("c.lamp", "output", BOOL, "%QX0.0")])
    assert wait_until(lambda: e.quality("c.count") == "good" and e.read("c.count") > 3)
    ages = []
    for _ in range(20):
        e.wait(cycles=1)
        ages.append(e.age_ns("c.count"))
    # One poll period plus one cycle and scheduling slack.
    assert max(ages) < 40_000_000, ages
    e.write("c.lamp", True)
    assert wait_until(lambda: {"c.lamp": True} in dev.written)
    st = d.status()
    assert st["health"] == "good" and st["port"] == "loop://" and st["port_open"]
    assert st["polls_ok"] > 3 and st["polls_failed"] == 0


def scale_vars() -> list[tuple[str, str, Any, str]]:
    return [
        ("f.weight", "input", REAL, "%ID0"),
        ("f.stable", "input", BOOL, "%IX4.0"),
        ("f.tare", "output", BOOL, "%QX0.0"),
    ]


@pytest.mark.skipif(not socat_available(), reason="socat is not installed")
def test_the_example_scale_on_a_pty_reports_its_weight_and_tares(engines, tmp_path):
    pty = PtyPair(tmp_path).plug()
    sim = SimulatedScale(12.5).serve_port(pty.b)
    try:
        d = sio.serial_device(
            Scale(),
            port=pty.a,
            inputs=["f.weight", "f.stable"],
            outputs=["f.tare"],
            poll="20ms",
            timeout="200ms",
        )
        e = run(engines, d, scale_vars())
        assert wait_until(lambda: e.read("f.weight") == 12.5 and e.read("f.stable"))
        sim.stable = False
        sim.weight_kg = 13.25
        assert wait_until(lambda: e.read("f.weight") == 13.25 and not e.read("f.stable"))
        e.write("f.tare", True)
        assert wait_until(lambda: e.read("f.weight") == 0.0)
        assert e.quality("f.weight") == "good"
    finally:
        sim.close()
        pty.close()


def test_the_example_scale_over_a_socket_url_goes_bad_on_garbage_and_recovers(engines):
    sim = SimulatedScale(3.0)
    port = sim.serve_tcp()
    try:
        d = sio.serial_device(
            Scale(),
            port=f"socket://127.0.0.1:{port}",
            inputs=["f.weight", "f.stable"],
            poll="20ms",
            timeout="200ms",
            reconnect_min="20ms",
            reconnect_max="100ms",
        )
        e = run(engines, d, scale_vars())
        assert wait_until(lambda: e.read("f.weight") == 3.0)
        sim.garble = True
        assert wait_until(lambda: e.quality("f.weight") == "bad")
        st = d.status()
        assert "ScaleError: not a weight line" in st["last_error"]
        assert "Traceback" in st["last_error"]
        assert e.read("f.weight") == 3.0, "the last value is kept"
        sim.garble = False
        sim.weight_kg = 4.0
        assert wait_until(lambda: e.read("f.weight") == 4.0 and e.quality("f.weight") == "good")
        assert d.status()["restarts"] >= 1
        texts = [ev["text"] for ev in e.events()[0] if ev["kind"] == "io"]
        assert any("inputs bad" in t for t in texts) and any("answers again" in t for t in texts)
    finally:
        sim.close()


class Flaky:
    """Raises on every poll after the third, until ``healed``."""

    def __init__(self) -> None:
        self.n = 0
        self.healed = False

    def poll(self, port: Any, deadline: float) -> list[Any]:
        self.n += 1
        if self.n > 3 and not self.healed:
            raise RuntimeError("sensor on fire")
        return [self.n]


def test_a_driver_that_raises_goes_bad_with_its_traceback_and_is_restarted_with_back_off(engines):
    dev = Flaky()
    d = sio.serial_device(
        dev, port="loop://", inputs=["x.v"], poll="5ms", reconnect_min="10ms", reconnect_max="40ms"
    )
    e = run(engines, d, [("x.v", "input", INT, "%IW0")])
    assert wait_until(lambda: e.quality("x.v") == "bad")
    st = d.status()
    assert "RuntimeError: sensor on fire" in st["last_error"] and "in poll" in st["last_error"]
    assert e.read("x.v") == 3
    assert wait_until(lambda: d.status()["restarts"] >= 3)
    # Back-off: restarts slow down to the 40 ms cap, not a busy loop.
    r0 = d.status()["restarts"]
    time.sleep(0.4)
    assert d.status()["restarts"] - r0 <= 12
    cycles = e.status()["tasks"][0]["cycles"]
    e.wait(duration="100ms")
    assert e.status()["tasks"][0]["cycles"] - cycles >= 40, "the scan is unaffected"
    dev.healed = True
    assert wait_until(lambda: e.quality("x.v") == "good")


class Hangs:
    """Hangs in poll once ``hang`` is set, until released."""

    def __init__(self) -> None:
        self.hang = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def poll(self, port: Any, deadline: float) -> list[Any]:
        self.calls += 1
        if self.hang.is_set():
            self.release.wait(10)
        return [self.calls]


def test_a_driver_that_hangs_in_poll_goes_bad_and_its_thread_is_replaced(engines):
    dev = Hangs()
    d = sio.serial_device(
        dev, port="loop://", inputs=["h.v"], poll="5ms", timeout="50ms", reconnect_min="10ms"
    )
    e = run(engines, d, [("h.v", "input", INT, "%IW0")])
    assert wait_until(lambda: e.quality("h.v") == "good")
    cycles = e.status()["tasks"][0]["cycles"]
    dev.hang.set()
    assert wait_until(lambda: e.quality("h.v") == "bad", timeout=2)
    assert "did not return within" in d.status()["last_error"]
    assert e.status()["tasks"][0]["cycles"] - cycles >= 20, "the scan went on meanwhile"
    dev.hang.clear()
    dev.release.set()
    assert wait_until(lambda: e.quality("h.v") == "good", timeout=3)
    assert d.status()["restarts"] >= 1


def test_a_port_that_cannot_be_opened_shows_in_status(engines, tmp_path):
    d = sio.serial_device(
        Counter(), port=str(tmp_path / "nope"), inputs=["c.count"], reconnect_min="10ms"
    )
    e = run(engines, d, [("c.count", "input", INT, "%IW0")])
    assert wait_until(lambda: e.quality("c.count") == "bad")
    assert "could not open port" in d.status()["last_error"]


def test_bad_arguments_and_unknown_variables_are_configuration_errors(engines):
    with pytest.raises(ConfigError, match="no poll"):
        sio.serial_device(object(), port="loop://", inputs=[])
    with pytest.raises(ConfigError, match="parity"):
        sio.serial_device(Counter(), port="loop://", inputs=[], parity="mark")
    d = sio.serial_device(Counter(), port="loop://", inputs=["no.such"])
    e = Engine(clock="real", cycle="5ms")
    engines.append(e)
    e.add_task("main", period="5ms")
    e.add_driver(d)
    with pytest.raises(ConfigError, match=r"no\.such"):
        e.start()


def test_softplc_io_ports_lists_serial_ports_as_json():
    out = subprocess.run(
        [sys.executable, "-m", "softplc", "io", "ports", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    ports = json.loads(out.stdout)
    assert isinstance(ports, list)
    assert all(set(p) == {"device", "description", "hwid"} for p in ports)
