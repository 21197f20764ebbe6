"""Fieldbus I/O: Modbus TCP client and server drivers, configured from a TOML file.

The drivers run their network I/O on their own threads; the scan only exchanges
buffers with them, so a device that vanishes or answers slowly shows up as input
quality (``engine.quality(name)``), data age (``engine.age_ns(name)``), statistics
(:meth:`Driver.status`) and engine events, never as a late cycle.

Example:
    >>> import softplc.io as sio
    >>> report = sio.check_config("programs/pump_station.toml")
    >>> [d["name"] for d in report["devices"]]
    ['pumps']
    >>> server = sio.modbus_server("127.0.0.1:0")
    >>> server.name
    'modbus-server'

The file format is described in ``docs/io.md``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from softplc import _native
from softplc.errors import ConfigError
from softplc.timefmt import parse_duration

__all__ = [
    "Driver",
    "attach",
    "attach_from_args",
    "check_config",
    "load_config",
    "modbus_server",
]


class Driver:
    """An I/O driver: hand it to :meth:`softplc.Engine.add_driver` (once), and read its
    health with :meth:`status` before, while and after the engine runs.

    Example:
        >>> d = modbus_server("127.0.0.1:0")
        >>> d.status()["running"]
        False
    """

    def __init__(self, native_driver: Any, monitor: Any) -> None:
        self._native_driver = native_driver
        self._monitor = monitor

    @property
    def name(self) -> str:
        """The driver's name in the engine (``modbus`` or ``modbus-server``)."""
        return str(self._monitor.name)

    def status(self) -> dict[str, Any]:
        """Counters and states as plain data: for the client, per device health
        (``waiting``/``good``/``failing``/``bad``), polls, timeouts, exceptions, garbled
        answers, round-trip times and connection counts; for the server, the address it
        listens on, connections, requests and exceptions by kind."""
        result: dict[str, Any] = json.loads(self._monitor.status_json())
        return result

    @property
    def address(self) -> tuple[str, int] | None:
        """For a started server: the address it listens on (port 0 resolved), else
        None."""
        listen = self.status().get("listen")
        if not listen:
            return None
        host, _, port = str(listen).rpartition(":")
        return host.strip("[]"), int(port)

    def __repr__(self) -> str:
        return f"<softplc.io.Driver {self.name!r}>"


def _path(path: str | Path) -> str:
    if not isinstance(path, str | Path):
        raise ConfigError(f"expected a file path, got {path!r}")
    return str(path)


def load_config(path: str | Path) -> list[Driver]:
    """Reads an I/O configuration file and builds its drivers: the Modbus client (if the
    file lists ``[[device]]`` tables) and the server (if it has ``[server]``).

    Errors name the file, line and key. Variable names are resolved when the engine
    starts.

    Example:
        >>> [d.name for d in load_config("programs/pump_station.toml")]
        ['modbus']
    """
    pairs = _native.io_load_config(_path(path))
    return [Driver(d, m) for d, m in pairs]


def modbus_server(
    listen: str = "127.0.0.1:502",
    *,
    unit_id: int = 1,
    max_connections: int = 16,
    idle_timeout: str | int = "60s",
    allow: Sequence[str] = (),
) -> Driver:
    """A Modbus TCP server with the OpenPLC-compatible default map: ``%IX`` -> discrete
    inputs, ``%QX`` -> coils (bit = byte * 8 + bit), ``%IW`` -> input registers,
    ``%QW0..1023`` -> holding registers 0..1023, ``%MW`` -> holding registers from 1024,
    ``%MD`` from 2048 and ``%ML`` from 4096.

    Args:
        listen: ``HOST:PORT`` (an IP address or ``localhost``) or a bare port, which
            listens on 127.0.0.1. Port 0 picks a free port (see :attr:`Driver.address`).
        unit_id: the unit id served (255 is always accepted too).
        max_connections: connections beyond this are refused.
        idle_timeout: close a connection that sends no complete request for this long
            (``"60s"``, nanoseconds, or 0 for never).
        allow: client addresses or networks allowed to connect (all when empty).

    Example:
        >>> modbus_server("5020").name
        'modbus-server'
    """
    if not isinstance(listen, str):
        raise ConfigError(f"listen must be a string like '127.0.0.1:5020', got {listen!r}")
    if not isinstance(unit_id, int) or not 1 <= unit_id <= 255:
        raise ConfigError(f"unit_id must be 1..255, got {unit_id!r}")
    if not isinstance(max_connections, int) or not 1 <= max_connections <= 1024:
        raise ConfigError(f"max_connections must be 1..1024, got {max_connections!r}")
    idle_ns = parse_duration(idle_timeout, what="idle_timeout")
    if idle_ns < 0:
        raise ConfigError(f"idle_timeout must not be negative, got {idle_timeout!r}")
    if isinstance(allow, str):
        allow = [allow]
    d, m = _native.io_modbus_server(
        listen,
        unit_id=unit_id,
        max_connections=max_connections,
        idle_timeout_ms=(idle_ns + 999_999) // 1_000_000,
        allow=list(allow),
    )
    return Driver(d, m)


def _program_variables(program: str | Path) -> list[tuple[str, str, str, str | None]]:
    from softplc.cli.run import build_engine
    from softplc.loader import load_program_file

    pf = load_program_file(str(program))
    args = argparse.Namespace(
        cycle="10ms",
        virtual=True,
        priority=0,
        watchdog=None,
        watchdog_tolerance=0,
        overrun="skip",
        reference=True,
        io=None,
        modbus_server=None,
    )
    engine = build_engine(pf, args)
    try:
        variables = engine.native.layout_preview()
    finally:
        engine.close()
    return [(v["name"], v["area"], v["type"], v["address"]) for v in variables]


def check_config(
    path: str | Path,
    *,
    program: str | Path | None = None,
    variables: Iterable[tuple[str, str, str, str | None]] | None = None,
) -> dict[str, Any]:
    """Validates a configuration file without running anything and describes it.

    With ``program`` (a program file) or ``variables`` (``(name, area, type, address)``
    rows), the mappings are also bound: variable names, types, overlaps and the number
    of requests per poll are checked. Raises :class:`softplc.ConfigError` naming the
    file, line and key.

    Example:
        >>> r = check_config("programs/pump_station.toml", program="programs/pump_station.py")
        >>> r["devices"][0]["read_requests_per_poll"]
        2
    """
    if program is not None and variables is not None:
        raise ConfigError("give either program= or variables=, not both")
    rows = None
    if program is not None:
        rows = _program_variables(program)
    elif variables is not None:
        rows = [
            (str(n), str(a), str(t), None if ad is None else str(ad)) for n, a, t, ad in variables
        ]
    result: dict[str, Any] = json.loads(_native.io_check_config(_path(path), rows))
    return result


def attach(
    engine: Any, *, io: str | Path | None = None, modbus_server: str | None = None
) -> list[Driver]:
    """Adds the drivers of an I/O file and/or a default-map Modbus server to an engine
    (before :meth:`~softplc.Engine.start`); returns them for status queries.

    This is what ``softplc run PROGRAM.py --io FILE.toml --modbus-server HOST:PORT``
    does.
    """
    drivers: list[Driver] = []
    if io is not None:
        drivers.extend(load_config(io))
    if modbus_server is not None:
        if any(d.name == "modbus-server" for d in drivers):
            raise ConfigError(
                f"{io}: the file configures a [server] already; drop --modbus-server or the "
                "[server] table"
            )
        drivers.append(globals()["modbus_server"](modbus_server))
    for d in drivers:
        engine.add_driver(d)
    return drivers


def attach_from_args(engine: Any, args: argparse.Namespace) -> list[Driver]:
    """:func:`attach` with the ``--io`` and ``--modbus-server`` options of ``softplc run``."""
    return attach(
        engine,
        io=getattr(args, "io", None),
        modbus_server=getattr(args, "modbus_server", None),
    )
