"""Which test the benches made now belong to, so that the pytest plugin can keep the
traces of a failing test.

The plugin opens a :class:`Scope` before each test and closes it after; a bench made
while a scope is open records its trace into the scope's folder and registers there.
Outside pytest there is no scope and a bench keeps its trace in a temporary folder of
its own. This module imports nothing heavy: the plugin calls it for every test.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Scope", "begin", "current", "end", "safe_name"]

#: Traces of closed benches a scope keeps for a failure report. A Hypothesis test makes
#: one bench per example and replays the failing (shrunk) example last, so the last few
#: are the ones worth keeping; older ones are deleted as the test goes.
KEEP_CLOSED = 3


class _Recorded(Protocol):
    """What a scope needs of a bench."""

    @property
    def trace_paths(self) -> list[str]: ...

    @property
    def kept(self) -> bool: ...

    def stop_recording(self) -> None: ...


def safe_name(text: str, *, limit: int = 120) -> str:
    """A test id as a file name.

    Example:
        >>> safe_name("tests/unit/x.py::test_a[mode=compiled]")
        'tests_unit_x.py_test_a_mode_compiled'
    """
    name = re.sub(r"[^\w.-]+", "_", text).strip("_.") or "test"
    if len(name) > limit:
        import hashlib

        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        name = f"{name[: limit - 11]}-{digest}"
    return name


@dataclass
class Scope:
    """The benches of one test and where their traces go.

    Attributes:
        test_id: the test's node id.
        root: folder under which the scope makes its own (``root/<safe test id>``);
            by default a temporary folder of the session.
    """

    test_id: str
    root: Path | None = None
    open: list[Any] = field(default_factory=list)
    closed: deque[list[str]] = field(default_factory=deque)
    kept: list[str] = field(default_factory=list)
    failed: bool = False
    kept_paths: list[str] | None = None
    _directory: Path | None = None
    _count: int = 0

    def directory(self) -> Path:
        """The scope's trace folder, made on first use."""
        if self._directory is None:
            base = self.root if self.root is not None else session_root()
            self._directory = base / safe_name(self.test_id)
            if self._directory.exists():  # a rerun of the same test in this session
                shutil.rmtree(self._directory, ignore_errors=True)
            self._directory.mkdir(parents=True)
        return self._directory

    def bench_name(self, stem: str) -> str:
        """A name for the next bench's trace files (``tank-1``, ``tank-2``, ...)."""
        self._count += 1
        return f"{safe_name(stem, limit=40)}-{self._count}"

    def add(self, bench: _Recorded) -> None:
        """Registers a bench made in this test."""
        self.open.append(bench)

    def closed_bench(self, bench: _Recorded) -> None:
        """A bench of this scope closed: keep its traces among the last few."""
        if bench in self.open:
            self.open.remove(bench)
        paths = list(bench.trace_paths)
        if bench.kept:
            # An assertion on this bench failed, or the test asked: its traces stay
            # whatever happens.
            self.kept.extend(paths)
            return
        self.closed.append(paths)
        while len(self.closed) > KEEP_CLOSED:
            for p in self.closed.popleft():
                Path(p).unlink(missing_ok=True)

    def trace_paths(self) -> list[str]:
        """The traces of the test so far, finished (recordings of open benches stop)."""
        out: list[str] = []
        for b in list(self.open):
            b.stop_recording()
            out.extend(b.trace_paths)
        for paths in self.closed:
            out.extend(paths)
        out.extend(self.kept)
        return [p for p in dict.fromkeys(out) if Path(p).exists()]

    def discard(self) -> None:
        """Deletes the scope's traces (a passing test), except those a bench was asked
        to keep (``bench.keep_traces()``); the folder goes when nothing is left."""
        if self._directory is None:
            return
        keep = set(self.kept)
        for b in self.open:
            if b.kept:
                keep.update(b.trace_paths)
        if not keep:
            shutil.rmtree(self._directory, ignore_errors=True)
            return
        for f in self._directory.iterdir():
            if str(f) not in keep:
                f.unlink(missing_ok=True)


_current: Scope | None = None
_session_root: Path | None = None


def session_root() -> Path:
    """A temporary folder for the traces of this test session, made on first use."""
    global _session_root
    if _session_root is None:
        _session_root = Path(tempfile.mkdtemp(prefix="softplc-traces-"))
    return _session_root


def begin(test_id: str, root: Path | None = None) -> Scope:
    """Opens the scope of a test (closing any left open); its traces go under ``root``
    (default: a temporary folder of the session)."""
    global _current
    _current = Scope(test_id, root)
    return _current


def current() -> Scope | None:
    """The open scope, or None outside a test."""
    return _current


def end() -> None:
    """Closes the open scope."""
    global _current
    _current = None


def end_session() -> None:
    """Removes the session folder when no kept trace is left in it."""
    global _session_root
    if _session_root is not None:
        with contextlib.suppress(OSError):
            _session_root.rmdir()  # only when empty
        _session_root = None
