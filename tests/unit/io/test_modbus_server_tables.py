"""The Modbus TCP server's default map serves OpenPLC's full-size tables; strict mode
serves only what is bound."""

from __future__ import annotations

import pytest
import softplc.io as sio
from conftest import wait_until
from modbus_peers import Client, ModbusExceptionReply
from softplc import BOOL, INT, Engine

VARS = [("t.run", "output", BOOL, "%QX0.0"), ("t.level", "input", INT, "%IW3")]


def engine_with(server: sio.Driver) -> Engine:
    e = Engine(clock="real", cycle="5ms")
    for name, area, ty, addr in VARS:
        e.declare(name, area, ty, addr)
    e.add_task("main", period="5ms")
    e.add_driver(server)
    e.start()
    return e


def test_a_block_read_of_unbound_addresses_gets_zeros_like_openplc():
    server = sio.modbus_server("127.0.0.1:0")
    e = engine_with(server)
    try:
        e.write("t.run", True)
        e.write("t.level", 9)
        e.wait(cycles=3)
        assert server.address is not None
        with Client(*server.address) as c:
            # One coil is declared; a SCADA block read of 8 gets 8 values.
            assert c.read("coil", 0, 8) == [True] + [False] * 7
            assert c.read("input_register", 0, 5) == [0, 0, 0, 9, 0]
            # The last items of each table, and writes to scratch addresses.
            assert c.read("coil", 8191) == [False]
            assert c.read("discrete_input", 8184, 8) == [False] * 8
            assert c.read("input_register", 1023) == [0]
            c.write("holding_register", 8000, [77])
            assert c.read("holding_register", 8000) == [77]
            for table, first_past in [
                ("coil", 8192),
                ("discrete_input", 8192),
                ("input_register", 1024),
                ("holding_register", 8192),
            ]:
                with pytest.raises(ModbusExceptionReply) as exc:
                    c.read(table, first_past)
                assert exc.value.code == 2, table
        assert server.status()["tables"] == {
            "coils": 8192,
            "discrete_inputs": 8192,
            "input_registers": 1024,
            "holding_registers": 8192,
        }
    finally:
        e.close()


def test_strict_mode_answers_exception_02_for_every_unbound_address():
    server = sio.modbus_server("127.0.0.1:0", strict_map=True)
    e = engine_with(server)
    try:
        e.write("t.run", True)
        assert wait_until(lambda: server.status()["publications"] > 2)
        assert server.address is not None
        with Client(*server.address) as c:
            assert c.read("coil", 0) == [True]
            with pytest.raises(ModbusExceptionReply) as exc:
                c.read("coil", 0, 8)
            assert exc.value.code == 2
            with pytest.raises(ModbusExceptionReply):
                c.write("holding_register", 8000, [77])
        assert server.status()["tables"]["coils"] == 1
    finally:
        e.close()
