"""Hypothesis against the Modbus server: random register maps and values read back by
pymodbus exactly as the map says, and random (mostly malformed) frames answered as the
specification wants or with a closed connection, never crashing the server or stopping
the scan."""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import softplc.io as sio
from modbus_peers import Client
from softplc import Engine
from softplc.types import type_from_name

# Modbus-side type: (struct format, registers).
FORMATS = {
    "INT": ("h", 1),
    "UINT": ("H", 1),
    "DINT": ("i", 2),
    "UDINT": ("I", 2),
    "LINT": ("q", 4),
    "ULINT": ("Q", 4),
    "REAL": ("f", 2),
    "LREAL": ("d", 4),
}
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]


def to_words(fmt: str, value: Any, order: str) -> list[int]:
    raw = struct.pack(">" + fmt, value)
    ws = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if order in ("BADC", "DCBA"):
        ws = [w[::-1] for w in ws]
    if order in ("CDAB", "DCBA"):
        ws = ws[::-1]
    return [int.from_bytes(w, "big") for w in ws]


def value_of(ty: str) -> st.SearchStrategy[Any]:
    fmt = FORMATS[ty][0]
    if fmt == "f":
        return st.floats(width=32, allow_nan=False)
    if fmt == "d":
        return st.floats(allow_nan=False)
    bits = struct.calcsize(fmt) * 8
    if fmt.isupper():
        return st.integers(0, 2**bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


@st.composite
def register_maps(draw: Any) -> list[tuple[str, str, int, Any]]:
    """Up to 8 values of random types and orders at random, non-overlapping addresses."""
    out = []
    addr = draw(st.integers(0, 200))
    for _ in range(draw(st.integers(1, 8))):
        ty = draw(st.sampled_from(sorted(FORMATS)))
        order = draw(st.sampled_from(ORDERS))
        out.append((ty, order, addr, draw(value_of(ty))))
        addr += FORMATS[ty][1] + draw(st.integers(0, 3))
    return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entries=register_maps(), table=st.sampled_from(["holding_register", "input_register"]))
def test_registers_hold_values_exactly_as_the_map_lays_them_out(tmp_path, entries, table):
    lines = ["[server]", 'listen = "127.0.0.1:0"']
    for i, (_ty, order, addr, _) in enumerate(entries):
        lines += [
            "[[server.map]]",
            f'var = "m.v{i}"',
            f'table = "{table}"',
            f"address = {addr}",
            f'byte_order = "{order}"',
        ]
    path = tmp_path / "map.toml"
    path.write_text("\n".join(lines) + "\n")
    with Engine(clock="real", cycle="2ms") as e:
        for i, (ty, _, _, _) in enumerate(entries):
            e.declare(f"m.v{i}", "memory", type_from_name(ty))
        e.add_task("main", period="2ms")
        (server,) = sio.attach(e, io=path)
        e.start()
        for i, (_, _, _, v) in enumerate(entries):
            e.write(f"m.v{i}", v)
        e.wait(cycles=3)
        assert server.address is not None
        with Client("127.0.0.1", server.address[1]) as c:
            for ty, order, addr, v in entries:
                fmt, n = FORMATS[ty]
                assert c.read(table, addr, n) == to_words(fmt, v, order), (ty, order, v)
            if table == "holding_register":
                # And a client's write lands in the variable, decoded the same way.
                ty, order, addr, v = entries[0]
                fmt, n = FORMATS[ty]
                new = 1 if v == 0 else 0
                c.write("holding_register", addr, to_words(fmt, new, order))
                e.wait(cycles=3)
                assert e.read("m.v0") == new


# -- hostile frames ---------------------------------------------------------------------

SUPPORTED = {1, 2, 3, 4, 5, 6, 15, 16, 22, 23}
# The served unit id (1), and 0 and 255, which address a Modbus TCP device itself.
SERVED_UNITS = {0, 1, 255}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Engine, int]]:
    e = Engine(clock="real", cycle="2ms")
    for i in range(16):
        e.declare(f"h.w{i}", "output", type_from_name("INT"), f"%QW{i}")
    e.declare("h.c", "output", type_from_name("BOOL"), "%QX40.0")
    e.add_task("main", period="2ms")
    (srv,) = sio.attach(e, modbus_server="127.0.0.1:0")
    e.start()
    assert srv.address is not None
    yield e, srv.address[1]
    e.close()


def adu(tid: int, proto: int, unit: int, pdu: bytes, length: int | None = None) -> bytes:
    n = len(pdu) + 1 if length is None else length
    return struct.pack(">HHHB", tid, proto, n, unit) + pdu


frames = st.one_of(
    st.binary(max_size=40),
    st.builds(
        adu,
        st.integers(0, 0xFFFF),
        st.sampled_from([0, 0, 0, 0, 1, 0xFFFF]),
        st.sampled_from([1, 1, 1, 0, 2, 255]),
        st.one_of(
            st.binary(min_size=1, max_size=30),
            st.builds(
                lambda fc, a, q, extra: bytes([fc]) + struct.pack(">HH", a, q) + extra,
                st.sampled_from(sorted(SUPPORTED | {0x07, 0x2B, 0x80, 0x83})),
                st.integers(0, 0xFFFF),
                st.integers(0, 0xFFFF),
                st.binary(max_size=12),
            ),
        ),
        st.one_of(st.none(), st.integers(0, 300)),
    ),
)


def expected(stream: bytes) -> tuple[list[tuple[int, int, int]], str]:
    """What the server must do with ``stream``: the (transaction id, unit, function)
    of each request it must answer, in order (every one: on Modbus TCP there is no
    broadcast), and how the stream ends: ``close`` (the stream is not Modbus), or
    ``wait`` (an incomplete frame)."""
    replies = []
    rest = stream
    while len(rest) >= 7:
        tid, proto, length, unit = struct.unpack(">HHHB", rest[:7])
        if proto != 0 or not 2 <= length <= 254:
            return replies, "close"
        if len(rest) < 6 + length:
            return replies, "wait"
        replies.append((tid, unit, rest[7]))
        rest = rest[6 + length :]
    return replies, "wait"


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(frames, min_size=1, max_size=4))
def test_hostile_frames_get_an_exception_or_a_closed_connection(served, parts):
    e, port = served
    stream = b"".join(parts)
    replies, end = expected(stream)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(stream)
        for tid, unit, fc in replies:
            hdr = recv_exact(s, 7)
            assert len(hdr) == 7, f"no answer to fc {fc:#x} (unit {unit})"
            rtid, proto, length, runit = struct.unpack(">HHHB", hdr)
            assert (rtid, proto, runit) == (tid, 0, unit)
            pdu = recv_exact(s, length - 1)
            assert len(pdu) == length - 1 >= 1
            if unit not in SERVED_UNITS:
                # Another unit: 0B, whatever the PDU (the unit is checked first).
                assert pdu == bytes([(fc | 0x80) & 0xFF, 0x0B]), pdu
            elif pdu[0] & 0x80:
                assert pdu[0] == (fc | 0x80) & 0xFF and len(pdu) == 2
                assert pdu[1] in (1, 2, 3), pdu
                if fc not in SUPPORTED:
                    assert pdu[1] == 1
            else:
                assert pdu[0] == fc and fc in SUPPORTED
        if end == "close":
            s.settimeout(2)
            assert s.recv(1) == b""
    # The server still answers, and the scan still runs.
    with Client("127.0.0.1", port) as c:
        assert len(c.read("holding_register", 0, 16)) == 16
    assert e.state == "RUN"
