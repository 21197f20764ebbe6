"""Fixtures for the fieldbus tests: pymodbus devices and real-clock engines."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import softplc
import softplc.io as sio
from modbus_peers import Device
from softplc import Engine


@pytest.fixture
def device() -> Iterator[Device]:
    """A pymodbus device answering unit ids 1 and 2 on a free loopback port."""
    d = Device(unit_ids=(1, 2)).start()
    yield d
    d.close()


def wait_until(cond: Callable[[], Any], timeout: float = 10.0, step: float = 0.01) -> bool:
    """Polls ``cond`` until it is true or ``timeout`` seconds passed. The timeout only
    bounds a failure (a true condition returns at once): generous, because a loaded
    machine delays the I/O threads, never the outcome."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


Var = tuple[str, str, Any, str]


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., tuple[Engine, list[sio.Driver]]]]:
    """Builds and starts a real-clock engine with variables ``(name, area, type,
    address)``, a 5 ms task without programs, and the drivers of ``toml`` (text, written
    to a file) and/or a default-map ``server``."""
    made: list[Engine] = []

    def make(
        variables: list[Var],
        toml: str | None = None,
        *,
        server: str | None = None,
        cycle: str = "5ms",
        start: bool = True,
    ) -> tuple[Engine, list[sio.Driver]]:
        e = Engine(clock="real", cycle=cycle)
        made.append(e)
        for name, area, ty, addr in variables:
            e.declare(name, area, ty, addr)
        e.add_task("main", period=cycle)
        path = None
        if toml is not None:
            path = tmp_path / f"io{len(made)}.toml"
            path.write_text(toml)
        drivers = sio.attach(e, io=path, modbus_server=server)
        if start:
            e.start()
        return e, drivers

    yield make
    for e in made:
        e.close()


__all__ = ["softplc", "wait_until"]
