"""Modbus RTU on real pseudo-terminals: softplc as master against pymodbus slaves, and
as slave against pymodbus, mbpoll and a relay that splits, corrupts and silences
frames. Real clock, short durations."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from conftest import wait_until
from modbus_peers import ModbusExceptionReply, RtuClient, RtuDevice
from serial_peers import PtyPair, Relay, corrupt, rtu_frame, socat_available, split
from softplc import BOOL, INT, ConfigError

pytestmark = pytest.mark.skipif(not socat_available(), reason="socat is not installed")


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[PtyPair]:
    p = PtyPair(tmp_path).plug()
    yield p
    p.close()


def port_toml(path: str, **opts: object) -> str:
    o: dict[str, object] = {"baud": 115200, "parity": "none"}
    o.update(opts)
    lines = ["[[port]]", 'name = "line"', f'path = "{path}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in o.items()]
    return "\n".join(lines) + "\n"


def rtu_device(name: str, unit: int, body: str, **opts: object) -> str:
    o: dict[str, object] = {
        "poll_ms": 20,
        "timeout_ms": 100,
        "fail_after": 2,
        "retries": 0,
        "reconnect_min_ms": 20,
        "reconnect_max_ms": 100,
    }
    o.update(opts)
    lines = ["[[device]]", f'name = "{name}"', 'serial = "line"', f"unit_id = {unit}"]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in o.items()]
    return "\n".join(lines) + "\n" + body


def read_hr(var: str, address: int = 0) -> str:
    return f'[[device.read]]\nvar = "{var}"\ntable = "holding_register"\naddress = {address}\n'


def write_coil(var: str, address: int = 0) -> str:
    return f'[[device.write]]\nvar = "{var}"\ntable = "coil"\naddress = {address}\n'


def io_texts(e) -> list[str]:
    return [ev["text"] for ev in e.events()[0] if ev["kind"] == "io"]


# --- softplc as master -----------------------------------------------------------------


def test_several_slaves_on_one_port_are_polled_in_turn_and_written(pty, make_engine):
    dev = RtuDevice(pty.b, unit_ids=(1, 2)).start()
    try:
        dev.set("holding_register", 0, [11], unit=1)
        dev.set("holding_register", 0, [22], unit=2)
        toml = port_toml(pty.a)
        toml += rtu_device("u1", 1, read_hr("v1") + write_coil("c1", 3))
        toml += rtu_device("u2", 2, read_hr("v2"))
        e, drivers = make_engine(
            [
                ("m.v1", "input", INT, "%IW0"),
                ("m.v2", "input", INT, "%IW1"),
                ("m.c1", "output", BOOL, "%QX0.0"),
            ],
            toml,
        )
        assert wait_until(lambda: (e.read("m.v1"), e.read("m.v2")) == (11, 22))
        assert e.quality("m.v1") == "good" and e.quality("m.v2") == "good"
        e.write("m.c1", True)
        assert wait_until(lambda: dev.get("coil", 3, unit=1) == [True])
        dev.set("holding_register", 0, [33], unit=2)
        assert wait_until(lambda: e.read("m.v2") == 33)
        st = drivers[0].status()
        conn = st["connections"][0]
        assert conn["endpoint"] == "serial:line" and conn["connects"] == 1
        assert conn["serial"]["crc_errors"] == 0 and conn["serial"]["frames_received"] > 4
        assert st["devices"]["u1"]["timeouts"] == 0 and st["devices"]["u2"]["timeouts"] == 0
    finally:
        dev.close()


def test_a_broadcast_write_reaches_every_slave_without_waiting_for_an_answer(pty, make_engine):
    dev = RtuDevice(pty.b, unit_ids=(1, 2)).start()
    try:
        toml = port_toml(pty.a, turnaround_ms=5)
        toml += rtu_device(
            "all",
            0,
            '[[device.write]]\nvar = "sp"\ntable = "holding_register"\naddress = 7\n',
            timeout_ms=1000,
        )
        e, drivers = make_engine([("b.sp", "output", INT, "%QW0")], toml)
        e.write("b.sp", 1234)
        assert wait_until(
            lambda: (
                dev.get("holding_register", 7, unit=1) == [1234]
                and dev.get("holding_register", 7, unit=2) == [1234]
            )
        )
        assert wait_until(lambda: drivers[0].status()["devices"]["all"]["writes_ok"] >= 1)
        st = drivers[0].status()
        assert st["connections"][0]["serial"]["broadcasts"] >= 1
        d = st["devices"]["all"]
        # Nobody answers a broadcast: had the master waited, each write would time out.
        assert d["timeouts"] == 0 and d["writes_ok"] >= 1 and d["health"] == "good"
    finally:
        dev.close()


def test_a_silent_slave_goes_bad_while_its_neighbour_stays_good(pty, make_engine):
    dev = RtuDevice(pty.b, unit_ids=(1,)).start()
    try:
        dev.set("holding_register", 0, [5], unit=1)
        toml = (
            port_toml(pty.a)
            + rtu_device("u1", 1, read_hr("v1"))
            + rtu_device("u9", 9, read_hr("v9"))
        )
        e, drivers = make_engine(
            [("s.v1", "input", INT, "%IW0"), ("s.v9", "input", INT, "%IW1")], toml
        )
        assert wait_until(lambda: e.quality("s.v9") == "bad" and e.read("s.v1") == 5)
        dev.set("holding_register", 0, [6], unit=1)
        assert wait_until(lambda: e.read("s.v1") == 6)
        assert e.quality("s.v1") == "good"
        st = drivers[0].status()["devices"]
        assert st["u9"]["health"] == "bad" and st["u9"]["timeouts"] >= 2
        assert st["u1"]["health"] == "good"
        assert any('device "u9"' in t and "inputs bad" in t for t in io_texts(e))
    finally:
        dev.close()


def test_an_unplugged_port_turns_inputs_bad_and_is_reopened_when_it_returns(pty, make_engine):
    dev = RtuDevice(pty.b, unit_ids=(1,)).start()
    dev.set("holding_register", 0, [41], unit=1)
    toml = port_toml(pty.a) + rtu_device("u1", 1, read_hr("v1"))
    e, drivers = make_engine([("u.v1", "input", INT, "%IW0")], toml)
    try:
        assert wait_until(lambda: e.read("u.v1") == 41 and e.quality("u.v1") == "good")
        cycles = e.status()["tasks"][0]["cycles"]
        dev.close()
        pty.unplug()
        assert wait_until(lambda: e.quality("u.v1") == "bad")
        assert e.read("u.v1") == 41, "the last value is kept (on_fail = keep)"
        # The scan goes on at its pace while the port is gone.
        e.wait(duration="100ms")
        assert e.status()["tasks"][0]["cycles"] - cycles >= 15
        st = drivers[0].status()
        assert not st["connections"][0]["connected"]
        assert (
            "no such port" in st["devices"]["u1"]["last_error"]
            or "serial port failed" in (st["devices"]["u1"]["last_error"])
        )
        pty.plug()
        dev = RtuDevice(pty.b, unit_ids=(1,)).start()
        dev.set("holding_register", 0, [42], unit=1)
        assert wait_until(lambda: e.read("u.v1") == 42 and e.quality("u.v1") == "good", timeout=5)
        st = drivers[0].status()
        assert st["connections"][0]["connects"] == 2
        texts = io_texts(e)
        assert any("opened serial port line" in t for t in texts)
        assert any("dropped" in t and "line" in t for t in texts), texts
    finally:
        dev.close()


@pytest.fixture
def relayed(tmp_path: Path) -> Iterator[tuple[PtyPair, Relay, RtuDevice]]:
    """softplc on ``master.a``; the relay between ``master.b`` and ``slaves.a``; pymodbus
    slaves 1 and 2 on ``slaves.b``."""
    master = PtyPair(tmp_path, "ttyM").plug()
    slaves = PtyPair(tmp_path, "ttyS").plug()
    relay = Relay(master.b, slaves.a)
    dev = RtuDevice(slaves.b, unit_ids=(1, 2)).start()
    yield master, relay, dev
    dev.close()
    relay.close()
    master.close()
    slaves.close()


def test_answers_split_with_gaps_still_arrive_whole(relayed, make_engine):
    master, relay, dev = relayed
    relay.to_master = split(3, 0.004)
    relay.to_slave = split(2, 0.001)
    dev.set("holding_register", 0, [7, 8, 9], unit=1)
    body = '[[device.read]]\nvars = ["a", "b", "c"]\ntable = "holding_register"\naddress = 0\n'
    toml = port_toml(master.a) + rtu_device("u1", 1, body, timeout_ms=300)
    e, drivers = make_engine(
        [
            ("r.a", "input", INT, "%IW0"),
            ("r.b", "input", INT, "%IW1"),
            ("r.c", "input", INT, "%IW2"),
        ],
        toml,
    )
    assert wait_until(lambda: (e.read("r.a"), e.read("r.b"), e.read("r.c")) == (7, 8, 9))
    dev.set("holding_register", 2, [10], unit=1)
    assert wait_until(lambda: e.read("r.c") == 10)
    assert drivers[0].status()["connections"][0]["serial"]["crc_errors"] == 0


def test_crc_errors_and_answers_from_the_wrong_unit_are_counted_and_survived(relayed, make_engine):
    master, relay, dev = relayed
    dev.set("holding_register", 0, [3], unit=1)
    toml = port_toml(master.a) + rtu_device("u1", 1, read_hr("v"), fail_after=3, retries=1)
    e, drivers = make_engine([("w.v", "input", INT, "%IW0")], toml)
    assert wait_until(lambda: e.read("w.v") == 3)
    relay.to_master = lambda f: [corrupt(f)]
    assert wait_until(lambda: drivers[0].status()["connections"][0]["serial"]["crc_errors"] >= 3)
    assert wait_until(lambda: e.quality("w.v") == "bad")
    assert "CRC error" in drivers[0].status()["devices"]["u1"]["last_error"]
    # A slave answering for another unit: the answer is rejected, not taken.
    relay.to_master = lambda f: [rtu_frame(5, f[1:-2])]
    assert wait_until(lambda: drivers[0].status()["connections"][0]["serial"]["wrong_unit"] >= 2)
    assert (
        "unit 5 answered a request to unit 1" in drivers[0].status()["devices"]["u1"]["last_error"]
    )
    relay.to_master = lambda f: [f]
    dev.set("holding_register", 0, [4], unit=1)
    assert wait_until(lambda: e.read("w.v") == 4 and e.quality("w.v") == "good", timeout=5)


def test_an_answer_cut_in_half_is_a_cut_frame_not_a_value(relayed, make_engine):
    master, relay, dev = relayed
    dev.set("holding_register", 0, [3], unit=1)
    toml = port_toml(master.a) + rtu_device("u1", 1, read_hr("v"))
    e, drivers = make_engine([("h.v", "input", INT, "%IW0")], toml)
    assert wait_until(lambda: e.read("h.v") == 3)
    relay.to_master = lambda f: [f[: len(f) // 2]]
    dev.set("holding_register", 0, [99], unit=1)
    assert wait_until(lambda: e.quality("h.v") == "bad")
    assert e.read("h.v") == 3
    st = drivers[0].status()
    assert st["connections"][0]["serial"]["cut_frames"] >= 2
    assert "cut short" in st["devices"]["u1"]["last_error"]


def test_a_port_that_does_not_exist_or_is_busy_shows_in_status_and_events(
    tmp_path, pty, make_engine
):
    toml = port_toml(str(tmp_path / "nothing")) + rtu_device("u1", 1, read_hr("v"))
    e, drivers = make_engine([("n.v", "input", INT, "%IW0")], toml)
    assert wait_until(lambda: e.quality("n.v") == "bad")
    assert "no such port" in drivers[0].status()["devices"]["u1"]["last_error"]
    assert any("cannot connect to serial:line" in t and "no such port" in t for t in io_texts(e))
    # Busy: another program holds the line's lock.
    fd = os.open(pty.a, os.O_RDWR | os.O_NOCTTY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        toml = port_toml(pty.a) + rtu_device("u1", 1, read_hr("v"))
        e2, d2 = make_engine([("n.v", "input", INT, "%IW0")], toml)
        assert wait_until(lambda: e2.quality("n.v") == "bad")
        assert "busy" in d2[0].status()["devices"]["u1"]["last_error"]
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        (port_toml("/dev/x", baud=115201), ":4:8:", "not a serial baud rate"),
        (port_toml("/dev/x", parity="mark"), "key `parity`", "unknown parity"),
        (port_toml("/dev/x", data_bits=9), "key `data_bits`", "7..=8"),
        (
            port_toml("/dev/x")
            + rtu_device("a", 3, read_hr("x"))
            + rtu_device("b", 3, read_hr("y")),
            "key `unit_id`",
            "unit 3 on port",
        ),
        (rtu_device("a", 3, read_hr("x")), "key `serial`", "no [[port]] named"),
        (port_toml("/dev/x") + rtu_device("a", 0, read_hr("x")), "read #1", "broadcast"),
        (port_toml("/dev/x") + rtu_device("a", 250, read_hr("x")), "key `unit_id`", "1..=247"),
    ],
)
def test_bad_serial_configuration_names_file_line_and_key(tmp_path, text, where, needle):
    import softplc.io as sio

    p = tmp_path / "rtu.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        sio.load_config(p)
    msg = str(exc.value)
    assert msg.startswith(str(p)) and where in msg and needle in msg, msg


# --- softplc as slave -------------------------------------------------------------------

SLAVE_VARS = [
    ("sl.start", "input", BOOL, "%IX0.0"),
    ("sl.lamp", "output", BOOL, "%QX0.1"),
    ("sl.temp", "input", INT, "%IW2"),
    ("sl.speed", "output", INT, "%QW5"),
]


def slave_toml(path: str, unit: int = 1, extra: str = "") -> str:
    return port_toml(path) + f'[[rtu_server]]\nport = "line"\nunit_id = {unit}\n{extra}'


def test_the_rtu_slave_serves_the_default_map_to_pymodbus(pty, make_engine):
    e, drivers = make_engine(SLAVE_VARS, slave_toml(pty.a))
    e.write("sl.start", True)
    e.write("sl.temp", -7)
    e.write("sl.speed", 1500)
    e.wait(cycles=3)
    with RtuClient(pty.b) as c:
        assert c.read("discrete_input", 0, 2) == [True, False]
        assert c.read("input_register", 2) == [(-7) & 0xFFFF]
        assert c.read("holding_register", 5) == [1500]
        # Unbound addresses of the full-size tables read 0, like OpenPLC's.
        assert c.read("coil", 0, 16) == [False] * 16
        c.write("coil", 1, [True])
        c.write("holding_register", 5, [42])
        assert wait_until(lambda: (e.read("sl.lamp"), e.read("sl.speed")) == (True, 42))
        with pytest.raises(ModbusExceptionReply) as exc:
            c.read("holding_register", 8192)
        assert exc.value.code == 2
    st = drivers[-1].status()
    assert st["kind"] == "modbus-rtu-server" and st["serial"]["answered"] >= 6
    assert st["tables"]["holding_registers"] == 8192


def test_the_rtu_slave_keeps_serving_through_any_amount_of_line_noise(pty, make_engine):
    e, drivers = make_engine(SLAVE_VARS, slave_toml(pty.a))
    e.write("sl.speed", 77)
    e.wait(cycles=3)
    good = rtu_frame(1, bytes([3, 0, 5, 0, 1]))
    with serial.Serial(pty.b, 115200, timeout=0.5) as s:
        # Far beyond the ~20 corrupt frames after which tokio-modbus's decoder gives up.
        for i in range(300):
            s.write(corrupt(good) if i % 2 else bytes((i * 37 + k) % 256 for k in range(9)))
        s.flush()
        time.sleep(0.05)
        s.reset_input_buffer()
        for _ in range(3):
            s.write(good)
            answer = s.read(7)
            assert answer == rtu_frame(1, bytes([3, 2, 0, 77])), answer
    # The counter follows the answer's write: give the line thread a moment.
    assert wait_until(lambda: drivers[-1].status()["serial"]["answered"] == 3)
    st = drivers[-1].status()["serial"]
    assert st["noise_bytes"] > 1000 and st["answered"] == 3, repr(st)


def test_the_rtu_slave_is_silent_for_other_units_and_applies_broadcasts(pty, make_engine):
    e, drivers = make_engine(SLAVE_VARS, slave_toml(pty.a, unit=4))
    e.wait(cycles=3)
    with serial.Serial(pty.b, 115200, timeout=0.2) as s:
        s.write(rtu_frame(7, bytes([3, 0, 5, 0, 1])))
        assert s.read(16) == b""
        # A broadcast write of holding register 5: carried out, not answered.
        s.write(rtu_frame(0, bytes([6, 0, 5, 0, 99])))
        assert s.read(16) == b""
        assert wait_until(lambda: e.read("sl.speed") == 99)
        s.write(rtu_frame(4, bytes([3, 0, 5, 0, 1])))
        assert s.read(7) == rtu_frame(4, bytes([3, 2, 0, 99]))
    st = drivers[-1].status()["serial"]
    assert st["other_units"] == 1 and st["broadcasts"] == 1


def test_the_rtu_slave_ignores_other_slaves_answers_on_a_shared_line(pty, make_engine):
    e, drivers = make_engine(SLAVE_VARS, slave_toml(pty.a, unit=1))
    e.write("sl.speed", 5)
    e.wait(cycles=3)
    with serial.Serial(pty.b, 115200, timeout=0.2) as s:
        # Unit 2 answering three registers, then a request to us, back to back.
        s.write(
            rtu_frame(2, bytes([3, 6, 0, 1, 0, 2, 0, 3])) + rtu_frame(1, bytes([3, 0, 5, 0, 1]))
        )
        assert s.read(7) == rtu_frame(1, bytes([3, 2, 0, 5]))
    assert drivers[-1].status()["serial"]["other_units"] == 1


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed")
def test_mbpoll_in_rtu_mode_reads_and_writes_the_rtu_slave(pty, make_engine):
    e, _ = make_engine(SLAVE_VARS, slave_toml(pty.a))
    e.write("sl.temp", 321)
    e.wait(cycles=3)
    base = ["mbpoll", "-m", "rtu", "-b", "115200", "-P", "none", "-a", "1", "-0", "-1", "-o", "1"]
    out = subprocess.run(
        [*base, "-t", "3", "-r", "2", "-c", "1", pty.b], capture_output=True, text=True, timeout=10
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[2]: \t321" in out.stdout
    out = subprocess.run(
        [*base, "-t", "4", "-r", "5", pty.b, "1234"], capture_output=True, text=True, timeout=10
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert wait_until(lambda: e.read("sl.speed") == 1234)


def test_the_rtu_slave_reopens_its_port_after_an_unplug(pty, make_engine):
    e, drivers = make_engine(SLAVE_VARS, slave_toml(pty.a))
    e.write("sl.speed", 8)
    assert wait_until(lambda: drivers[-1].status()["serial"]["open"])
    pty.unplug()
    assert wait_until(lambda: not drivers[-1].status()["serial"]["open"])
    pty.plug()
    assert wait_until(lambda: drivers[-1].status()["serial"]["open"], timeout=5)
    with RtuClient(pty.b) as c:
        assert c.read("holding_register", 5) == [8]
    st = drivers[-1].status()["serial"]
    assert st["opens"] >= 2
    assert any("port line failed" in t for t in io_texts(e))


def test_softplc_as_master_polls_softplc_as_slave_across_a_pty(pty, make_engine):
    slave, _ = make_engine(SLAVE_VARS, slave_toml(pty.a, unit=3))
    slave.write("sl.temp", 250)
    body = (
        '[[device.read]]\nvar = "temp"\ntable = "input_register"\naddress = 2\n'
        '[[device.write]]\nvar = "lamp"\ntable = "coil"\naddress = 1\n'
    )
    toml = port_toml(pty.b) + rtu_device("plc", 3, body)
    master, drivers = make_engine(
        [("mm.temp", "input", INT, "%IW0"), ("mm.lamp", "output", BOOL, "%QX0.0")], toml
    )
    assert wait_until(lambda: master.read("mm.temp") == 250 and master.quality("mm.temp") == "good")
    master.write("mm.lamp", True)
    assert wait_until(lambda: slave.read("sl.lamp") is True)
    assert drivers[0].status()["connections"][0]["serial"]["crc_errors"] == 0
