"""pyXGTClient, an XGT client written by others (tests/xgt_peers.py), against softplc's
XGT server: reads and writes of every data type (bit, byte, word, double and long
word, continuous bytes) through the default map, and NAKs for what is not served."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
import softplc.io as sio
from conftest import wait_until
from softplc import BOOL, DINT, INT, LREAL, REAL, UDINT, UINT, ULINT, USINT, Engine
from xgt_peers import Client, XgtNakReply

VARIABLES = [
    ("p.b0", "memory", BOOL, "%MX0.0"),
    ("p.b5", "memory", BOOL, "%MX0.5"),
    ("p.byte", "memory", USINT, "%MB1"),
    ("p.word", "memory", UINT, "%MW1"),
    ("p.int", "memory", INT, "%MW2"),
    ("p.dword", "memory", UDINT, "%MD2"),
    ("p.real", "memory", REAL, "%MD3"),
    ("p.lword", "memory", ULINT, "%ML2"),
    ("p.lreal", "memory", LREAL, "%ML3"),
    ("p.level", "input", INT, "%IW0"),
    ("p.out", "output", DINT, "%QD0"),
]


@pytest.fixture(params=["XGI", "XGK"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, sio.Driver, str]]:
    e = Engine(clock="real", cycle="5ms")
    for name, area, ty, addr in VARIABLES:
        e.declare(name, area, ty, addr)
    e.add_task("main", period="5ms")
    (srv,) = sio.attach(e, xgt_server="127.0.0.1:0", xgt_cpu=request.param)
    e.start()
    yield e, srv, request.param
    e.close()


def names(cpu: str) -> dict[str, str]:
    """The devices of the default map: IEC CPUs I/Q/M, XGK-type CPUs P/D/M."""
    return {"I": "I", "Q": "Q", "M": "M"} if cpu == "XGI" else {"I": "P", "Q": "D", "M": "M"}


def client(srv: sio.Driver) -> Client:
    assert srv.address is not None
    return Client(*srv.address)


def test_the_peer_reads_every_type_as_the_program_holds_it(served):
    e, srv, cpu = served
    d = names(cpu)
    e.write("p.b5", True)
    e.write("p.byte", 0xAB)
    e.write("p.word", 0xBEEF)
    e.write("p.int", -2)
    e.write("p.dword", 0xDEADBEEF)
    e.write("p.real", 1.5)
    e.write("p.lword", 0x0123456789ABCDEF)
    e.write("p.lreal", -0.25)
    e.wait(cycles=3)
    with client(srv) as c:
        assert c.read(["%MX0", "%MX5"]) == [0, 1]
        assert c.read(["%MB1"]) == [0xAB]
        assert c.read(["%MW1", "%MW2"]) == [0xBEEF, 0xFFFE]
        real_bits = struct.unpack("<I", struct.pack("<f", 1.5))[0]
        assert c.read(["%MD2", "%MD3"]) == [0xDEADBEEF, real_bits]
        assert c.read(["%ML2", "%ML3"]) == [
            0x0123456789ABCDEF,
            struct.unpack("<Q", struct.pack("<d", -0.25))[0],
        ]
        # A continuous read of the same bytes: little-endian, as the image holds them.
        data = c.read_bytes("%MB2", 4)
        assert data == bytes([0xEF, 0xBE, 0xFE, 0xFF])
        # Other areas, by the CPU's device names.
        e.write("p.level", 321)
        e.wait(cycles=3)
        assert c.read([f"%{d['I']}W0"]) == [321]


def test_the_peer_writes_every_type_into_the_image(served):
    e, srv, _ = served
    with client(srv) as c:
        c.write(["%MX0"], [1])
        c.write(["%MB1"], [0x7F])
        c.write(["%MW1", "%MW2"], [40000, 0xFFFB])
        c.write(["%MD2"], [4_000_000_000])
        c.write(["%MD3"], [struct.unpack("<I", struct.pack("<f", -3.5))[0]])
        c.write(["%ML2"], [2**63 + 5])
        c.write_bytes("%MB24", struct.pack("<d", 6.25))
        # Read back at once: the client's own values.
        assert c.read(["%MW2"]) == [0xFFFB]
    assert wait_until(lambda: e.read("p.lreal") == 6.25)
    assert e.read("p.b0") is True
    assert e.read("p.b5") is False, "a bit write leaves the other bits of its byte alone"
    assert e.read("p.byte") == 0x7F
    assert (e.read("p.word"), e.read("p.int")) == (40000, -5)
    assert e.read("p.dword") == 4_000_000_000
    assert e.read("p.real") == -3.5
    assert e.read("p.lword") == 2**63 + 5
    assert srv.status()["writes_applied"] >= 8


def test_what_is_not_served_is_answered_with_a_nak(served):
    _, srv, cpu = served
    with client(srv) as c:
        with pytest.raises(XgtNakReply):
            c.read(["%MW100"])  # past the memory area
        with pytest.raises(XgtNakReply):
            c.read(["%ZW0" if cpu == "XGK" else "%DW0"])  # not a served device
        with pytest.raises(XgtNakReply):
            c.read_bytes("%MB30", 8)  # the memory area ends at byte 31
        # The connection survives its NAKs.
        assert c.read(["%MB1"]) == [0]
    naks = srv.status()["naks"]
    assert naks["0x0004"]["count"] >= 2 and naks["0x0003"]["count"] >= 1, naks
