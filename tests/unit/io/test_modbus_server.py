"""The Modbus server driver: default map, explicit map, mbpoll and pymodbus clients."""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import sys
import time

import pytest
from conftest import wait_until
from modbus_peers import Client, ModbusExceptionReply
from softplc import BOOL, DINT, INT, REAL, UINT

VARS = [
    ("s.start", "input", BOOL, "%IX0.0"),
    ("s.stop", "input", BOOL, "%IX0.3"),
    ("s.lamp", "output", BOOL, "%QX1.2"),
    ("s.temp", "input", INT, "%IW2"),
    ("s.speed", "output", UINT, "%QW5"),
    ("s.setpoint", "memory", INT, "%MW7"),
    ("s.ratio", "memory", REAL, "%MD4"),
]


def port_of(drivers) -> int:
    addr = drivers[-1].address
    assert addr is not None and addr[0] == "127.0.0.1"
    return addr[1]


def test_the_default_map_follows_openplc(make_engine):
    e, drivers = make_engine(VARS, server="127.0.0.1:0")
    e.write("s.start", True)
    e.write("s.temp", -7)
    e.write("s.speed", 1500)
    e.write("s.ratio", 0.25)
    e.wait(cycles=3)
    with Client("127.0.0.1", port_of(drivers)) as c:
        assert c.read("discrete_input", 0, 4) == [True, False, False, False]
        assert c.read("input_register", 2) == [(-7) & 0xFFFF]
        assert c.read("holding_register", 5) == [1500]
        hi, lo = c.read("holding_register", 2048 + 2 * 4, 2)
        assert struct.unpack(">f", struct.pack(">HH", hi, lo))[0] == 0.25
        # Writes from the client reach the program's variables.
        c.write("coil", 10, [True])  # %QX1.2 = coil 1 * 8 + 2
        c.write("holding_register", 1024 + 7, [(-300) & 0xFFFF])
        c.write("holding_register", 5, [42])
        assert wait_until(
            lambda: (e.read("s.lamp"), e.read("s.setpoint"), e.read("s.speed")) == (True, -300, 42)
        )
        # Read-only by protocol, and past the last mapped register.
        with pytest.raises(ModbusExceptionReply) as exc:
            c.read("holding_register", 9000)
        assert exc.value.code == 2
    st = drivers[-1].status()
    assert st["default_map"] and st["accepted"] == 1
    assert st["writes_applied"] >= 3


def test_an_explicit_map_with_scaling_orders_and_read_only_tables(make_engine):
    toml = """
[server]
listen = "127.0.0.1:0"
unit_id = 17
read_only = ["coil"]

[[server.map]]
var = "m.level"
table = "input_register"
address = 100
type = "INT"
scale = 0.1

[[server.map]]
vars = ["m.count", "m.flow"]
table = "holding_register"
address = 0
byte_order = "CDAB"

[[server.map]]
var = "m.alarm"
table = "coil"
address = 3
"""
    variables = [
        ("m.level", "input", REAL, "%ID0"),
        ("m.count", "memory", DINT, "%MD0"),
        ("m.flow", "memory", REAL, "%MD1"),
        ("m.alarm", "output", BOOL, "%QX0.0"),
    ]
    e, drivers = make_engine(variables, toml)
    e.write("m.level", 55.5)
    e.write("m.count", 0x12345678)
    e.write("m.alarm", True)
    e.wait(cycles=3)
    with Client("127.0.0.1", port_of(drivers)) as c:
        assert c.read("input_register", 100, unit=17) == [555]
        assert c.read("holding_register", 0, 2, unit=17) == [0x5678, 0x1234]
        assert c.read("coil", 3, unit=17) == [True]
        c.write("holding_register", 2, [0x0000, 0x4049], unit=17)  # 3.140625 in CDAB
        assert wait_until(lambda: e.read("m.flow") == 3.140625)
        with pytest.raises(ModbusExceptionReply) as exc:
            c.write("coil", 3, [False], unit=17)
        assert exc.value.code == 1
    assert e.read("m.alarm") is True


def mbpoll(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mbpoll", *args], check=False, capture_output=True, text=True, timeout=20
    )


needs_mbpoll = pytest.mark.skipif(
    shutil.which("mbpoll") is None, reason="mbpoll is not installed (apt-get install mbpoll)"
)


def mbpoll_values(out: str) -> dict[int, str]:
    vals = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("[") and "]:" in line:
            ref, _, val = line.partition("]:")
            vals[int(ref[1:])] = val.strip()
    return vals


@needs_mbpoll
def test_mbpoll_reads_and_writes_every_table(make_engine):
    e, drivers = make_engine(VARS, server="127.0.0.1:0")
    e.write("s.stop", True)
    e.write("s.temp", 321)
    e.write("s.ratio", -2.5)
    e.wait(cycles=3)
    port = str(port_of(drivers))
    base = ["-m", "tcp", "-p", port, "-a", "1", "-0", "-1", "-o", "2"]
    r = mbpoll(*base, "-t", "1", "-r", "0", "-c", "4", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    assert mbpoll_values(r.stdout) == {0: "0", 1: "0", 2: "0", 3: "1"}
    r = mbpoll(*base, "-t", "3", "-r", "2", "-c", "1", "127.0.0.1")
    assert mbpoll_values(r.stdout) == {2: "321"}
    r = mbpoll(*base, "-t", "4:float", "-B", "-r", "2056", "-c", "1", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    assert float(mbpoll_values(r.stdout)[2056]) == -2.5
    # FC05, FC16, FC06.
    assert mbpoll(*base, "-t", "0", "-r", "10", "127.0.0.1", "1").returncode == 0
    assert mbpoll(*base, "-t", "4", "-r", "1031", "127.0.0.1", str(-42 & 0xFFFF)).returncode == 0
    assert mbpoll(*base, "-t", "4", "-r", "5", "127.0.0.1", "7", "8").returncode == 0
    assert wait_until(
        lambda: (e.read("s.lamp"), e.read("s.setpoint"), e.read("s.speed")) == (True, -42, 7)
    )
    # Unbound registers of the full-size tables read 0 (as OpenPLC's); past the tables,
    # mbpoll reports the exception and fails.
    r = mbpoll(*base, "-t", "4", "-r", "3000", "-c", "2", "127.0.0.1")
    assert r.returncode == 0 and mbpoll_values(r.stdout) == {3000: "0", 3001: "0"}
    r = mbpoll(*base, "-t", "4", "-r", "8191", "-c", "2", "127.0.0.1")
    assert r.returncode != 0
    assert "Illegal data address" in r.stdout + r.stderr


def test_softplc_io_check_reports_and_fails_with_file_line_and_key(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[server]\nlisten = "127.0.0.1:5020"\n')
    r = subprocess.run(
        [sys.executable, "-m", "softplc.cli", "io", "check", str(good)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout and "127.0.0.1:5020" in r.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nlisten = "127.0.0.1:5020"\nunit_id = 300\n')
    r = subprocess.run(
        [sys.executable, "-m", "softplc.cli", "io", "check", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"{bad}:3:11:" in r.stderr and "`unit_id`" in r.stderr


def adu(unit: int, pdu: bytes, tid: int = 0x1234) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def reply(s: socket.socket) -> bytes:
    """The PDU of one answer (b"" when the server closed the connection)."""
    hdr = b""
    while len(hdr) < 7:
        try:
            chunk = s.recv(7 - len(hdr))
        except ConnectionResetError:
            return b""
        if not chunk:
            return b""
        hdr += chunk
    _, _, length, _ = struct.unpack(">HHHB", hdr)
    pdu = b""
    while len(pdu) < length - 1:
        pdu += s.recv(length - 1 - len(pdu))
    return pdu


def test_unit_ids_0_and_255_address_the_server_and_other_units_get_0b_first(make_engine):
    e, drivers = make_engine(VARS, server="127.0.0.1:0")
    e.write("s.temp", 55)
    e.wait(cycles=3)
    port = port_of(drivers)
    # On Modbus TCP, 0 and 255 both mean "the device itself": both are answered.
    with Client("127.0.0.1", port) as c:
        assert [c.read("input_register", 2, unit=u) for u in (0, 1, 255)] == [[55]] * 3
        c.write("holding_register", 5, [9], unit=0)
        assert wait_until(lambda: e.read("s.speed") == 9)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        # Another unit gets 0B whatever its PDU: well-formed, unknown function or a bad
        # quantity (the unit is checked before the PDU).
        for pdu in (b"\x03\x00\x00\x00\x01", b"\x07", b"\x03\x00\x00\x00\x00", b"\x2b\x0e"):
            s.sendall(adu(9, pdu))
            assert reply(s) == bytes([pdu[0] | 0x80, 0x0B]), pdu
        # Unit 0 gets the same answers as the server's own unit.
        s.sendall(adu(0, b"\x07"))
        assert reply(s) == b"\x87\x01"
        s.sendall(adu(0, b"\x03\x00\x00\x00\x00"))
        assert reply(s) == b"\x83\x03"
    st = drivers[-1].status()
    assert st["wrong_unit"] == 4 and st["exceptions"]["gateway_target"] == 4, st


def test_a_new_client_takes_the_place_of_a_connection_idle_for_a_second(tmp_path, make_engine):
    toml = '[server]\nlisten = "127.0.0.1:0"\nmax_connections = 2\n'
    e, drivers = make_engine(VARS, toml)
    e.write("s.temp", 7)
    port = port_of(drivers)
    idle = socket.create_connection(("127.0.0.1", port), timeout=2)
    time.sleep(1.1)
    with Client("127.0.0.1", port) as busy:
        assert busy.read("input_register", 2) == [7]
        # Full: the newcomer takes the place of the socket that sat idle, not of the
        # client in use.
        with Client("127.0.0.1", port) as c:
            assert c.read("input_register", 2) == [7]
        assert idle.recv(1) == b""
        assert busy.read("input_register", 2) == [7]
        # Full again, nobody idle for a second: a newcomer is refused, and told so:
        # its request is answered with exception 06 (server device busy), then closed.
        with Client("127.0.0.1", port) as c2:
            assert c2.read("input_register", 2) == [7]
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                with contextlib.suppress(ConnectionError):
                    s.sendall(adu(1, b"\x04\x00\x02\x00\x01"))
                assert reply(s) == b"\x84\x06"
                assert reply(s) == b""
    idle.close()
    st = drivers[-1].status()
    assert (st["evicted"], st["refused_limit"]) == (1, 1), st
    texts = [ev["text"] for ev in e.events()[0]]
    assert any("to make room" in t for t in texts), texts


def test_a_flood_of_refused_connections_is_summed_up_in_the_event_log(make_engine):
    toml = '[server]\nlisten = "127.0.0.1:0"\nallow = ["10.0.0.0/8"]\n'
    e, drivers = make_engine(VARS, toml)
    port = port_of(drivers)
    for _ in range(200):
        socket.create_connection(("127.0.0.1", port)).close()
    assert wait_until(lambda: drivers[-1].status()["refused_allowlist"] == 200)

    def refused() -> tuple[int, int]:
        texts = [ev["text"] for ev in e.events()[0] if "refused" in ev["text"]]
        single = sum("not in the allowlist)" in t and "more" not in t for t in texts)
        summed = sum(int(t.split()[2]) for t in texts if " more connections refused" in t)
        return single, summed

    # Each refusal is accounted for, most of them in a summary once a second.
    assert wait_until(lambda: sum(refused()) == 200, timeout=3), refused()
    single, summed = refused()
    assert single <= 10 and summed >= 190, (single, summed)


def test_an_idle_close_is_counted_as_such_not_as_a_connection_error(make_engine):
    toml = '[server]\nlisten = "127.0.0.1:0"\nidle_timeout_ms = 200\n'
    _, drivers = make_engine(VARS, toml)
    port = port_of(drivers)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        assert s.recv(1) == b""  # closed after 200 ms without a request
    assert wait_until(lambda: drivers[-1].status()["closed_idle"] == 1)
    assert drivers[-1].status()["connection_errors"] == 0


def test_engine_status_gives_each_driver_status_as_a_dict(make_engine):
    e, _ = make_engine(VARS, server="127.0.0.1:0")
    st = e.status()["drivers"]
    assert isinstance(st["modbus-server"], dict), st
    assert st["modbus-server"]["kind"] == "modbus-server"
