"""A bench scale on a serial line: the Python device driver softplc runs for it, and a
simulated scale to run it against.

The scale speaks ASCII lines (the common "SICS-like" shape of bench scales): the host
sends ``W`` and the scale answers its weight, ``ST`` when stable or ``US`` while it
settles, e.g. ``ST,GS,+  12.345 kg``; ``T`` tares it (answer ``T A``). Lines end with
CR LF.

Drive it from a program with :func:`softplc.io.serial_device`::

    import softplc.io as sio
    from scale_device import Scale
    scale = sio.serial_device(
        Scale(), port="/dev/ttyUSB0", baud=9600,
        inputs=["filler.weight", "filler.stable"], outputs=["filler.tare"],
        poll="100ms", timeout="300ms",
    )
    engine.add_driver(scale)

Run the simulated scale on a pseudo-terminal (``socat`` makes the pair):
    python programs/scale_device.py --pty /tmp/ttyS1
or on TCP, for ``port="socket://127.0.0.1:7001"``:
    python programs/scale_device.py --tcp 7001
"""

from __future__ import annotations

import argparse
import re
import socket
import threading
from collections.abc import Mapping
from typing import Any

import serial  # pyserial

_LINE = re.compile(rb"^(ST|US),(GS|NT),\s*([+-]?\s*\d+(?:\.\d+)?)\s*(kg|g)\s*$")


class ScaleError(Exception):
    """The scale answered something that is not a weight line."""


class Scale:
    """The device driver: ``poll`` asks for the weight, ``write`` tares on a rising
    ``tare`` output. Inputs: weight in kg (REAL), stable (BOOL)."""

    def __init__(self, *, weight: str = "weight", stable: str = "stable", tare: str = "tare"):
        self._names = (weight, stable, tare)
        self._tare_was = False

    def _var(self, names: Mapping[str, Any], suffix: str) -> str | None:
        return next((n for n in names if n == suffix or n.endswith("." + suffix)), None)

    def open(self, port: serial.SerialBase) -> None:
        """Drops whatever the scale sent before we were listening."""
        port.reset_input_buffer()

    def poll(self, port: serial.SerialBase, deadline: float) -> list[Any]:
        """One weight reading: ``[weight_kg, stable]``."""
        port.write(b"W\r\n")
        line = port.readline()
        if not line.endswith(b"\n"):
            raise TimeoutError(f"no answer from the scale (got {line!r})")
        m = _LINE.match(line.strip())
        if m is None:
            raise ScaleError(f"not a weight line: {line!r}")
        value = float(m.group(3).replace(b" ", b""))
        if m.group(4) == b"g":
            value /= 1000.0
        return [value, m.group(1) == b"ST"]

    def write(self, port: serial.SerialBase, outputs: Mapping[str, Any]) -> None:
        """Tares on a rising edge of the tare output."""
        name = self._var(outputs, self._names[2])
        tare = bool(outputs.get(name, False)) if name else False
        if tare and not self._tare_was:
            port.write(b"T\r\n")
            answer = port.readline()
            if not answer.startswith(b"T A"):
                raise ScaleError(f"tare refused: {answer!r}")
        self._tare_was = tare


class SimulatedScale:
    """A scale that answers on a serial port or a TCP socket: ``weight_kg`` is what
    lies on it (set it from a test), ``stable`` whether it has settled; ``garble``
    makes it answer nonsense, ``mute`` makes it answer nothing."""

    def __init__(self, weight_kg: float = 0.0) -> None:
        self.weight_kg = weight_kg
        self.tare_kg = 0.0
        self.stable = True
        self.garble = False
        self.mute = False
        self.requests = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None

    def answer(self, request: bytes) -> bytes | None:
        """The reply to one request line (None: no reply)."""
        self.requests += 1
        if self.mute:
            return None
        if self.garble:
            return b"#?@!\r\n"
        cmd = request.strip()
        if cmd == b"W":
            net = self.weight_kg - self.tare_kg
            status = b"ST" if self.stable else b"US"
            return status + b",NT," + f"{net:+9.3f} kg".encode() + b"\r\n"
        if cmd == b"T":
            self.tare_kg = self.weight_kg
            return b"T A\r\n"
        return b"ES\r\n"

    def serve_port(self, path: str, baud: int = 9600) -> SimulatedScale:
        """Answers on a serial port (one end of a pty pair) on a thread."""
        port = serial.Serial(path, baud, timeout=0.05)
        self._spawn(lambda: self._serve_stream(port.readline, port.write, port.close))
        return self

    def serve_tcp(self, port: int = 0) -> int:
        """Answers on a TCP socket on 127.0.0.1 (one client at a time); returns the
        port."""
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", port))
        ls.listen(1)
        ls.settimeout(0.05)
        self._listener = ls

        def accept_loop() -> None:
            while not self._stop.is_set():
                try:
                    conn, _ = ls.accept()
                except (TimeoutError, OSError):
                    continue
                conn.settimeout(0.05)
                f = conn.makefile("rwb", buffering=0)

                def readline(f: Any = f) -> bytes | None:
                    try:
                        # b"" here is the end of the stream: the host hung up.
                        return f.readline() or None
                    except (TimeoutError, OSError):
                        return b""

                def write(b: bytes, f: Any = f) -> None:
                    f.write(b)

                self._serve_stream(readline, write, conn.close)

        self._spawn(accept_loop)
        return int(ls.getsockname()[1])

    def _serve_stream(self, readline: Any, write: Any, close: Any) -> None:
        buf = b""
        try:
            while not self._stop.is_set():
                chunk = readline()
                if chunk is None:
                    return
                if not chunk:
                    continue
                buf += chunk
                if not buf.endswith(b"\n"):
                    continue
                line, buf = buf, b""
                reply = self.answer(line)
                if reply is not None:
                    write(reply)
        except (OSError, serial.SerialException):
            pass
        finally:
            close()

    def _spawn(self, target: Any) -> None:
        t = threading.Thread(target=target, name="simulated-scale", daemon=True)
        t.start()
        self._threads.append(t)

    def close(self) -> None:
        """Stops answering."""
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        for t in self._threads:
            t.join(2)


def main() -> None:
    """Runs the simulated scale until Ctrl-C."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", metavar="PATH", help="answer on this serial port")
    where.add_argument("--tcp", metavar="PORT", type=int, help="answer on 127.0.0.1:PORT")
    ap.add_argument("--weight", type=float, default=12.345, help="weight on the scale, kg")
    args = ap.parse_args()
    sim = SimulatedScale(args.weight)
    if args.pty:
        sim.serve_port(args.pty)
        print(f"simulated scale on {args.pty}")
    else:
        print(f"simulated scale on socket://127.0.0.1:{sim.serve_tcp(args.tcp)}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sim.close()


if __name__ == "__main__":
    main()
