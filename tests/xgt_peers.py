"""The one place that touches pyXGTClient's API (pinned: pyXGTClient==0.0.1).

pyXGTClient is a small XGT (LS Electric FEnet, TCP 2004) client written by others: an
independent peer for softplc's XGT codec, client and server, as pymodbus is for Modbus.
Its frames follow the reference layout (company ID ``LSIS-XGT``, CPU Info 0xA0, source
0x33, BCC = byte sum, names grouped before data in individual writes); the test
``tests/unit/io/test_xgt_peer_frames.py`` holds them to it byte for byte.

Its quirks, smoothed over here so tests read plainly:

* Errors come three ways: ``None``/``False`` results with a negative ``last_error`` for
  network errors, ``ValueError("Nak Error")`` for a negative answer (without LS's error
  code: the client does not keep the frame), and ``ValueError`` for an answer with
  another invoke ID or command. :class:`Client` raises :class:`XgtNakReply`,
  :class:`XgtProtocolError` or :class:`ConnectionError` instead.
* Its invoke ID stays 0: the counter is incremented after the ``return`` of every
  successful request. A server must not rely on distinct invoke IDs from this peer.
* It reads an answer with one ``recv(1518)``: a server must write each answer in one
  piece (any answer fits: the largest frame is 1,448 bytes).
* Values are unsigned little-endian integers (``int.to_bytes``): negative values raise
  ``OverflowError``.
* ``pyXGTClient.client`` imports ``ast.Bytes``, deprecated since Python 3.12 (removed in
  3.14): the import is done with that warning silenced.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Self

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pyXGTClient
    from pyXGTClient.client import XGTClient

PINNED = "0.0.1"
if pyXGTClient.__version__ != PINNED:  # pragma: no cover - a reminder, not a failure mode
    raise ImportError(
        f"tests/xgt_peers.py is written for pyXGTClient {PINNED}, found {pyXGTClient.__version__}"
    )


class XgtNakReply(Exception):
    """The server answered with a negative answer (pyXGTClient does not give the code)."""


class XgtProtocolError(Exception):
    """The answer did not match the request (invoke ID or command)."""


class Client:
    """A pyXGTClient connection to an XGT server on ``host:port``.

    Args:
        host: server address.
        port: TCP port (2004 on a real PLC).
        timeout: socket timeout in seconds.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 2.0) -> None:
        self._c = XGTClient(host=host, port=port, timeout=timeout, auto_open=False)
        if not self._c.open():
            raise ConnectionError(f"cannot connect to {host}:{port}")

    def _call(self, what: str, f: Callable[..., Any], *args: object) -> Any:
        try:
            result = f(*args)
        except ValueError as e:
            if str(e) == "Nak Error":
                raise XgtNakReply(f"{what}: negative answer") from None
            if str(e) in ("InvokedID Error", "Received Cmmand Not Match", "BlockCount Error"):
                raise XgtProtocolError(f"{what}: {e}") from None
            raise
        if result is None or result is False:
            raise ConnectionError(f"{what}: {self._c.last_error_as_txt} ({self._c.last_error})")
        return result

    def read(self, names: Sequence[str]) -> list[int]:
        """Individual read of 1 to 16 direct variables of one size (``%MW0``)."""
        return list(self._call(f"read {list(names)}", self._c.readData, list(names)))

    def read_bytes(self, name: str, count: int) -> bytes:
        """Continuous read of ``count`` bytes from a byte name (``%MB0``)."""
        values = self._call(
            f"read {count} bytes at {name}", self._c.readContinuousData, name, count
        )
        return bytes(values)

    def write(self, names: Sequence[str], values: Sequence[int]) -> None:
        """Individual write of 1 to 16 values to direct variables of one size."""
        self._call(f"write {list(names)}", self._c.writeData, list(names), list(values))

    def write_bytes(self, name: str, data: bytes) -> None:
        """Continuous write of bytes from a byte name."""
        self._call(
            f"write {len(data)} bytes at {name}", self._c.writeContinuousData, name, list(data)
        )

    def close(self) -> None:
        """Closes the connection."""
        self._c.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
