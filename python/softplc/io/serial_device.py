"""Python serial devices: drivers for the instruments no protocol library covers
(scales, barcode readers, lab instruments that speak ASCII lines), written as a small
class on pyserial.

softplc opens the port (a path such as ``/dev/ttyUSB0`` or a pyserial URL such as
``loop://`` or ``socket://host:port``), calls the class on a thread of its own (never
the scan thread), and hands the values to the scan through the same lock-free buffers
as the native drivers, with quality and age. A driver that raises turns its inputs BAD
with the traceback in :meth:`Driver.status`; one whose ``poll`` hangs past twice its
deadline is abandoned; either way the thread is restarted with back-off. The scan is
never held up.

The device class needs no base class; it has up to four methods:

* ``poll(port, deadline) -> Mapping[str, value] | Sequence[value]`` (required): read
  the device and return input values, by variable name or in the order of ``inputs``.
  ``deadline`` is a :func:`time.monotonic` time to be done by.
* ``open(port)`` (optional): called after the port is opened (or reopened).
* ``write(port, outputs)`` (optional): the program's outputs changed; ``outputs`` maps
  each output variable to its value.
* ``close()`` (optional): the port is about to close.

Example:
    >>> import softplc.io as sio
    >>> class Echo:
    ...     def poll(self, port, deadline):
    ...         port.write(b"7\\n")
    ...         return {"demo.value": int(port.readline())}
    >>> d = sio.serial_device(Echo(), port="loop://", inputs=["demo.value"], name="echo")
    >>> d.name, d.status()["health"]
    ('echo', 'waiting')
    >>> d.close()
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import serial  # pyserial

from softplc import _native
from softplc.errors import ConfigError
from softplc.timefmt import parse_duration

__all__ = ["SerialDeviceDriver", "SerialDriverClass", "serial_device"]

_PARITY = {"none": serial.PARITY_NONE, "even": serial.PARITY_EVEN, "odd": serial.PARITY_ODD}


class SerialDriverClass(Protocol):
    """What softplc calls on a device class (only ``poll`` is required)."""

    def poll(self, port: serial.SerialBase, deadline: float) -> Mapping[str, Any] | Sequence[Any]:
        """Reads the device by ``deadline`` (monotonic seconds); returns input values."""
        ...


class _Worker(threading.Thread):
    """One life of the device thread: open, poll until told to stop or until an error."""

    def __init__(self, owner: SerialDeviceDriver) -> None:
        super().__init__(name=f"softplc-pydev-{owner.name}", daemon=True)
        self.owner = owner
        self.cancelled = threading.Event()
        self.busy_since: float | None = None
        self.error: str | None = None
        self.port: serial.SerialBase | None = None
        self.polled_ok = False

    def run(self) -> None:
        o = self.owner
        try:
            self.port = serial.serial_for_url(
                o.port,
                baudrate=o.baud,
                parity=_PARITY[o.parity],
                bytesize=o.data_bits,
                stopbits=o.stop_bits,
                timeout=o.timeout_s,
                write_timeout=o.timeout_s,
            )
            o.link.port_state(o.port, True)
            self._call("open", self.port)
            next_poll = time.monotonic()
            while not self.cancelled.is_set() and o.link.state() == "running":
                outs = o.link.take_outputs()
                if outs is not None and hasattr(o.device, "write"):
                    self._call("write", self.port, dict(outs))
                now = time.monotonic()
                if now >= next_poll:
                    self._poll()
                    next_poll = max(next_poll + o.poll_s, time.monotonic())
                time.sleep(min(max(next_poll - time.monotonic(), 0.0), o.write_check_s))
        except Exception:  # noqa: BLE001 - a user's driver may raise anything: report it
            if not self.cancelled.is_set():
                self.error = traceback.format_exc()
        finally:
            self._close()

    def _call(self, method: str, *args: Any) -> Any:
        f = getattr(self.owner.device, method, None)
        if f is None:
            return None
        self.busy_since = time.monotonic()
        try:
            return f(*args)
        finally:
            self.busy_since = None

    def _poll(self) -> None:
        o = self.owner
        start = time.monotonic()
        deadline = start + o.timeout_s
        values = self._call("poll", self.port, deadline)
        if self.cancelled.is_set():
            return
        late = time.monotonic() - deadline
        if late > 0:
            raise TimeoutError(f"poll returned {late * 1e3:.0f} ms after its deadline")
        o.link.publish(o.order(values))
        self.polled_ok = True
        o.failures = 0

    def _close(self) -> None:
        # A cancelled worker's port is the supervisor's to report (a new worker may
        # have opened it again by now).
        o = self.owner
        if self.port is not None:
            # The port closes anyway; an error here is not the poll's to report.
            with contextlib.suppress(Exception):
                if hasattr(o.device, "close"):
                    o.device.close()
            with contextlib.suppress(OSError, serial.SerialException):
                self.port.close()
        if not self.cancelled.is_set():
            o.link.port_state(o.port, False)


class SerialDeviceDriver:
    """A Python serial device driver (see :func:`serial_device`): an I/O driver for
    :meth:`softplc.Engine.add_driver` whose device I/O runs on a Python thread."""

    def __init__(self, device: Any, native: tuple[Any, Any, Any], **opts: Any) -> None:
        self.device = device
        self._native_driver, self.link, self._monitor = native
        self.name: str = opts["name"]
        self.port: str = opts["port"]
        self.baud: int = opts["baud"]
        self.parity: str = opts["parity"]
        self.data_bits: int = opts["data_bits"]
        self.stop_bits: int = opts["stop_bits"]
        self.inputs: list[str] = opts["inputs"]
        self.poll_s: float = opts["poll_s"]
        self.timeout_s: float = opts["timeout_s"]
        self.write_check_s: float = 0.005
        self.fail_after: int = opts["fail_after"]
        self.reconnect_min_s: float = opts["reconnect_min_s"]
        self.reconnect_max_s: float = opts["reconnect_max_s"]
        self.failures = 0
        self._closed = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"softplc-pydev-{self.name}-sup", daemon=True
        )
        self._supervisor.start()

    # -- what the engine and users see ---------------------------------------------

    def status(self) -> dict[str, Any]:
        """The driver's status: health, port, counters, ``last_error`` (a traceback)."""
        import json

        result: dict[str, Any] = json.loads(self._monitor.status_json())
        return result

    def close(self) -> None:
        """Stops the device thread (the engine stopping does too)."""
        self._closed.set()
        self._supervisor.join(5)

    def __repr__(self) -> str:
        return f"<SerialDeviceDriver {self.name!r} on {self.port!r}>"

    # -- the device thread's helpers ---------------------------------------------------

    def order(self, values: Mapping[str, Any] | Sequence[Any]) -> list[Any]:
        """Poll results as a list in ``inputs`` order (None: not read this time)."""
        if isinstance(values, Mapping):
            unknown = [k for k in values if k not in self.inputs]
            if unknown:
                raise KeyError(
                    f"poll returned {unknown[0]!r}, which is not one of the inputs {self.inputs}"
                )
            return [values.get(n) for n in self.inputs]
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise TypeError(
                f"poll must return a mapping or a sequence of {len(self.inputs)} values, "
                f"got {type(values).__name__}"
            )
        return list(values)

    def _supervise(self) -> None:
        backoff = self.reconnect_min_s
        while not self._closed.is_set():
            state = self.link.state()
            if state == "stopped":
                return
            if state == "waiting":
                self._closed.wait(0.01)
                continue
            worker = _Worker(self)
            worker.start()
            why = self._watch(worker)
            if why is None:
                return
            self.failures += 1
            self.link.fail(why, self.failures >= self.fail_after)
            if worker.polled_ok:
                backoff = self.reconnect_min_s
            self._closed.wait(backoff)
            backoff = min(backoff * 2, self.reconnect_max_s)
            if not self._closed.is_set() and self.link.state() == "running":
                self.link.restarted()

    def _watch(self, worker: _Worker) -> str | None:
        """Waits for the worker to end; returns why it failed (None: a clean stop)."""
        hang_after = 2 * self.timeout_s
        while True:
            worker.join(0.01)
            if not worker.is_alive():
                return worker.error
            if self._closed.is_set() or self.link.state() == "stopped":
                worker.cancelled.set()
                worker.join(self.timeout_s)
                self.link.port_state(self.port, False)
                return None
            since = worker.busy_since
            if since is not None and time.monotonic() - since > hang_after:
                # Python threads cannot be killed: abandon it (daemon) and close its
                # port, which ends most blocking reads.
                worker.cancelled.set()
                if worker.port is not None:
                    with contextlib.suppress(OSError, serial.SerialException):
                        worker.port.close()
                self.link.port_state(self.port, False)
                return (
                    f"the driver did not return within {hang_after:.3g} s "
                    f"(twice its {self.timeout_s:.3g} s deadline); thread abandoned and restarted"
                )


def _seconds(v: str | int, what: str) -> float:
    ns = parse_duration(v, what=what)
    if ns <= 0:
        raise ConfigError(f"{what} must be positive, got {v!r}")
    return ns / 1e9


def serial_device(
    device: Any,
    *,
    port: str,
    inputs: Sequence[str],
    outputs: Sequence[str] = (),
    name: str | None = None,
    baud: int = 9600,
    parity: str = "none",
    data_bits: int = 8,
    stop_bits: int = 1,
    poll: str | int = "100ms",
    timeout: str | int = "1s",
    fail_after: int = 1,
    stale: str | int | None = None,
    reconnect_min: str | int = "100ms",
    reconnect_max: str | int = "5s",
) -> SerialDeviceDriver:
    """A driver that runs ``device`` (see the module docs) on its own thread.

    Args:
        device: the device object (``poll``, and optionally ``open``, ``write``,
            ``close``).
        port: a device path (``/dev/ttyUSB0``) or a pyserial URL (``loop://``,
            ``socket://host:port``, ``rfc2217://...``).
        inputs: the variables ``poll`` fills (input or memory variables).
        outputs: the variables handed to ``write`` when they change.
        name: the driver's name (default: ``pydev-`` and the class name).
        baud: bits per second. parity: ``none``, ``even`` or ``odd``.
        data_bits: 5 to 8. stop_bits: 1 or 2.
        poll: how often ``poll`` is called.
        timeout: ``poll``'s deadline, and the port's read and write timeout.
        fail_after: failed polls in a row after which the inputs turn BAD.
        stale: age beyond which good data reads STALE (default: 2 polls + timeout).
        reconnect_min: first wait before restarting after an error; doubles up to
            ``reconnect_max``.

    Example:
        >>> class Nothing:
        ...     def poll(self, port, deadline):
        ...         return []
        >>> serial_device(Nothing(), port="loop://", inputs=[]).name
        'pydev-Nothing'
    """
    if not callable(getattr(device, "poll", None)):
        raise ConfigError(f"{device!r} has no poll(port, deadline) method")
    if not isinstance(port, str) or not port:
        raise ConfigError(f"port must be a device path or a pyserial URL, got {port!r}")
    if isinstance(inputs, str) or isinstance(outputs, str):
        raise ConfigError("inputs and outputs are lists of variable names")
    ins, outs = [str(n) for n in inputs], [str(n) for n in outputs]
    if len(set(ins)) != len(ins):
        raise ConfigError(f"inputs name a variable twice: {ins}")
    if parity not in _PARITY:
        raise ConfigError(f"parity must be one of {sorted(_PARITY)}, got {parity!r}")
    if baud not in serial.SerialBase.BAUDRATES and not (isinstance(baud, int) and baud > 0):
        raise ConfigError(f"baud must be a positive rate, got {baud!r}")
    if data_bits not in (5, 6, 7, 8):
        raise ConfigError(f"data_bits must be 5..8, got {data_bits!r}")
    if stop_bits not in (1, 2):
        raise ConfigError(f"stop_bits must be 1 or 2, got {stop_bits!r}")
    if not isinstance(fail_after, int) or fail_after < 1:
        raise ConfigError(f"fail_after must be a positive integer, got {fail_after!r}")
    poll_s = _seconds(poll, "poll")
    timeout_s = _seconds(timeout, "timeout")
    stale_s = 2 * poll_s + timeout_s if stale is None else _seconds(stale, "stale")
    rmin, rmax = _seconds(reconnect_min, "reconnect_min"), _seconds(reconnect_max, "reconnect_max")
    if rmax < rmin:
        raise ConfigError("reconnect_max must not be less than reconnect_min")
    name = name or f"pydev-{type(device).__name__}"
    native = _native.io_python_device(name, ins, outs, stale_ms=max(1, round(stale_s * 1e3)))
    return SerialDeviceDriver(
        device,
        native,
        name=name,
        port=port,
        baud=baud,
        parity=parity,
        data_bits=data_bits,
        stop_bits=stop_bits,
        inputs=ins,
        poll_s=poll_s,
        timeout_s=timeout_s,
        fail_after=fail_after,
        reconnect_min_s=rmin,
        reconnect_max_s=rmax,
    )
