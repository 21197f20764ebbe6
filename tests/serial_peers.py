"""Serial lines without hardware: socat pseudo-terminal pairs and a relay that
misbehaves on purpose.

* :class:`PtyPair`: ``socat`` joins two pseudo-terminals; each end is opened by one
  program. :meth:`PtyPair.unplug` kills socat (both ends fail, as when a USB adapter is
  pulled) and :meth:`PtyPair.plug` starts it again on the same paths.
* :class:`Relay`: sits between two pairs (master on one, slave on the other) and
  forwards frames, optionally split into pieces with gaps, with CRCs corrupted, with
  noise bursts in between, or with some units' answers dropped (silent neighbours).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

import serial  # pyserial


def socat_available() -> bool:
    """True when socat is installed (``make setup`` installs it)."""
    return shutil.which("socat") is not None


class PtyPair:
    """Two connected pseudo-terminals at ``DIR/NAME0`` and ``DIR/NAME1``."""

    def __init__(self, directory: Path, name: str = "ttyV") -> None:
        self.a = str(directory / f"{name}0")
        self.b = str(directory / f"{name}1")
        self._proc: subprocess.Popen[bytes] | None = None

    def plug(self) -> Self:
        """Starts socat and waits for both links."""
        for p in (self.a, self.b):
            if os.path.lexists(p):
                os.unlink(p)
        self._proc = subprocess.Popen(
            [
                "socat",
                f"pty,raw,echo=0,link={self.a}",
                f"pty,raw,echo=0,link={self.b}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + 5
        while not (os.path.exists(self.a) and os.path.exists(self.b)):
            if time.monotonic() > end:
                raise OSError("socat did not create the pseudo-terminals")
            time.sleep(0.01)
        return self

    @property
    def pid(self) -> int | None:
        """socat's process id while plugged."""
        return None if self._proc is None else self._proc.pid

    def unplug(self) -> None:
        """Kills socat: both ends fail and the paths vanish."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
            self._proc.wait(5)
            self._proc = None
        end = time.monotonic() + 5
        while os.path.lexists(self.a) and time.monotonic() < end:
            time.sleep(0.01)

    def close(self) -> None:
        """Same as :meth:`unplug`."""
        self.unplug()


def crc16(data: bytes) -> int:
    """The Modbus CRC of ``data``."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    """A whole RTU frame: unit, PDU, CRC (low byte first)."""
    body = bytes([unit]) + pdu
    return body + crc16(body).to_bytes(2, "little")


Transform = Callable[[bytes], list[bytes | float]]
"""Turns one frame into what the relay sends: byte pieces and pauses (seconds)."""


class Relay:
    """Forwards between the master's end (``master_side``) and the slaves' end
    (``slave_side``) of two pty pairs. Each direction reads a frame (bytes until the
    line is quiet for ``gap`` seconds) and sends what ``to_slave`` / ``to_master`` make
    of it."""

    def __init__(
        self,
        master_side: str,
        slave_side: str,
        *,
        gap: float = 0.003,
    ) -> None:
        self._m = serial.Serial(master_side, 115200, timeout=0)
        self._s = serial.Serial(slave_side, 115200, timeout=0)
        self.gap = gap
        self.to_slave: Transform = lambda f: [f]
        self.to_master: Transform = lambda f: [f]
        self.frames = {"to_slave": 0, "to_master": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtu-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ends = {
            self._m.fileno(): (self._m, self._s, "to_slave"),
            self._s.fileno(): (self._s, self._m, "to_master"),
        }
        while not self._stop.is_set():
            ready, _, _ = select.select(list(ends), [], [], 0.05)
            for fd in ready:
                src, dst, way = ends[fd]
                frame = self._read_frame(src)
                if not frame:
                    continue
                self.frames[way] += 1
                t = self.to_slave if way == "to_slave" else self.to_master
                for piece in t(frame):
                    if isinstance(piece, float):
                        time.sleep(piece)
                    else:
                        dst.write(piece)
                        dst.flush()

    def _read_frame(self, src: serial.Serial) -> bytes:
        buf = bytearray()
        last = time.monotonic()
        while time.monotonic() - last < self.gap:
            chunk = src.read(512)
            if chunk:
                buf += chunk
                last = time.monotonic()
            else:
                time.sleep(0.0002)
        return bytes(buf)

    def close(self) -> None:
        """Stops forwarding and closes both ends."""
        self._stop.set()
        self._thread.join(5)
        self._m.close()
        self._s.close()


def split(pieces: int, pause: float) -> Transform:
    """Sends a frame in ``pieces`` parts with ``pause`` seconds between them."""

    def t(f: bytes) -> list[bytes | float]:
        step = max(1, len(f) // pieces)
        out: list[bytes | float] = []
        for i in range(0, len(f), step):
            if out:
                out.append(pause)
            out.append(f[i : i + step])
        return out

    return t


def corrupt(f: bytes) -> bytes:
    """The frame with its last CRC byte flipped."""
    return f[:-1] + bytes([f[-1] ^ 0x5A])
