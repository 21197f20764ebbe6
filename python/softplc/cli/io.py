"""``softplc io check FILE.toml [--program PROGRAM.py]``: validate an I/O configuration.
``softplc io ports``: list the serial ports of this machine.

``check`` prints a short description of the devices, the serial ports and the servers,
Modbus (TCP and RTU) and XGT (or one JSON object with ``--json``). Errors print
``softplc: error: FILE:LINE:COL: ...`` and exit 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from softplc import io as sio

__all__ = ["cmd_io_check", "cmd_io_ports", "register"]


def register(sub: Any) -> None:
    """Adds the ``io`` subcommand."""
    p = sub.add_parser(
        "io",
        help="fieldbus I/O configuration tools",
        description="Fieldbus I/O configuration tools.",
    )
    io_sub = p.add_subparsers(dest="io_command", metavar="ACTION")
    io_sub.required = True
    c = io_sub.add_parser(
        "check",
        help="validate an I/O configuration file",
        description="Validate an I/O configuration file without running anything.",
    )
    c.add_argument("file", metavar="FILE.toml", help="I/O configuration")
    c.add_argument(
        "--program",
        metavar="PROGRAM.py",
        help="also bind the mappings to this program's variables",
    )
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_io_check)
    ports = io_sub.add_parser(
        "ports",
        help="list the serial ports of this machine",
        description="List the serial ports of this machine (device, description, hardware id).",
    )
    ports.add_argument("--json", action="store_true", help="print one JSON list")
    ports.set_defaults(func=cmd_io_ports)


def cmd_io_ports(args: argparse.Namespace) -> int:
    """Runs ``softplc io ports``."""
    found = sio.list_ports()
    if args.json:
        print(json.dumps(found))
        return 0
    if not found:
        print("no serial ports found")
    for p in found:
        print(f"{p['device']}\t{p['description']}\t{p['hwid']}")
    return 0


def cmd_io_check(args: argparse.Namespace) -> int:
    """Runs ``softplc io check``."""
    report = sio.check_config(args.file, program=args.program)
    if args.json:
        print(json.dumps(report))
        return 0
    bound = " (bound to the program)" if report["bound"] else ""
    print(f"{report['file']}: OK{bound}")
    for d in report["devices"]:
        line = (
            f"  device {d['name']}: {d['endpoint']} unit {d['unit_id']}, poll {d['poll_ms']} ms, "
            f"{d['reads']} inputs, {d['writes']} outputs"
        )
        if "read_requests_per_poll" in d:
            line += (
                f", {d['read_requests_per_poll']} read requests per poll, "
                f"{d['write_requests']} write requests"
            )
        print(line)
    s = report["server"]
    if s is not None:
        m = "default map" if s["default_map"] else "explicit map"
        extra = "" if s["map_entries"] is None else f", {s['map_entries']} variables"
        print(f"  server: {s['listen']} unit {s['unit_id']}, {m}{extra}")
    for p in report.get("ports", []):
        devs = ", ".join(p["devices"]) or "no devices"
        print(
            f"  port {p['name']}: {p['path']} {p['baud']} baud {p['data_bits']}"
            f"{p['parity'][0].upper()}{p['stop_bits']}, t3.5 {p['t35_us']} us ({devs})"
        )
    for r in report.get("rtu_servers", []):
        m = "default map" if r["default_map"] else "explicit map"
        print(f"  rtu server: port {r['port']} unit {r['unit_id']}, {m}")
    _print_xgt(report)
    return 0


def _print_xgt(report: dict[str, Any]) -> None:
    """The XGT PLCs and the XGT server of a report."""
    for d in report.get("xgt_devices", []):
        line = (
            f"  xgt device {d['name']}: {d['endpoint']} {d['cpu']}, poll {d['poll_ms']} ms, "
            f"{d['reads']} inputs, {d['writes']} outputs"
        )
        if "read_requests_per_poll" in d:
            line += (
                f", {d['read_requests_per_poll']} read requests per poll, "
                f"{d['write_requests']} write requests"
            )
        print(line)
    s = report.get("xgt_server")
    if s is not None:
        m = "default map" if s["default_map"] else "explicit map"
        extra = "" if s["map_entries"] is None else f", {s['map_entries']} variables"
        print(f"  xgt server: {s['listen']} as {s['cpu']}, {m}{extra}")
