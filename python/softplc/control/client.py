"""A Python client for a running runtime's control channel.

Example::

    from softplc.control import Client

    with Client("tank") as plc:                 # the runtime started with --name tank
        plc.status()["state"]                   # 'RUN'
        plc.read("tank.level", "tank.pump")     # {'tank.level': 42.5, 'tank.pump': True}
        plc.write(**{"tank.low_limit": 30.0})   # applied at the start of the next cycle
        plc.force("tank.pump", False)
        plc.unforce()
        for update in plc.subscribe(["tank.*"], interval="100ms"):
            ...                                 # {'cycle', 't_ns', 'values', ...}

The same verbs as :class:`softplc.Engine` where they exist (``read``, ``write``,
``force``, ``unforce``, ``stop``, ``run``, ``clear_fault``, ``status``); errors the
runtime reports are raised as :class:`softplc.ControlError` (or
:class:`~softplc.InvalidValue` for a value it refused).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any, Self

from softplc.control import paths
from softplc.control.protocol import ProtocolError, encode, recv_sync
from softplc.errors import ControlError, InvalidValue
from softplc.timefmt import parse_duration

__all__ = ["Client"]


class Client:
    """A connection to a runtime.

    Args:
        name: the runtime's name (its UNIX socket in the runtime directory), or
            ``HOST:PORT`` for a runtime serving TCP (then give ``token``).
        token: the TCP token (``<name>.token`` beside the runtime's socket).
        timeout: seconds to wait for an answer.
    """

    def __init__(self, name: str, *, token: str | None = None, timeout: float = 5.0) -> None:
        self._ids = itertools.count(1)
        self._pending: list[dict[str, Any]] = []
        if ":" in name and not name.startswith("/"):
            host, _, port = name.rpartition(":")
            try:
                self._sock = socket.create_connection((host.strip("[]"), int(port)), timeout)
            except (OSError, ValueError) as e:
                raise ControlError(f"cannot connect to {name}: {e}") from None
            try:
                if token is None:
                    raise ControlError(f"{name}: a TCP control channel needs the runtime's token")
                self._call("hello", token=token)
            except ControlError:
                self._sock.close()
                raise
        else:
            path = Path(name) if name.startswith("/") else paths.socket_path(name)
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock.settimeout(timeout)
            try:
                self._sock.connect(str(path))
            except FileNotFoundError:
                self._sock.close()
                raise ControlError(
                    f"no runtime named {name!r} is running (no socket {path}); "
                    "`softplc ps` lists the running ones"
                ) from None
            except OSError as e:
                self._sock.close()
                raise ControlError(f"cannot connect to runtime {name!r} at {path}: {e}") from None

    def close(self) -> None:
        """Closes the connection."""
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -------------------------------------------------------------------

    def _call(self, op: str, **args: Any) -> Any:
        rid = next(self._ids)
        try:
            self._sock.sendall(encode({"id": rid, "op": op, **args}))
            while True:
                msg = recv_sync(self._sock)
                if "sub" in msg and "id" not in msg:
                    self._pending.append(msg)  # an update that arrived first
                    continue
                break
        except (OSError, ProtocolError) as e:
            raise ControlError(f"control channel: {e}") from None
        if msg.get("ok"):
            return msg.get("result")
        err = msg.get("error") or {}
        cls = InvalidValue if err.get("type") == "value" else ControlError
        raise cls(str(err.get("message", "request refused")))

    def status(self) -> dict[str, Any]:
        """The runtime's status (state, fault, tasks, drivers, name, pid, program)."""
        result: dict[str, Any] = self._call("status")
        return result

    def variables(self) -> list[dict[str, Any]]:
        """Every variable with its address, type, range and ``writable`` flag."""
        result: list[dict[str, Any]] = self._call("variables")
        return result

    def read(self, *names: str) -> dict[str, Any]:
        """Values of ``names`` from one cycle."""
        result: dict[str, Any] = self._call("read", names=list(names))["values"]
        return result

    def sample(self, *names: str) -> dict[str, Any]:
        """Values, quality, age and forced flags of ``names`` from one cycle."""
        result: dict[str, Any] = self._call("read", names=list(names))
        return result

    def write(self, **values: Any) -> None:
        """Writes values once (all checked first; none applied if one is refused)."""
        self._call("write", values=values)

    def force(self, name: str, value: Any) -> None:
        """Forces a variable until :meth:`unforce`."""
        self._call("force", values={name: value})

    def unforce(self, *names: str) -> None:
        """Releases forces (all with no name)."""
        self._call("unforce", names=list(names) if names else None)

    def stop(self) -> None:
        """Enters STOP (outputs safe)."""
        self._call("stop")

    def run(self) -> None:
        """Enters RUN from STOP."""
        self._call("run")

    def clear_fault(self) -> None:
        """Leaves FAULT for STOP."""
        self._call("clear_fault")

    def events(self, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Engine events since a sequence number, and the next number to ask for."""
        r = self._call("events", since=since)
        return list(r["events"]), int(r["next"])

    def start_trace(self, path: str, *, signals: Sequence[str] | None = None) -> str:
        """Starts a trace file in the runtime; returns its absolute path."""
        args: dict[str, Any] = {"path": path}
        if signals is not None:
            args["signals"] = list(signals)
        result: str = self._call("trace_start", **args)["path"]
        return result

    def stop_trace(self) -> dict[str, Any]:
        """Stops the runtime's trace; returns its counters."""
        result: dict[str, Any] = self._call("trace_stop")
        return result

    def load(
        self, path: str | None = None, *, dry_run: bool = False, rollback: bool = False
    ) -> dict[str, Any]:
        """Online change: loads a changed program file (see :mod:`softplc.control.online`)."""
        result: dict[str, Any] = self._call(
            "load", path=None if path is None else str(Path(path).resolve()), dry_run=dry_run,
            rollback=rollback,
        )  # fmt: skip
        return result

    def subscribe(
        self, patterns: Sequence[str], *, interval: str | int = "100ms"
    ) -> Generator[dict[str, Any], None, None]:
        """Subscribes to the variables matching glob ``patterns`` and yields an update
        (values from one cycle) every ``interval`` until the iterator is closed."""
        ms = max(1, parse_duration(interval, what="interval") // 1_000_000)
        r = self._call("subscribe", patterns=list(patterns), interval_ms=ms)
        sid = r["sub"]
        try:
            while True:
                if self._pending:
                    msg = self._pending.pop(0)
                else:
                    try:
                        msg = recv_sync(self._sock)
                    except TimeoutError:
                        continue
                    except (OSError, ProtocolError) as e:
                        raise ControlError(f"control channel: {e}") from None
                if msg.get("sub") == sid:
                    yield msg
        finally:
            with contextlib.suppress(ControlError):
                self._call("unsubscribe", sub=sid)
