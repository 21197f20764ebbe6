"""The Python handle of an I/O driver (Modbus and XGT clients and servers, the OPC UA
server, Python serial devices): what the engine takes and what reports the driver's
health."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Driver"]


class Driver:
    """An I/O driver: hand it to :meth:`softplc.Engine.add_driver` (once), and read its
    health with :meth:`status` before, while and after the engine runs.

    Example:
        >>> from softplc.io import modbus_server
        >>> d = modbus_server("127.0.0.1:0")
        >>> d.status()["running"]
        False
    """

    def __init__(self, native_driver: Any, monitor: Any) -> None:
        self._native_driver = native_driver
        self._monitor = monitor

    @property
    def name(self) -> str:
        """The driver's name in the engine (``modbus``, ``modbus-server``,
        ``modbus-rtu-server-PORT``, ``xgt``, ``xgt-server``, ``opcua``, or a serial
        device's name)."""
        return str(self._monitor.name)

    def status(self) -> dict[str, Any]:
        """Counters and states as plain data: for the client, per device health
        (``waiting``/``good``/``failing``/``bad``), polls, retries, timeouts, exceptions,
        garbled answers, rejected writes, round-trip times, and per connection connects,
        disconnects and late answers dropped; for the server, the address it listens on,
        connections (open, accepted, refused, evicted), requests and exceptions by kind.
        The XGT drivers report the same, with NAKs in place of exceptions: the client's
        ``naks`` and ``last_error`` (LS's error code and meaning, and the request it
        refused), the server's ``naks`` by code.

        Example:
            >>> from softplc.io import load_config, modbus_server
            >>> client = load_config("programs/pump_station.toml")[0]
            >>> st = client.status()
            >>> st["kind"], st["running"]
            ('modbus-client', False)
            >>> server = modbus_server("127.0.0.1:0")
            >>> st = server.status()
            >>> st["listen"], st["exceptions"]["illegal_function"]
            (None, 0)

            Devices appear once the engine has bound the driver (at start); a running
            engine's client status reads like
            ``{"devices": {"pumps": {"health": "good", "polls_ok": 1234, ...}}, ...}``.
        """
        result: dict[str, Any] = json.loads(self._monitor.status_json())
        return result

    @property
    def address(self) -> tuple[str, int] | None:
        """For a started server: the address it listens on (port 0 resolved), else
        None.

        Example:
            >>> from softplc import INT, Engine
            >>> from softplc.io import attach
            >>> engine = Engine(clock="real", cycle="10ms")
            >>> engine.declare("demo.speed", "output", INT, "%QW0")
            >>> engine.add_task("main", period="10ms")
            >>> (server,) = attach(engine, modbus_server="127.0.0.1:0")
            >>> print(server.address)  # not listening before the engine starts
            None
            >>> engine.start()
            >>> host, port = server.address
            >>> host, port > 0
            ('127.0.0.1', True)
            >>> engine.close()
        """
        listen = self.status().get("listen")
        if not listen:
            return None
        host, _, port = str(listen).rpartition(":")
        return host.strip("[]"), int(port)

    def __repr__(self) -> str:
        return f"<softplc.io.Driver {self.name!r}>"
