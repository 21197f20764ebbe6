"""The Modbus client driver against a pymodbus device: values, batching, gateways,
failures, reconnection. Real clock, short durations."""

from __future__ import annotations

import struct

import pytest
from conftest import wait_until
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
