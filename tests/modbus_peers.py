"""The one place that touches pymodbus's API (pinned: pymodbus==3.8.6).

Every pymodbus 3.x minor release has changed its API (3.10 renamed ``slave=`` to
``device_id=``, 3.13 removed the synchronous datastore calls), so tests talk to these
two small classes instead; an upgrade edits this file only.

* :class:`Device`: a pymodbus TCP server (a simulated field device) on 127.0.0.1, on its
  own thread and event loop; it can be stopped and started again on the same port.
* :class:`Client`: a pymodbus synchronous TCP client.
* :class:`RtuDevice` / :class:`RtuClient`: the same on a serial line (Modbus RTU), for
  pseudo-terminals made by ``tests/serial_peers.py``. pymodbus 3.8.6 stays silent for
  unit ids it does not serve only with ``ignore_missing_slaves=True``, and carries out
  broadcasts (unit 0) only with ``broadcast_enable=True``; both are set here.

Tables are named as in softplc's I/O files: ``coil``, ``discrete_input``,
``input_register``, ``holding_register``. Addresses are 0-based protocol addresses.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Self

import pymodbus
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

PINNED = "3.8.6"
if pymodbus.__version__ != PINNED:  # pragma: no cover - a reminder, not a failure mode
    raise ImportError(
        f"tests/modbus_peers.py is written for pymodbus {PINNED}, found {pymodbus.__version__}"
    )

# Function codes whose datastore each table is.
_FC = {"coil": 1, "discrete_input": 2, "holding_register": 3, "input_register": 4}


def _fc(table: str) -> int:
    try:
        return _FC[table]
    except KeyError:
        raise ValueError(f"unknown table {table!r}; expected one of {sorted(_FC)}") from None


class Device:
    """A simulated Modbus TCP device served by pymodbus.

    Args:
        port: TCP port on 127.0.0.1 (0: a free one; read :attr:`port` after start).
        unit_ids: unit ids answered (several: a gateway with devices behind it).
        size: items per table, from address 0.
    """

    def __init__(self, *, port: int = 0, unit_ids: Sequence[int] = (1,), size: int = 4096):
        # pymodbus's slave context adds 1 to every protocol address before it indexes
        # the block, so a block starting at 1 makes protocol address a <-> index a.
        def block(fill: Any) -> ModbusSequentialDataBlock:
            return ModbusSequentialDataBlock(1, [fill] * size)

        self._slaves = {
            u: ModbusSlaveContext(di=block(False), co=block(False), hr=block(0), ir=block(0))
            for u in unit_ids
        }
        self._context = ModbusServerContext(slaves=self._slaves, single=False)
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusTcpServer | None = None

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> Device:
        """Starts serving (again, on the same port after :meth:`stop`)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="pymodbus-device", daemon=True
            )
            self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        server = ModbusTcpServer(self._context, address=("127.0.0.1", self.port))
        await server.serve_forever(background=True)
        transport: Any = server.transport
        if transport is None:
            raise OSError(f"pymodbus could not listen on 127.0.0.1:{self.port}")
        self.port = int(transport.sockets[0].getsockname()[1])
        self._server = server

    @property
    def thread_id(self) -> int | None:
        """The OS thread id of the device's event loop (for CPU accounting)."""
        return None if self._thread is None else self._thread.native_id

    def stop(self) -> None:
        """Stops serving and drops every client connection (the device vanishes)."""
        if self._loop is not None and self._server is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        listener: Any = server.transport
        for conn in list(server.active_connections.values()):
            conn.close()
        await server.shutdown()
        if listener is not None:
            listener.close()
            await listener.wait_closed()

    def close(self) -> None:
        """Stops and ends the thread."""
        self.stop()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._thread is not None
            self._thread.join(5)
            self._loop.close()
            self._loop = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- data -----------------------------------------------------------------------

    def get(self, table: str, address: int, count: int = 1, *, unit: int = 1) -> list[Any]:
        """Reads values as the device holds them."""
        values = self._slaves[unit].getValues(_fc(table), address, count)
        if table in ("coil", "discrete_input"):
            return [bool(v) for v in values]
        return [int(v) for v in values]

    def set(self, table: str, address: int, values: Sequence[Any], *, unit: int = 1) -> None:
        """Changes values in the device (as its sensors would)."""
        self._slaves[unit].setValues(_fc(table), address, list(values))


class RtuDevice(Device):
    """Simulated Modbus RTU slaves (one per unit id) served by pymodbus on a serial
    port (a pseudo-terminal path)."""

    def __init__(
        self,
        path: str,
        *,
        unit_ids: Sequence[int] = (1,),
        baud: int = 115200,
        parity: str = "N",
        size: int = 4096,
    ) -> None:
        super().__init__(unit_ids=unit_ids, size=size)
        self.path = path
        self.baud = baud
        self.parity = parity
        self._serial: ModbusSerialServer | None = None

    async def _start(self) -> None:
        server = ModbusSerialServer(
            self._context,
            framer=FramerType.RTU,
            port=self.path,
            baudrate=self.baud,
            parity=self.parity,
            ignore_missing_slaves=True,
            broadcast_enable=True,
        )
        await server.serve_forever(background=True)
        self._serial = server

    async def _stop(self) -> None:
        server, self._serial = self._serial, None
        if server is not None:
            await server.shutdown()

    def stop(self) -> None:
        """Stops serving and closes the port."""
        if self._loop is not None and self._serial is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)


class ModbusExceptionReply(Exception):
    """The server answered with a Modbus exception."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exception code {code}")
        self.code = code


class Client:
    """A pymodbus synchronous TCP client."""

    _c: ModbusTcpClient | ModbusSerialClient

    def __init__(self, host: str, port: int, *, timeout: float = 2.0) -> None:
        self._c = ModbusTcpClient(host, port=port, timeout=timeout, retries=0)
        if not self._c.connect():
            raise ConnectionError(f"cannot connect to {host}:{port}")

    def read(self, table: str, address: int, count: int = 1, *, unit: int = 1) -> list[Any]:
        """Reads ``count`` items; raises :class:`ModbusExceptionReply` on an exception."""
        f = {
            "coil": self._c.read_coils,
            "discrete_input": self._c.read_discrete_inputs,
            "holding_register": self._c.read_holding_registers,
            "input_register": self._c.read_input_registers,
        }[table]
        rr = f(address, count=count, slave=unit)
        if rr.isError():
            raise ModbusExceptionReply(int(getattr(rr, "exception_code", 0)))
        if table in ("coil", "discrete_input"):
            return [bool(b) for b in rr.bits[:count]]
        return [int(r) for r in rr.registers]

    def write(self, table: str, address: int, values: Sequence[Any], *, unit: int = 1) -> None:
        """Writes one item (FC5/FC6) or several (FC15/FC16)."""
        vals = list(values)
        if table == "coil":
            rr = (
                self._c.write_coil(address, bool(vals[0]), slave=unit)
                if len(vals) == 1
                else self._c.write_coils(address, [bool(v) for v in vals], slave=unit)
            )
        elif table == "holding_register":
            rr = (
                self._c.write_register(address, int(vals[0]), slave=unit)
                if len(vals) == 1
                else self._c.write_registers(address, [int(v) for v in vals], slave=unit)
            )
        else:
            raise ValueError(f"{table} is read-only in Modbus")
        if rr.isError():
            raise ModbusExceptionReply(int(getattr(rr, "exception_code", 0)))

    def close(self) -> None:
        self._c.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RtuClient(Client):
    """A pymodbus synchronous Modbus RTU master on a serial port."""

    def __init__(
        self, path: str, *, baud: int = 115200, parity: str = "N", timeout: float = 1.0
    ) -> None:
        self._c = ModbusSerialClient(
            path, framer=FramerType.RTU, baudrate=baud, parity=parity, timeout=timeout, retries=0
        )
        if not self._c.connect():
            raise ConnectionError(f"cannot open {path}")
