"""Fieldbus I/O: Modbus TCP and RTU and LS Electric XGT (FEnet) client and server
drivers, the OPC UA server (see :mod:`softplc.io.opcua`), configured from a TOML file,
and Python serial devices (:func:`serial_device`).

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
    >>> sio.xgt_server("127.0.0.1:0", cpu="XGK").name
    'xgt-server'

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
    "SerialDeviceDriver",
    "attach",
    "attach_from_args",
    "build_drivers",
    "check_config",
    "list_ports",
    "load_config",
    "modbus_server",
    "opcua_server",
    "serial_device",
    "xgt_server",
]

# Python serial devices (a module of their own; re-exported here).
from softplc.io.serial_device import SerialDeviceDriver, serial_device


def list_ports() -> list[dict[str, str]]:
    """The serial ports of this machine (pyserial's ``list_ports``): device path,
    description and hardware id, as ``softplc io ports`` shows them.

    Example:
        >>> all(set(p) == {"device", "description", "hwid"} for p in list_ports())
        True
    """
    from serial.tools import list_ports as lp

    return [
        {"device": p.device, "description": p.description, "hwid": p.hwid}
        for p in sorted(lp.comports(), key=lambda p: p.device)
    ]


def _path(path: str | Path) -> str:
    if not isinstance(path, str | Path):
        raise ConfigError(f"expected a file path, got {path!r}")
    return str(path)


def load_config(path: str | Path) -> list[Driver]:
    """Reads an I/O configuration file and builds its drivers: the Modbus client (if the
    file lists Modbus ``[[device]]`` tables), the Modbus server (``[server]``), the XGT
    client (``[[device]]`` tables with ``protocol = "xgt"``) and the XGT server
    (``[server.xgt]``).

    Errors name the file, line and key. Variable names are resolved when the engine
    starts.

    Example:
        >>> [d.name for d in load_config("programs/pump_station.toml")]
        ['modbus']
        >>> [d.name for d in load_config("programs/xgt_press.toml")]
        ['xgt']
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
    strict_map: bool = False,
) -> Driver:
    """A Modbus TCP server with the OpenPLC-compatible default map: ``%IX`` -> discrete
    inputs, ``%QX`` -> coils (bit = byte * 8 + bit), ``%IW`` -> input registers,
    ``%QW0..1023`` -> holding registers 0..1023, ``%MW`` -> holding registers from 1024,
    ``%MD`` from 2048 and ``%ML`` from 4096.

    Like OpenPLC's, the tables are full-size: 8192 coils, 8192 discrete inputs, 1024
    input registers and 8192 holding registers (more if a variable's address lies
    beyond). Addresses no variable is bound to read 0 and accept writes; exception 02
    answers only reads and writes past the tables.

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
        strict_map: serve only the addresses bound to variables (exception 02 for any
            other), as softplc did before the full-size tables.

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
        strict_map=bool(strict_map),
    )
    return Driver(d, m)


# The keyword arguments named ``modbus_server`` (the option's name) shadow the function.
_new_modbus_server = modbus_server

XGT_CPUS = ("XGK", "XGI", "XGR", "XGB-MK", "XGB-IEC")
"""The CPU types an XGT server can answer as (``cpu=``)."""


def xgt_server(
    listen: str = "127.0.0.1:2004",
    *,
    cpu: str = "XGI",
    max_connections: int = 16,
    idle_timeout: str | int = "60s",
    allow: Sequence[str] = (),
    read_only: Sequence[str] = (),
) -> Driver:
    """An XGT server (LS Electric's dedicated protocol, FEnet): softplc answers as an
    XGT PLC of type ``cpu``, with the default map. On an IEC CPU (``XGI``, ``XGR``,
    ``XGB-IEC``) the devices I, Q and M are the image's areas, byte for byte: an XGT
    client's ``%MW10`` is the program's ``%MW10``. On an XGK-type CPU (``XGK``,
    ``XGB-MK``) P holds the inputs, M the memory and D the outputs (``docs/io.md``).

    Args:
        listen: ``HOST:PORT`` (an IP address or ``localhost``) or a bare port, which
            listens on 127.0.0.1. Port 0 picks a free port (see :attr:`Driver.address`).
        cpu: the CPU type answered as: its header code, how names are read, and the
            continuous limit (512 bytes on XGB CPUs, else 1,400).
        max_connections: when this many are open, a new client takes the place of the
            connection idle longest if that one has sent nothing for a second, and is
            refused otherwise.
        idle_timeout: close a connection that sends no complete request for this long
            (``"60s"``, nanoseconds, or 0 for never).
        allow: client addresses or networks allowed to connect (all when empty).
        read_only: devices clients may not write (``"I"``): writes to them get NAK
            0x0003. Variables can also refuse writes one by one (``writable=False``:
            0x0003; ``min``/``max``: 0x0010).

    Example:
        >>> xgt_server("2004", read_only=["I"]).name
        'xgt-server'
        >>> try:
        ...     xgt_server("2004", cpu="XGB")
        ... except ConfigError as e:
        ...     print(str(e).split(" (")[1])
        XGB is two families: XGB-MK for XBM/XBC CPUs, XGB-IEC for XEC CPUs)
    """
    if not isinstance(listen, str):
        raise ConfigError(f"listen must be a string like '127.0.0.1:2004', got {listen!r}")
    if not isinstance(cpu, str) or cpu.upper() not in XGT_CPUS:
        hint = (
            " (XGB is two families: XGB-MK for XBM/XBC CPUs, XGB-IEC for XEC CPUs)"
            if isinstance(cpu, str) and cpu.upper() == "XGB"
            else ""
        )
        raise ConfigError(f"cpu must be one of {', '.join(XGT_CPUS)}, got {cpu!r}{hint}")
    if not isinstance(max_connections, int) or not 1 <= max_connections <= 1024:
        raise ConfigError(f"max_connections must be 1..1024, got {max_connections!r}")
    idle_ns = parse_duration(idle_timeout, what="idle_timeout")
    if idle_ns < 0:
        raise ConfigError(f"idle_timeout must not be negative, got {idle_timeout!r}")
    if isinstance(allow, str):
        allow = [allow]
    if isinstance(read_only, str):
        read_only = [read_only]
    d, m = _native.io_xgt_server(
        listen,
        cpu=cpu,
        max_connections=max_connections,
        idle_timeout_ms=(idle_ns + 999_999) // 1_000_000,
        allow=list(allow),
        read_only=list(read_only),
    )
    return Driver(d, m)


# The keyword arguments named ``xgt_server`` (the option's name) shadow the function.
_new_xgt_server = xgt_server


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
    file, line and key. Modbus devices are under ``devices`` and ``server``, XGT PLCs
    under ``xgt_devices`` and ``xgt_server``.

    Example:
        >>> r = check_config("programs/pump_station.toml", program="programs/pump_station.py")
        >>> r["devices"][0]["read_requests_per_poll"]
        2
        >>> r = check_config("programs/xgt_press.toml", program="programs/xgt_press.py")
        >>> d = r["xgt_devices"][0]
        >>> d["cpu"], d["read_requests_per_poll"], d["write_requests"]
        ('XGK', 2, 2)
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
    xgt_server: str | None = None,
    xgt_cpu: str = "XGI",
    opcua: str | None = None,
) -> list[Driver]:
    """The drivers of an I/O file and/or default-map Modbus and XGT servers and a
    loopback OPC UA server, not yet attached to an engine: give them to
    :meth:`softplc.loader.ProgramFile.build_engine` (or :meth:`softplc.Engine.add_driver`
    each). ``modbus_allow`` and ``modbus_read_only`` are the Modbus server's ``allow``
    and ``read_only`` (see :func:`modbus_server`); ``xgt_cpu`` is the XGT server's
    ``cpu`` (see :func:`xgt_server`). ``opcua`` is a loopback endpoint URL for an OPC UA
    server with the defaults (see :func:`opcua_server`; other addresses need a
    ``[server.opcua]`` table).

    Example:
        >>> [d.name for d in build_drivers(io="programs/pump_station.toml")]
        ['modbus']
        >>> [d.name for d in build_drivers(xgt_server="127.0.0.1:0", xgt_cpu="XGK")]
        ['xgt-server']
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
    drivers.extend(_xgt_server_drivers(drivers, io, xgt_server, xgt_cpu))
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


def _xgt_server_drivers(
    drivers: list[Driver], io: str | Path | None, listen: str | None, cpu: str
) -> list[Driver]:
    """The default-map XGT server of ``--xgt-server``, if asked for."""
    if listen is None:
        if cpu != "XGI":
            raise ConfigError("--xgt-cpu needs --xgt-server HOST:PORT")
        return []
    if any(d.name == "xgt-server" for d in drivers):
        raise ConfigError(
            f"{io}: the file configures a [server.xgt] already; drop --xgt-server or the "
            "[server.xgt] table"
        )
    return [_new_xgt_server(listen, cpu=cpu)]


def attach(
    engine: Any,
    *,
    io: str | Path | None = None,
    modbus_server: str | None = None,
    xgt_server: str | None = None,
    xgt_cpu: str = "XGI",
    opcua: str | None = None,
) -> list[Driver]:
    """Adds the drivers of an I/O file and/or default-map Modbus and XGT servers and a
    loopback OPC UA server to an engine (before :meth:`~softplc.Engine.start`); returns
    them for status queries.

    This is what ``softplc run PROGRAM.py --io FILE.toml --modbus-server HOST:PORT
    --xgt-server HOST:PORT --opcua URL`` does.

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
    drivers = build_drivers(
        io=io, modbus_server=modbus_server, xgt_server=xgt_server, xgt_cpu=xgt_cpu, opcua=opcua
    )
    for d in drivers:
        engine.add_driver(d)
    return drivers


def attach_from_args(engine: Any, args: argparse.Namespace) -> list[Driver]:
    """:func:`attach` with the ``--io``, ``--modbus-server``, ``--xgt-server``,
    ``--xgt-cpu`` and ``--opcua`` options of ``softplc run``.

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
        xgt_server=getattr(args, "xgt_server", None),
        xgt_cpu=getattr(args, "xgt_cpu", None) or "XGI",
        opcua=getattr(args, "opcua", None),
    )
