"""The OPC UA server under a bounded flood of garbage and half-open connections keeps
serving the next client, drops the flood within the hello timeout, and the scan keeps
running."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import time

import softplc.io as sio
from conftest import wait_until
from opcua_peers import Peer, wait_for
from softplc import DINT, Engine, Memory, program

GARBAGE = 60
HALF_OPEN = 60


@program
class Counter:
    count = Memory(DINT)

    def scan(self):
        self.count += 1


def garbage_messages() -> list[bytes]:
    """Bytes no OPC UA server should accept: noise, a Hello that claims absurd sizes, a
    message type that does not exist, a chunk that announces more than it sends."""
    hello = b"HELF" + struct.pack("<I", 0xFFFFFFF0) + b"\xff" * 24
    return [
        os.urandom(512),
        hello,
        b"XYZF" + struct.pack("<I", 16) + b"\0" * 8,
        b"MSGF" + struct.pack("<I", 1 << 24) + os.urandom(64),
    ]


def closed_by_server(socks: list[socket.socket], within: float) -> int:
    """How many of ``socks`` the server closes (or resets) within ``within`` seconds:
    reads (and drops) what it sends until the end of the stream."""
    open_ = {s.fileno(): s for s in socks}
    closed = 0
    end = time.monotonic() + within
    while open_ and time.monotonic() < end:
        ready, _, _ = select.select(list(open_.values()), [], [], 0.1)
        for s in ready:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                del open_[s.fileno()]
                closed += 1
    return closed


def test_garbage_and_half_open_connections_do_not_stop_the_next_client():
    e = Engine(clock="real", cycle="10ms")
    # Compiled: the scan never waits for the GIL the Python client holds.
    e.add_program(Counter())
    server = sio.opcua_server("opc.tcp://127.0.0.1:0")
    e.add_driver(server)
    e.start()
    socks: list[socket.socket] = []
    try:
        assert server.address is not None
        port = server.address[1]
        msgs = garbage_messages()
        for i in range(GARBAGE + HALF_OPEN):
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            socks.append(s)
            if i < GARBAGE:
                with contextlib.suppress(OSError):  # closed by the server already
                    s.sendall(msgs[i % len(msgs)])
        before = e.stats()[0]
        # The next client is served while the half-open connections are still held.
        with Peer(f"opc.tcp://127.0.0.1:{port}") as c:
            changes = c.subscribe(["counter.count"], period_ms=100)
            assert wait_for(lambda: len(changes) >= 5)
            assert c.read("counter.count") > 0
            c.write("counter.count", 0, "Int32")
            assert wait_until(lambda: e.read("counter.count") < 50)
        # The scan kept running; what the server costs its timing is measured by
        # tests/benchmarks/test_opcua_bench.py, not asserted here.
        after = e.stats()[0]
        assert e.state == "RUN"
        assert after["cycles"] > before["cycles"]
        # Garbage was answered by closing the connection (after an error message).
        # A Hello that never completes is dropped at the hello timeout (5 s).
        assert closed_by_server(socks[:GARBAGE], within=8.0) == GARBAGE
        # So is a connection that never says anything: half-open ones hold nothing long.
        assert closed_by_server(socks[GARBAGE:], within=3.0) == HALF_OPEN
    finally:
        for s in socks:
            s.close()
        e.close()
