"""Shared fixtures. Tests run the engine in virtual time unless they test real time."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A shell starts background jobs with SIGINT ignored, and children inherit that: the
# runtimes these tests stop with SIGINT (Ctrl-C) would then never see it. A Python
# handler here makes every child start with the default disposition again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
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


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Kills what a test started and left running (a ``communicate`` that timed out,
    a failed assertion before the clean-up), so that no process or pipe leaks into the
    tests after it."""
    import subprocess

    started: list[subprocess.Popen] = []
    original = subprocess.Popen.__init__

    def tracking(self: subprocess.Popen, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        started.append(self)

    monkeypatch.setattr(subprocess.Popen, "__init__", tracking)
    yield
    for p in started:
        if p.poll() is None:
            p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
            p.communicate(timeout=10)
