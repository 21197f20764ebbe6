"""The Modbus client driver against a pymodbus device: values, batching, gateways,
failures, reconnection. Real clock, short durations."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

import pytest
from conftest import wait_until
from modbus_peers import Device
from softplc import BOOL, DINT, INT, LREAL, REAL, ConfigError


def dev_toml(port: int, body: str, **device: object) -> str:
    opts = {
        "poll_ms": 20,
        "timeout_ms": 200,
        "fail_after": 2,
        "reconnect_min_ms": 20,
        "reconnect_max_ms": 100,
    }
    opts.update(device)
    lines = ["[[device]]", 'name = "d"', 'host = "127.0.0.1"', f"port = {port}"]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in opts.items()]
    return "\n".join(lines) + "\n" + body


def words(fmt: str, value: float, order: str) -> list[int]:
    """Registers of ``value`` packed big-endian as ``fmt``, rearranged into ``order``."""
    raw = struct.pack(">" + fmt, value)
    ws = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if order in ("BADC", "DCBA"):
        ws = [w[::-1] for w in ws]
    if order in ("CDAB", "DCBA"):
        ws = ws[::-1]
    return [int.from_bytes(w, "big") for w in ws]


READS = """
[[device.read]]
var = "level"
table = "input_register"
address = 0
type = "INT"
scale = 0.1

[[device.read]]
var = "flow"
table = "input_register"
address = 2
type = "REAL"
byte_order = "CDAB"

[[device.read]]
var = "total"
table = "holding_register"
address = 10
byte_order = "DCBA"

[[device.read]]
vars = ["float_high", "running"]
table = "discrete_input"
address = 0

[[device.read]]
var = "alarm_bit"
table = "holding_register"
address = 20
bit = 3
"""

READ_VARS = [
    ("p.level", "input", REAL, "%ID0"),
    ("p.flow", "input", REAL, "%ID1"),
    ("p.total", "input", LREAL, "%IL1"),
    ("p.float_high", "input", BOOL, "%IX16.0"),
    ("p.running", "input", BOOL, "%IX16.1"),
    ("p.alarm_bit", "input", BOOL, "%IX16.2"),
]


def test_inputs_follow_the_device_with_scaling_word_order_and_bits(device, make_engine):
    device.set("input_register", 0, [(-123) & 0xFFFF])
    device.set("input_register", 2, words("f", 3.5, "CDAB"))
    device.set("holding_register", 10, words("d", -1234.25, "DCBA"))
    device.set("discrete_input", 0, [True, False])
    device.set("holding_register", 20, [0b1000])
    e, drivers = make_engine(READ_VARS, dev_toml(device.port, READS))
    assert wait_until(lambda: e.quality("p.level") == "good" and e.read("p.total") != 0)
    assert e.read("p.level") == pytest.approx(-12.3, abs=1e-5)
    assert e.read("p.flow") == 3.5
    assert e.read("p.total") == -1234.25
    assert (e.read("p.float_high"), e.read("p.running"), e.read("p.alarm_bit")) == (
        True,
        False,
        True,
    )
    device.set("input_register", 0, [456])
    assert wait_until(lambda: e.read("p.level") == pytest.approx(45.6, abs=1e-5))
    st = drivers[0].status()["devices"]["d"]
    # Input registers 0 and 2..3 (a gap: max_gap is 0), holding 10..13, holding 20 and
    # discrete inputs 0..1.
    assert st["read_requests_per_poll"] == 5
    assert st["health"] == "good" and st["polls_failed"] == 0


def test_input_age_stays_within_one_poll_period_and_one_cycle(device, make_engine):
    e, _ = make_engine(READ_VARS, dev_toml(device.port, READS, poll_ms=20))
    assert wait_until(lambda: e.quality("p.level") == "good")
    ages = []
    for _ in range(50):
        e.wait(cycles=1)
        ages.append(e.age_ns("p.level"))
    # 20 ms poll + 5 ms cycle, plus the poll's own round trip and scheduling slack.
    assert max(ages) < 40_000_000, max(ages)


WRITES = """
[[device.write]]
vars = ["pump1", "pump2", "lamp"]
table = "coil"
address = 0

[[device.write]]
var = "speed"
table = "holding_register"
address = 0
type = "UINT"
scale = 0.1

[[device.write]]
var = "count"
table = "holding_register"
address = 1
"""

WRITE_VARS = [
    ("o.pump1", "output", BOOL, "%QX0.0"),
    ("o.pump2", "output", BOOL, "%QX0.1"),
    ("o.lamp", "output", BOOL, "%QX0.2"),
    ("o.speed", "output", REAL, "%QD1"),
    ("o.count", "output", DINT, "%QD2"),
]


def test_outputs_reach_the_device_in_one_request_per_contiguous_range(device, make_engine):
    e, drivers = make_engine(WRITE_VARS, dev_toml(device.port, WRITES))
    e.write("o.pump1", True)
    e.write("o.lamp", True)
    e.write("o.speed", 72.5)
    e.write("o.count", -70000)
    assert wait_until(lambda: device.get("coil", 0, 3) == [True, False, True])
    assert wait_until(
        lambda: device.get("holding_register", 0, 3) == [725, *words("i", -70000, "ABCD")]
    )
    st = drivers[0].status()["devices"]["d"]
    assert st["write_requests"] == 2
    assert st["writes_failed"] == 0
    # Unchanged outputs are not written again.
    before = drivers[0].status()["devices"]["d"]["writes_ok"]
    e.wait(duration="100ms")
    assert drivers[0].status()["devices"]["d"]["writes_ok"] == before


def test_several_unit_ids_behind_one_gateway_share_one_connection(device, make_engine):
    device.set("holding_register", 0, [11], unit=1)
    device.set("holding_register", 0, [22], unit=2)
    body = ""
    for unit in (1, 2):
        body += dev_toml(device.port, "", unit_id=unit).replace('name = "d"', f'name = "u{unit}"')
        body += f'\n[[device.read]]\nvar = "v{unit}"\ntable = "holding_register"\naddress = 0\n'
    e, drivers = make_engine([("g.v1", "input", INT, "%IW0"), ("g.v2", "input", INT, "%IW1")], body)
    assert wait_until(lambda: (e.read("g.v1"), e.read("g.v2")) == (11, 22))
    st = drivers[0].status()
    assert len(st["connections"]) == 1 and st["connections"][0]["connects"] == 1
    assert st["devices"]["u1"]["unit_id"] == 1 and st["devices"]["u2"]["unit_id"] == 2


def test_a_device_stopped_mid_run_goes_bad_keeps_its_value_and_comes_back(device, make_engine):
    body = READS + WRITES
    e, drivers = make_engine(READ_VARS + WRITE_VARS, dev_toml(device.port, body))
    device.set("input_register", 0, [200])
    e.write("o.pump1", True)
    assert wait_until(lambda: e.read("p.level") == pytest.approx(20.0) and device.get("coil", 0)[0])
    device.stop()
    assert wait_until(lambda: e.quality("p.level") == "bad", timeout=2)
    assert e.read("p.level") == pytest.approx(20.0)
    st = drivers[0].status()["devices"]["d"]
    assert st["health"] == "bad" and st["polls_failed"] >= 2
    age_bad = e.age_ns("p.level")
    e.wait(duration="50ms")
    assert e.age_ns("p.level") > age_bad, "the age of kept data grows"
    # The device comes back after a power cycle: its coils are off, its level new.
    device.set("coil", 0, [False, False, False])
    device.set("input_register", 0, [300])
    device.start()
    assert wait_until(
        lambda: e.quality("p.level") == "good" and e.read("p.level") == pytest.approx(30.0)
    )
    assert wait_until(lambda: device.get("coil", 0)[0]), "outputs are written again"
    texts = [ev["text"] for ev in e.events()[0] if ev["kind"] == "io"]
    assert any("inputs bad" in t for t in texts), texts
    assert any("answers again" in t for t in texts), texts
    assert any("outputs written again" in t for t in texts), texts
    st = drivers[0].status()
    assert st["connections"][0]["connects"] >= 2
    assert st["devices"]["d"]["rewrites"] >= 2


def test_substitute_values_replace_the_inputs_of_a_failed_device(device, make_engine):
    body = READS.replace("scale = 0.1\n", "scale = 0.1\nsubstitute = 12.5\n", 1)
    e, _ = make_engine(READ_VARS, dev_toml(device.port, body, on_fail="substitute"))
    device.set("input_register", 0, [500])
    assert wait_until(lambda: e.read("p.level") == pytest.approx(50.0))
    device.stop()
    assert wait_until(lambda: e.quality("p.level") == "bad", timeout=2)
    assert e.read("p.level") == 12.5
    assert e.read("p.flow") == 0.0


def test_exception_answers_are_counted_and_keep_the_connection(device, make_engine):
    body = '[[device.read]]\nvar = "far"\ntable = "holding_register"\naddress = 60000\n'
    e, drivers = make_engine([("x.far", "input", INT, "%IW0")], dev_toml(device.port, body))
    assert wait_until(lambda: e.quality("x.far") == "bad")
    st = drivers[0].status()
    assert st["devices"]["d"]["exceptions"] >= 2
    assert "exception 0x02" in st["devices"]["d"]["last_error"]
    assert st["connections"][0]["connects"] == 1 and st["connections"][0]["disconnects"] == 0


def test_an_unknown_variable_fails_at_start_naming_file_line_and_key(device, make_engine, tmp_path):
    body = '[[device.read]]\nvar = "nope"\ntable = "holding_register"\naddress = 0\n'
    with pytest.raises(ConfigError, match=r"io1\.toml:\d+:\d+: .*`var`.*nope"):
        make_engine([("x.a", "input", INT, "%IW0")], dev_toml(device.port, body))


def test_a_uint_register_cannot_be_mapped_to_a_coil(tmp_path):
    import softplc.io as sio

    p = tmp_path / "bad.toml"
    p.write_text(
        '[[device]]\nname = "d"\nhost = "127.0.0.1"\n'
        '[[device.read]]\nvar = "a"\ntable = "coil"\naddress = 0\ntype = "UINT"\n'
    )
    with pytest.raises(ConfigError, match=r"bad\.toml:8:8: .*`type`.*BOOL"):
        sio.load_config(p)


# -- reconnection, gateways and rejected writes ---------------------------------------

IO_VARS = [("x.lvl", "input", INT, "%IW0"), ("x.pump", "output", BOOL, "%QX0.0")]
IO_BODY = """
[[device.read]]
var = "lvl"
table = "input_register"
address = 0

[[device.write]]
var = "pump"
table = "coil"
address = 0
"""


def io_texts(e) -> list[str]:
    return [ev["text"] for ev in e.events()[0] if ev["kind"] == "io"]


def test_a_device_restarted_between_two_polls_gets_its_outputs_written_again(device, make_engine):
    # The restart is over before the next poll, so the poll's retry is what finds the
    # connection gone and reconnects: that reconnection must re-write the outputs too.
    e, drivers = make_engine(IO_VARS, dev_toml(device.port, IO_BODY, poll_ms=50, retries=1))
    e.write("x.pump", True)
    assert wait_until(lambda: device.get("coil", 0) == [True])
    device.stop()
    device.set("coil", 0, [False])  # a power cycle clears the device's outputs
    device.start()
    assert wait_until(lambda: device.get("coil", 0) == [True], timeout=2)
    # The event is logged just after the write it reports: wait for it, don't race it.
    assert wait_until(
        lambda: sum("outputs written again" in t for t in io_texts(e)) >= 2, timeout=2
    ), io_texts(e)
    texts = io_texts(e)
    dropped = [t for t in texts if "dropped" in t]
    assert dropped, texts
    # The cause is named, not an unrelated OS error left over in errno.
    assert all("in progress" not in t and "os error 115" not in t for t in dropped), dropped
    assert any("connection closed by the device" in t or "reset" in t for t in dropped), dropped
    assert drivers[0].status()["devices"]["d"]["rewrites"] >= 2


class LateUnitGateway:
    """A Modbus TCP gateway on raw sockets: unit 1 answers at once (registers read 11),
    unit 2 answers ``late`` seconds after each request (registers read 22), after the
    client has given up on it. Writes are acknowledged."""

    def __init__(self, late: float) -> None:
        self.late = late
        self._ls = socket.create_server(("127.0.0.1", 0))
        self.port = self._ls.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self._ls.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._open.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        with c:
            self._answer(c)

    def _answer(self, c: socket.socket) -> None:
        lock = threading.Lock()

        def send(frame: bytes) -> None:
            with lock, contextlib.suppress(OSError):
                c.sendall(frame)

        buf = b""
        while True:
            try:
                data = c.recv(1024)
            except OSError:
                return
            if not data:
                return
            buf += data
            while len(buf) >= 7:
                tid, _, length, unit = struct.unpack(">HHHB", buf[:7])
                if len(buf) < 6 + length:
                    break
                pdu, buf = buf[7 : 6 + length], buf[6 + length :]
                if pdu[0] in (3, 4):
                    n = pdu[4]
                    body = bytes([pdu[0], 2 * n]) + struct.pack(">H", 11 * unit) * n
                else:
                    body = pdu[:5]
                frame = struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body
                if unit == 1:
                    send(frame)
                else:
                    threading.Timer(self.late, send, (frame,)).start()

    def close(self) -> None:
        self._ls.close()
        for c in self._open:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()


def gateway_toml(port: int, **unit2: object) -> str:
    body = ""
    for unit in (1, 2):
        # Unit 1 may wait one of unit 2's 100 ms timeouts between two of its 20 ms polls:
        # its data may be that much older (with slack for a loaded machine).
        opts: dict[str, object] = {"unit_id": unit, "timeout_ms": 100, "reconnect_max_ms": 1000}
        opts |= {"stale_ms": 250} if unit == 1 else unit2
        body += dev_toml(port, "", **opts).replace('name = "d"', f'name = "u{unit}"')
        body += f'\n[[device.read]]\nvar = "v{unit}"\ntable = "holding_register"\naddress = 0\n'
        if unit == 1:
            body += '[[device.write]]\nvar = "o"\ntable = "coil"\naddress = 0\n'
    return body


GATEWAY_VARS = [
    ("g.v1", "input", INT, "%IW0"),
    ("g.v2", "input", INT, "%IW1"),
    ("g.o", "output", BOOL, "%QX0.0"),
]


def test_a_unit_answering_too_late_does_not_starve_the_others_behind_its_gateway(make_engine):
    gw = LateUnitGateway(late=0.15)
    try:
        e, drivers = make_engine(GATEWAY_VARS, gateway_toml(gw.port))
        e.write("g.o", True)
        assert wait_until(lambda: e.quality("g.v1") == "good" and e.read("g.v1") == 11)
        samples = []
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            samples.append((e.quality("g.v1"), e.read("g.v1"), e.age_ns("g.v1")))
            time.sleep(0.005)
        st = drivers[0].status()
    finally:
        gw.close()
    u1, u2, conn = st["devices"]["u1"], st["devices"]["u2"], st["connections"][0]
    # Unit 1 stays good, is never handed unit 2's late answer, and waits at most about
    # one of unit 2's timeouts (100 ms) between polls (typically 110 ms old at most).
    assert {q for q, _, _ in samples} == {"good"}
    assert {v for _, v, _ in samples} == {11}
    assert max(a for _, _, a in samples) < 250_000_000, max(a for _, _, a in samples)
    assert u1["polls_failed"] == 0 and u1["polls_ok"] >= 20, u1
    # Unit 2's timeouts neither drop the shared connection nor re-write unit 1's outputs.
    assert (conn["connects"], conn["disconnects"]) == (1, 0), conn
    assert conn["late_answers"] >= 1, conn
    assert u1["rewrites"] == 1, u1
    # Unit 2 is bad and, failing, polled far less often than every 20 ms.
    assert u2["health"] == "bad" and u2["timeouts"] >= 2, u2
    assert u2["requests"] <= 15, u2


def test_a_unit_missing_behind_a_gateway_is_an_exception_not_a_broken_connection(make_engine):
    # pymodbus answers for a unit it does not have with exception 0B under function
    # code 0 (not the request's): it is still an answer, and the connection is fine.
    with Device(unit_ids=(1,)) as gw:
        gw.set("holding_register", 0, [11])
        e, drivers = make_engine(GATEWAY_VARS, gateway_toml(gw.port))
        e.write("g.o", True)
        assert wait_until(lambda: drivers[0].status()["devices"]["u2"]["health"] == "bad")
        e.wait(duration="200ms")
        st = drivers[0].status()
    u1, u2, conn = st["devices"]["u1"], st["devices"]["u2"], st["connections"][0]
    assert "exception 0x0b" in u2["last_error"], u2
    assert u2["exceptions"] >= 2 and u2["garbage"] == 0, u2
    assert (conn["connects"], conn["disconnects"]) == (1, 0), conn
    assert u1["health"] == "good" and u1["rewrites"] == 1, u1
    assert e.read("g.v1") == 11


def test_a_write_the_device_rejects_leaves_reads_going_and_is_retried_with_back_off(
    device, make_engine
):
    device.set("holding_register", 0, [77])
    body = (
        '[[device.read]]\nvar = "inp"\ntable = "holding_register"\naddress = 0\n'
        # The pymodbus device has 4096 registers: it rejects this write with 02.
        '[[device.write]]\nvar = "out"\ntable = "holding_register"\naddress = 60000\n'
    )
    variables = [("x.inp", "input", INT, "%IW0"), ("x.out", "output", INT, "%QW0")]
    e, drivers = make_engine(variables, dev_toml(device.port, body, reconnect_max_ms=2000))
    e.write("x.out", 5)
    assert wait_until(lambda: e.quality("x.inp") == "good" and e.read("x.inp") == 77)
    device.set("holding_register", 0, [78])
    assert wait_until(lambda: e.read("x.inp") == 78)
    e.wait(duration="500ms")
    st = drivers[0].status()["devices"]["d"]
    assert st["health"] == "good" and st["polls_failed"] == 0, st
    # Retried with back-off from the 20 ms poll period, not every 5 ms write check.
    assert 2 <= st["writes_rejected"] <= 8, st
    assert st["exceptions"] == st["writes_rejected"], st
    assert "rejected" in st["last_error"] and "0x02" in st["last_error"], st
    # Reported once, not once per retry.
    assert sum("write of" in t and "rejected" in t for t in io_texts(e)) == 1, io_texts(e)
    assert drivers[0].status()["connections"][0]["disconnects"] == 0


def test_a_device_may_be_addressed_as_unit_zero(make_engine):
    # Modbus TCP: unit 0 (like 255) addresses the device itself, not a broadcast.
    with Device(unit_ids=(0,)) as dev:
        dev.set("holding_register", 0, [99], unit=0)
        body = '[[device.read]]\nvar = "v"\ntable = "holding_register"\naddress = 0\n'
        e, drivers = make_engine(
            [("x.v", "input", INT, "%IW0")], dev_toml(dev.port, body, unit_id=0)
        )
        assert wait_until(lambda: e.read("x.v") == 99 and e.quality("x.v") == "good")
        assert drivers[0].status()["devices"]["d"]["unit_id"] == 0


def test_any_substitute_with_on_fail_keep_is_refused_even_zero(tmp_path):
    import softplc.io as sio

    p = tmp_path / "keep.toml"
    p.write_text(
        '[[device]]\nname = "d"\nhost = "127.0.0.1"\non_fail = "keep"\n'
        '[[device.read]]\nvar = "a"\ntable = "holding_register"\naddress = 0\nsubstitute = 0\n'
    )
    with pytest.raises(ConfigError, match=r"keep\.toml:\d+:\d+: .*`substitute`.*on_fail"):
        sio.load_config(p)


# -- a device that accepts connections and then misbehaves ------------------------------


class HostileDevice:
    """A TCP server that accepts every connection and then breaks the exchange: closes
    at once (``close``), answers a request with bytes that are no Modbus frame
    (``garble``), or sends half an answer and closes (``half``). Counts connections."""

    def __init__(self, mode: str) -> None:
        import socket
        import threading

        self.mode = mode
        self.accepted = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:

        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(0.5)
                if self.mode == "close":
                    continue
                try:
                    req = conn.recv(260)
                except OSError:
                    continue
                if self.mode == "garble" and req:
                    # A header claiming 60,000 bytes follow: no frame can be delimited.
                    conn.sendall(req[:4] + b"\xea\x60" + b"\x01\x03")
                elif self.mode == "half" and len(req) >= 8:
                    # The header and function code of a valid answer, then nothing.
                    conn.sendall(req[:4] + b"\x00\x05" + req[6:8])

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(2)


@pytest.mark.parametrize("mode", ["close", "garble", "half"])
def test_a_device_that_accepts_and_then_fails_is_retried_with_the_back_off(make_engine, mode):
    dev = HostileDevice(mode)
    try:
        toml = dev_toml(dev.port, IO_BODY, reconnect_min_ms=100, reconnect_max_ms=400)
        e, drivers = make_engine(IO_VARS, toml)
        time.sleep(3.0)
        accepted = dev.accepted
        st = drivers[0].status()["connections"][0]
    finally:
        dev.close()
    # Attempts at 0, 0.1, 0.3, 0.7, 1.1, 1.5, ... s: about 9 in 3 s (a few more for the
    # time the failing exchanges take to fail). Before the fix: thousands.
    assert 3 <= accepted <= 12, (accepted, st)
    assert e.quality("x.lvl") == "bad"


def test_client_events_are_rate_limited_per_kind_and_summed_up(make_engine):
    dev = HostileDevice("close")
    try:
        # No back-off to speak of: a legitimate storm of 1 ms reconnections.
        toml = dev_toml(dev.port, IO_BODY, reconnect_min_ms=1, reconnect_max_ms=1)
        e, _ = make_engine(IO_VARS, toml)
        time.sleep(2.5)
        accepted = dev.accepted
    finally:
        dev.close()
    texts = io_texts(e)
    assert accepted > 100, accepted
    connected = [t for t in texts if t.startswith("modbus: connected to")]
    # 5 a second, 3 windows at most (started within 2.5 s).
    assert len(connected) <= 15, len(connected)
    assert any("more connections on" in t and "in the last second" in t for t in texts), texts


def free_port() -> int:
    """A loopback port nobody listens on (just released by the OS)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_device_events_name_their_device_and_link_by_field_past_the_tenth_device(make_engine):
    # Twelve devices nobody answers for: the first two behind one gateway, the others
    # each on a port of its own. The numeric event codes this replaces (10 + device for
    # health, 20 + device for re-writes) made device 10's event read as device 0's.
    ports = [free_port() for _ in range(11)]
    variables, devices = [], []
    for k in range(12):
        port = ports[0] if k < 2 else ports[k - 1]
        variables.append((f"x.v{k}", "input", INT, f"%IW{k}"))
        devices.append(
            f'[[device]]\nname = "d{k}"\nhost = "127.0.0.1"\nport = {port}\n'
            "poll_ms = 20\ntimeout_ms = 100\nfail_after = 1\n"
            "reconnect_min_ms = 50\nreconnect_max_ms = 50\n"
            f'[[device.read]]\nvar = "v{k}"\ntable = "input_register"\naddress = 0\n'
        )
    e, _ = make_engine(variables, "\n".join(devices))

    def bad() -> dict[int, tuple[int, int, int]]:
        return {
            ev["io"]["device"]: (ev["io"]["link"], ev["a"], ev["b"])
            for ev in e.events()[0]
            if ev["io"] is not None and ev["io"]["kind"] == "device_bad"
        }

    assert wait_until(lambda: len(bad()) == 12, timeout=5), bad()
    links = {k: 0 if k < 2 else k - 1 for k in range(12)}
    assert bad() == {k: (link, link, k) for k, link in links.items()}
    failed = [ev for ev in e.events()[0] if ev["io"] and ev["io"]["kind"] == "connect_failed"]
    assert {ev["io"]["link"] for ev in failed} == set(range(11))
    assert all(ev["io"]["device"] is None for ev in failed)
