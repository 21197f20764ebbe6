"""Fieldbus I/O: Modbus TCP client and server drivers and the OPC UA server (see
:mod:`softplc.io.opcua`), configured from a TOML file.

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
from softplc.io.driver import Driver
from softplc.io.opcua import OpcuaUser, opcua_server
from softplc.loader import load_program_file
from softplc.timefmt import parse_duration

__all__ = [
    "Driver",
    "OpcuaUser",
    "attach",
    "attach_from_args",
    "build_drivers",
    "check_config",
    "load_config",
    "modbus_server",
    "opcua_server",
]


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
    read_only: Sequence[str] = (),
) -> Driver:
    """A Modbus TCP server with the OpenPLC-compatible default map: ``%IX`` -> discrete
    inputs, ``%QX`` -> coils (bit = byte * 8 + bit), ``%IW`` -> input registers,
    ``%QW0..1023`` -> holding registers 0..1023, ``%MW`` -> holding registers from 1024,
    ``%MD`` from 2048 and ``%ML`` from 4096.

    Args:
        listen: ``HOST:PORT`` (an IP address or ``localhost``) or a bare port, which
            listens on 127.0.0.1. Port 0 picks a free port (see :attr:`Driver.address`).
        unit_id: the unit id served (0 and 255 are always answered too: on Modbus TCP
            both address the device itself).
        max_connections: when this many are open, a new client takes the place of the
            connection idle longest if that one has sent nothing for a second, and is
            refused otherwise.
        idle_timeout: close a connection that sends no complete request for this long
            (``"60s"``, nanoseconds, or 0 for never).
        allow: client addresses or networks allowed to connect (all when empty).
        read_only: tables clients may not write (``coil``, ``holding_register``):
            writes to them are answered with exception 01, as in the TOML ``[server]``
            table. Variables can also refuse writes one by one (``writable=False``,
            ``min``/``max``: exception 02 or 03).

    Example:
        >>> modbus_server("5020", read_only=["coil"]).name
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
    if isinstance(read_only, str):
        read_only = [read_only]
    d, m = _native.io_modbus_server(
        listen,
        unit_id=unit_id,
        max_connections=max_connections,
        idle_timeout_ms=(idle_ns + 999_999) // 1_000_000,
        allow=list(allow),
        read_only=list(read_only),
    )
    return Driver(d, m)


# The keyword arguments named ``modbus_server`` (the option's name) shadow the function.
_new_modbus_server = modbus_server


def _program_variables(program: str | Path) -> list[tuple[str, str, str, str | None]]:
    # Built as `softplc run` would, without running it: the engine's layout preview
    # binds the addresses. Reference mode, so a program outside the compiled subset
    # still gets its variables checked here (`softplc check` reports the subset).
    engine = load_program_file(program).build_engine(clock="virtual", mode="reference")
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


def build_drivers(
    *,
    io: str | Path | None = None,
    modbus_server: str | None = None,
    modbus_allow: Sequence[str] = (),
    modbus_read_only: Sequence[str] = (),
    opcua: str | None = None,
) -> list[Driver]:
    """The drivers of an I/O file and/or a default-map Modbus server, not yet attached
    to an engine: give them to :meth:`softplc.loader.ProgramFile.build_engine` (or
    :meth:`softplc.Engine.add_driver` each). ``modbus_allow`` and ``modbus_read_only``
    are the server's ``allow`` and ``read_only`` (see :func:`modbus_server`). ``opcua``
    is a loopback endpoint URL for an OPC UA server with the defaults (see
    :func:`opcua_server`; other addresses need a ``[server.opcua]`` table).

    Example:
        >>> [d.name for d in build_drivers(io="programs/pump_station.toml")]
        ['modbus']
        >>> build_drivers()
        []
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
        drivers.append(
            _new_modbus_server(modbus_server, allow=modbus_allow, read_only=modbus_read_only)
        )
    elif modbus_allow or modbus_read_only:
        raise ConfigError("the Modbus server options need --modbus-server HOST:PORT")
    if opcua is not None:
        drivers.append(_opcua_from_url(opcua, io))
    return drivers


def _opcua_from_url(url: str, io: str | Path | None) -> Driver:
    """The ``--opcua URL`` server: loopback only (security needs a TOML table)."""
    if io is not None and any(d.name == "opcua" for d in load_config(io)):
        raise ConfigError(
            f"{io}: the file configures a [server.opcua] already; drop --opcua or the table"
        )
    try:
        return opcua_server(url)
    except ConfigError as e:
        if "not a loopback address" not in str(e):
            raise
        raise ConfigError(
            f"--opcua {url}: only a loopback address is served without security; for any "
            "other address use a [server.opcua] table in --io FILE.toml with pki_dir and "
            "users (docs/opcua.md)"
        ) from None


def attach(
    engine: Any,
    *,
    io: str | Path | None = None,
    modbus_server: str | None = None,
    opcua: str | None = None,
) -> list[Driver]:
    """Adds the drivers of an I/O file and/or a default-map Modbus server to an engine
    (before :meth:`~softplc.Engine.start`); returns them for status queries.

    This is what ``softplc run PROGRAM.py --io FILE.toml --modbus-server HOST:PORT``
    does.

    Example:
        >>> from softplc import INT, Engine
        >>> engine = Engine(clock="real", cycle="10ms")
        >>> engine.declare("demo.level", "input", INT, "%IW0")
        >>> engine.add_task("main", period="10ms")
        >>> [d.name for d in attach(engine, modbus_server="127.0.0.1:0")]
        ['modbus-server']
        >>> engine.close()

        With an I/O file, the devices' variables must exist when the engine starts; the
        pump station's device must be running for its inputs to turn good:

        >>> from softplc.loader import load_program_file
        >>> engine = Engine(clock="real", cycle="10ms")
        >>> for p in load_program_file("programs/pump_station.py").programs:
        ...     _ = engine.add_program(p)
        >>> [d.name for d in attach(engine, io="programs/pump_station.toml")]
        ['modbus']
        >>> engine.start()  # doctest: +SKIP
        >>> engine.quality("pump_station.level")  # doctest: +SKIP
        'good'
        >>> engine.close()
    """
    drivers = build_drivers(io=io, modbus_server=modbus_server, opcua=opcua)
    for d in drivers:
        engine.add_driver(d)
    return drivers


def attach_from_args(engine: Any, args: argparse.Namespace) -> list[Driver]:
    """:func:`attach` with the ``--io`` and ``--modbus-server`` options of ``softplc run``.

    Example:
        >>> import argparse
        >>> from softplc import INT, Engine
        >>> engine = Engine(clock="real", cycle="10ms")
        >>> engine.declare("demo.count", "memory", INT, "%MW0")
        >>> engine.add_task("main", period="10ms")
        >>> args = argparse.Namespace(io=None, modbus_server="127.0.0.1:0")
        >>> [d.name for d in attach_from_args(engine, args)]
        ['modbus-server']
        >>> engine.close()

        Options that are missing count as not given:

        >>> attach_from_args(Engine(), argparse.Namespace())
        []
    """
    return attach(
        engine,
        io=getattr(args, "io", None),
        modbus_server=getattr(args, "modbus_server", None),
        opcua=getattr(args, "opcua", None),
    )
