"""Shared fixtures. Tests run the engine in virtual time unless they test real time."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"


def thread_count() -> int:
    """OS threads of this process (catches native threads Python does not know)."""
    return len(os.listdir("/proc/self/task"))


@pytest.fixture
def engines() -> Iterator[list]:
    """Collects engines made in a test and closes them afterwards."""
    made: list = []
    yield made
    for e in made:
        e.close()


@pytest.fixture
def softplc_cli() -> list[str]:
    """The command that runs the CLI in a subprocess."""
    return [sys.executable, "-m", "softplc.cli"]
