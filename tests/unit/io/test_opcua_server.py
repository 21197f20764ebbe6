"""The OPC UA server, seen by an independent client (asyncua): the address space, every
IEC type, writes and their refusals, subscriptions, the engine's methods and variables,
input quality and time stamps."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import softplc.io as sio
from conftest import wait_until
from modbus_peers import Device
from opcua_peers import Peer, Refused, wait_for
from softplc import (
    BOOL,
    DINT,
    INT,
    LINT,
    LREAL,
    REAL,
    SINT,
    TIME,
    UDINT,
    UINT,
    ULINT,
    USINT,
    Engine,
)

# (name, type, OPC UA DataType, VariantType to write, a value to write, its read-back)
TYPES: list[tuple[str, Any, str, str, Any, Any]] = [
    ("p.b", BOOL, "Boolean", "Boolean", True, True),
    ("p.si", SINT, "SByte", "SByte", -128, -128),
    ("p.i", INT, "Int16", "Int16", -32768, -32768),
    ("p.di", DINT, "Int32", "Int32", 2**31 - 1, 2**31 - 1),
    ("p.li", LINT, "Int64", "Int64", -(2**63), -(2**63)),
    ("p.usi", USINT, "Byte", "Byte", 255, 255),
    ("p.ui", UINT, "UInt16", "UInt16", 65535, 65535),
    ("p.udi", UDINT, "UInt32", "UInt32", 2**32 - 1, 2**32 - 1),
    ("p.uli", ULINT, "UInt64", "UInt64", 2**64 - 1, 2**64 - 1),
    ("p.r", REAL, "Float", "Float", -1.5, -1.5),
    ("p.lr", LREAL, "Double", "Double", 1e300, 1e300),
    # TIME is a Duration: milliseconds as a Double.
    ("p.t", TIME, "Duration", "Double", 1500.25, 1_500_250_000),
]


def declare_all(e: Engine) -> None:
    for name, ty, *_ in TYPES:
        e.declare(name, "memory", ty)
    e.declare("p.level", "memory", REAL, unit="%", min=0.0, max=100.0)
    e.declare("p.fixed", "memory", INT, initial=7, writable=False)
    e.declare("p.fb.q", "memory", BOOL)
    e.declare("p.pump", "output", BOOL, safe=False)
    e.declare("p.count", "memory", DINT)
    e.declare("g", "memory", INT)


def counter(io: Any) -> None:
    io["p.count"] = io["p.count"] + 1


@pytest.fixture
def plc() -> Iterator[Callable[..., tuple[Engine, sio.Driver, str]]]:
    """A real-time engine (10 ms) with every type, a counting program and an OPC UA
    server on a free loopback port; returns (engine, server driver, endpoint URL)."""
    made: list[Engine] = []

    def make(**server: Any) -> tuple[Engine, sio.Driver, str]:
        e = Engine(clock="real", cycle="10ms")
        made.append(e)
        declare_all(e)
        e.add_program(counter, name="p")
        d = sio.opcua_server("opc.tcp://127.0.0.1:0", **server)
        e.add_driver(d)
        e.start()
        assert d.address is not None
        host, port = d.address
        return e, d, f"opc.tcp://{host}:{port}"

    yield make
    for e in made:
        e.close()


def test_the_address_space_has_programs_instances_globals_and_the_engine(plc):
    _, _, url = plc()
    with Peer(url) as c:
        top = {name: (cls, nid) for name, cls, nid in c.browse()}
        assert {"Programs", "Globals", "Engine"} <= top.keys()
        assert top["Engine"] == ("Object", f"ns={c.ns};s=@engine")
        progs = {name: nid for name, _, nid in c.browse("@programs")}
        assert progs == {"p": f"ns={c.ns};s=p"}
        inside = {name: cls for name, cls, _ in c.browse("p")}
        assert inside["fb"] == "Object" and inside["count"] == "Variable"
        assert {name for name, _, _ in c.browse("p.fb")} == {"q"}
        assert [name for name, _, _ in c.browse("@globals")] == ["g"]
        engine = {name: cls for name, cls, _ in c.browse("@engine")}
        for n in ("State", "Fault", "Cycles", "Overruns", "Tasks", "Drivers"):
            assert n in engine
        assert {engine[m] for m in ("Start", "Stop", "ClearFault")} == {"Method"}


def test_every_iec_type_reads_as_its_data_type(plc):
    e, _, url = plc()
    for name, _, _, _, _, back in TYPES:
        e.write(name, back)
    with Peer(url) as c:
        # What a client reads is what it would write (TIME in milliseconds).
        for name, _, dtype, _, written, _ in TYPES:
            assert c.data_type_name(name) == dtype, name
            assert wait_for(lambda n=name, w=written: c.read(n) == w), (name, c.read_full(name))
            assert c.attribute(name, "ValueRank") == -1


def test_client_writes_of_every_type_reach_the_program(plc):
    e, d, url = plc()
    with Peer(url) as c:
        for name, _, _, vtype, value, back in TYPES:
            c.write(name, value, vtype)
            assert wait_until(lambda n=name, b=back: e.read(n) == b), (name, e.read(name))
    assert d.status()["writes_accepted"] == len(TYPES)


def test_refused_writes_answer_with_the_status_that_says_why(plc):
    e, d, url = plc()
    with Peer(url) as c:
        with pytest.raises(Refused) as r:
            c.write("p.fixed", 1, "Int16")
        assert r.value.status == "BadNotWritable"
        with pytest.raises(Refused) as r:
            c.write("p.level", 100.5, "Float")
        assert r.value.status == "BadOutOfRange"
        with pytest.raises(Refused) as r:
            c.write("p.level", math.nan, "Float")
        assert r.value.status == "BadOutOfRange"
        with pytest.raises(Refused) as r:
            c.write("p.i", 5, "Int32")
        assert r.value.status == "BadTypeMismatch"
        with pytest.raises(Refused) as r:
            c.write("@engine.State", "RUN", "String")
        assert r.value.status == "BadNotWritable"
        c.write("p.level", 55.0, "Float")
        assert wait_until(lambda: e.read("p.level") == 55.0)
    assert e.read("p.fixed") == 7
    st = d.status()
    assert st["writes_refused"] == 5 and st["writes_accepted"] == 1


def test_a_viewer_may_read_but_not_write(plc):
    _, _, url = plc(anonymous="viewer")
    with Peer(url) as c:
        assert c.read("p.fixed") == 7
        with pytest.raises(Refused) as r:
            c.write("p.i", 5, "Int16")
        assert r.value.status == "BadUserAccessDenied"
        assert c.attribute("p.i", "UserAccessLevel") & 2 == 0
        assert c.attribute("p.i", "AccessLevel") & 2 == 2


def test_ranges_and_units_make_analog_items(plc):
    _, _, url = plc()
    with Peer(url) as c:
        r = c.property("p.level", "EURange")
        assert (r.Low, r.High) == (0.0, 100.0)
        eu = c.property("p.level", "EngineeringUnits")
        assert eu.DisplayName.Text == "%" and eu.UnitId == 0x5031


def test_subscriptions_deliver_changes_at_the_sampling_rate(plc):
    _, _, url = plc()
    with Peer(url) as c:
        changes = c.subscribe(["p.count"], period_ms=100)
        assert wait_for(lambda: len(changes) >= 3)
        start = len(changes)
        t0 = changes[-1].received
        assert wait_for(lambda: len(changes) >= start + 20, timeout=10)
        got = changes[start:]
        span = got[-1].received - t0
        # A counter that changes every 10 ms cycle, sampled every 100 ms: about ten
        # notifications a second (not one per cycle), each a later cycle than the one
        # before. No upper bound beyond wait_for's: a loaded machine delays samples.
        assert span > 1.4, span
        values = [ch.value for ch in got]
        assert values == sorted(values) and len(set(values)) == len(values)
        stamps = [ch.source_ts for ch in got]
        assert stamps == sorted(stamps)
        assert all(ch.status == "Good" for ch in got)


def test_methods_start_stop_and_clear_fault_need_the_engineer_role(plc):
    e, d, url = plc()
    with Peer(url) as c:
        with pytest.raises(Refused) as r:
            c.call("Stop")
        assert r.value.status == "BadUserAccessDenied"
        assert e.state == "RUN"
    e.close()
    e, d, url = plc(anonymous="engineer")
    with Peer(url) as c:
        c.call("Stop")
        assert wait_until(lambda: e.state == "STOP")
        assert wait_for(lambda: c.read("@engine.State") == "STOP")
        c.call("Start")
        assert wait_until(lambda: e.state == "RUN")
        with pytest.raises(Refused) as r:
            c.call("Start", 1)
        assert r.value.status == "BadTooManyArguments"
    assert d.status()["calls_accepted"] == 2


def test_engine_variables_show_state_fault_statistics_and_driver_health(plc):
    e, _, url = plc()
    e.wait(cycles=20)
    with Peer(url) as c:
        assert wait_for(lambda: c.read("@engine.State") == "RUN")
        assert wait_for(lambda: c.read("@engine.Cycles") >= 20)
        assert c.read("@engine.Fault") == ""
        assert c.data_type_name("@engine.Cycles") == "UInt64"
        assert wait_for(lambda: c.read("@engine.tasks.main.LatencyP99Us") > 0)
        assert wait_for(lambda: c.read("@engine.drivers.opcua.Running") is True)
        assert '"kind":"opcua-server"' in c.read("@engine.drivers.opcua.Status")


def test_a_fault_shows_its_cause_and_start_waits_for_clear_fault():
    e = Engine(clock="real", cycle="10ms")
    e.declare("f.trip", "memory", BOOL)

    def trip(io: Any) -> None:
        if io["f.trip"]:
            raise RuntimeError("valve jammed")

    e.add_program(trip, name="f")
    d = sio.opcua_server("opc.tcp://127.0.0.1:0", anonymous="engineer")
    e.add_driver(d)
    e.start()
    try:
        assert d.address is not None
        with Peer(f"opc.tcp://127.0.0.1:{d.address[1]}") as c:
            c.write("f.trip", True, "Boolean")
            assert wait_until(lambda: e.state == "FAULT")
            assert wait_for(lambda: "valve jammed" in c.read("@engine.Fault"))
            assert c.read("@engine.State") == "FAULT"
            with pytest.raises(Refused) as r:
                c.call("Start")
            assert r.value.status == "BadInvalidState"
            e.write("f.trip", False)
            c.call("ClearFault")
            assert wait_until(lambda: e.state == "STOP")
            assert wait_for(lambda: c.read("@engine.Fault") == "")
            c.call("Start")
            assert wait_until(lambda: e.state == "RUN")
    finally:
        e.close()


def test_inputs_a_device_supplies_refuse_writes_and_carry_its_quality(tmp_path: Path):
    dev = Device().start()
    e = Engine(clock="real", cycle="10ms")
    try:
        e.declare("m.level", "input", INT, "%IW0")
        e.declare("m.flow", "input", INT, "%IW1")
        e.declare("m.free", "input", INT, "%IW2")
        e.add_task("main", period="10ms")
        toml = tmp_path / "io.toml"
        toml.write_text(
            f"""
[[device]]
name = "d"
host = "127.0.0.1"
port = {dev.port}
poll_ms = 20
timeout_ms = 100
fail_after = 1
reconnect_min_ms = 50
reconnect_max_ms = 50

[[device.read]]
var = "m.level"
table = "holding_register"
address = 0

[[device]]
name = "slow"
host = "127.0.0.1"
port = {dev.port}
poll_ms = 2000
stale_ms = 50
reconnect_min_ms = 50
reconnect_max_ms = 50

[[device.read]]
var = "m.flow"
table = "holding_register"
address = 1

[server.opcua]
endpoint = "opc.tcp://127.0.0.1:0"
"""
        )
        drivers = sio.attach(e, io=toml)
        e.start()
        server = next(d for d in drivers if d.name == "opcua")
        assert server.address is not None
        dev.set("holding_register", 0, [42])
        with Peer(f"opc.tcp://127.0.0.1:{server.address[1]}") as c:
            assert wait_for(lambda: c.read_full("m.level")[:2] == (42, "Good"))
            with pytest.raises(Refused) as r:
                c.write("m.level", 1, "Int16")
            assert r.value.status == "BadNotWritable"
            # An input no device supplies may be written (a test rig's button).
            c.write("m.free", 3, "Int16")
            assert wait_until(lambda: e.read("m.free") == 3)
            # Older than stale_ms between two polls: Uncertain, the last usable value.
            assert wait_for(lambda: c.read_full("m.flow")[1] == "UncertainLastUsableValue")
            dev.close()
            assert wait_for(lambda: c.read_full("m.level")[1] == "BadNoCommunication")
            assert c.read_full("m.level")[0] == 42
    finally:
        e.close()
        dev.close()


def test_virtual_time_is_the_source_timestamp_and_writes_land_at_the_next_cycle():
    e = Engine(clock="virtual", cycle="10ms")
    declare_all(e)
    e.add_program(counter, name="p")
    d = sio.opcua_server("opc.tcp://127.0.0.1:0", sampling="20ms")
    e.add_driver(d)
    e.start()
    try:
        assert d.address is not None
        with Peer(f"opc.tcp://127.0.0.1:{d.address[1]}") as c:
            frames = d.status()["frames"]
            # Idle, the server's request waits for the next cycle, which answers it.
            e.run_cycles(1)
            assert wait_for(lambda: d.status()["frames"] > frames)
            assert wait_for(lambda: c.read("p.count") == 1)
            _, _, ts1 = c.read_full("p.count")
            e.run_cycles(99)
            wait_for(lambda: False, timeout=0.1)  # a sampling tick asks again
            e.run_cycles(1)
            assert wait_for(lambda: c.read("p.count") == 101)
            _, _, ts2 = c.read_full("p.count")
            assert ts2 - ts1 == timedelta(seconds=1)
            c.write("p.i", 9, "Int16")
            assert e.read("p.i") == 0  # a request, applied at the start of the next cycle
            e.run_cycles(1)
            assert e.read("p.i") == 9
    finally:
        e.close()
