"""The simulated field device of the pump station: a wet well with two pumps.

A Modbus TCP device (unit 1) whose tables follow `pump_station.toml`:

| table | address | meaning |
|---|---|---|
| input register | 0 | level, 0.1 % per count |
| input register | 2-3 | outflow in m3/h, float32 with the low word first (CDAB) |
| discrete input | 0 | high-level float switch (level above 90 %) |
| discrete input | 1, 2 | run feedback of pump 1 and 2 |
| coil | 0, 1 | pump commands |
| coil | 2 | alarm lamp |
| holding register | 0 | speed setpoint, 0.1 % per count |

Sewage flows in at `inflow` %/s; each running pump removes `pump_rate` %/s at full
speed. `stuck_pump` makes a pump ignore its command (no run feedback), for tests.

Run it:  python programs/pump_station_device.py --port 5020
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path
from typing import Any


class WetWell:
    """The plant model; ``step`` reads commands from and writes sensors to a device's
    tables through ``dev.get(table, address, count)`` / ``dev.set(table, address,
    values)``."""

    def __init__(
        self,
        level: float = 50.0,
        inflow: float = 4.0,
        pump_rate: float = 5.0,
        stuck_pump: int | None = None,
    ) -> None:
        self.level = level
        self.inflow = inflow
        self.pump_rate = pump_rate
        self.stuck_pump = stuck_pump

    def step(self, dev: Any, dt: float) -> None:
        cmd = dev.get("coil", 0, 2)
        speed = max(0.0, min(100.0, dev.get("holding_register", 0)[0] / 10.0))
        running = [bool(c) and self.stuck_pump != i + 1 for i, c in enumerate(cmd)]
        out_rate = sum(running) * self.pump_rate * speed / 100.0
        self.level = max(0.0, min(100.0, self.level + (self.inflow - out_rate) * dt))
        self.publish(dev, running, out_rate)

    def publish(self, dev: Any, running: list[bool] | None = None, out_rate: float = 0.0) -> None:
        running = running or [False, False]
        dev.set("input_register", 0, [round(self.level * 10)])
        hi, lo = struct.unpack(">HH", struct.pack(">f", out_rate * 36.0))
        dev.set("input_register", 2, [lo, hi])
        dev.set("discrete_input", 0, [self.level > 90.0, *running])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=5020)
    ap.add_argument("--level", type=float, default=50.0)
    args = ap.parse_args(argv)
    # The pymodbus adapter lives with the tests (it pins pymodbus's API in one place).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from modbus_peers import Device

    well = WetWell(level=args.level)
    with Device(port=args.port) as dev:
        well.publish(dev)
        print(f"pump station device on 127.0.0.1:{dev.port} (Ctrl-C stops)", flush=True)
        last = time.monotonic()
        try:
            while True:
                time.sleep(0.02)
                now = time.monotonic()
                well.step(dev, now - last)
                last = now
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
