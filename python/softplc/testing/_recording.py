"""A recorded run as columns by variable name: one trace file, or the successive trace
files (segments) a test bench recorded.

A bench records into a trace file while it runs; reading the run (for a temporal
assertion) closes that file, and the next run starts another one, so a bench's
recording may be several files. :class:`Recording` puts them end to end: cycle
numbers and times continue from one file to the next.

Example:
    >>> import os, tempfile, numpy as np, softplc.trace as st
    >>> p = os.path.join(tempfile.mkdtemp(), "r.trace")
    >>> _ = st.record_arrays(p, {"tank.pump": ("BOOL", [0, 1, 1])}, timing=False)
    >>> rec = Recording.load(p)
    >>> rec["pump"].tolist(), rec.t.tolist()
    ([False, True, True], [0.0, 0.001, 0.002])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from softplc import trace as st
from softplc._names import NameIndex, NameLookupError
from softplc.testing._errors import UnknownName

__all__ = ["Recording"]


class Recording:
    """Columns of a recorded run, by signal name.

    Names are looked up as everywhere in softplc: full name, a unique last part, or a
    direct address (``%QX0.0``); an unknown name raises :class:`UnknownName` with the
    closest names.

    Args:
        traces: the loaded trace files, in time order, with the same signals.
    """

    def __init__(self, traces: Sequence[st.Trace]) -> None:
        if not traces:
            raise UnknownName("a recording needs at least one trace")
        first = traces[0].names
        for t in traces[1:]:
            if t.names != first:
                raise UnknownName(
                    f"{t.path}: its signals differ from those of {traces[0].path}; the "
                    "segments of one recording record the same signals"
                )
        self.traces = list(traces)
        self.signals = traces[0].signals
        self.index = NameIndex([s.name for s in self.signals], what="signal")
        self._by_address = {
            s.address.upper(): s.name for s in self.signals if s.address is not None
        }
        self._types = {s.name: s.type for s in self.signals}
        self._cols: dict[str, np.ndarray] = {}
        self._cycle: np.ndarray | None = None
        self._t_ns: np.ndarray | None = None

    @classmethod
    def load(cls, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> Recording:
        """Loads one trace file, or several in time order."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        return cls([st.load(p) for p in paths])

    @property
    def paths(self) -> list[str]:
        """The trace files."""
        return [t.path for t in self.traces]

    @property
    def names(self) -> list[str]:
        """Signal names in header order."""
        return list(self.index.names)

    @property
    def rows(self) -> int:
        """Rows (sampled cycles) in all segments."""
        return sum(t.rows for t in self.traces)

    def __len__(self) -> int:
        return self.rows

    def _concat(self, parts: list[np.ndarray]) -> np.ndarray:
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def cycle(self) -> np.ndarray:
        """Cycle number of every row (uint64)."""
        if self._cycle is None:
            self._cycle = self._concat([t.cycle for t in self.traces])
        return self._cycle

    @property
    def t_ns(self) -> np.ndarray:
        """Engine time of every row (int64 ns)."""
        if self._t_ns is None:
            self._t_ns = self._concat([t.t_ns for t in self.traces]).astype(np.int64)
        return self._t_ns

    @property
    def t(self) -> np.ndarray:
        """Seconds from the first row (float64)."""
        t = self.t_ns
        return (t - t[0]).astype(np.float64) / 1e9 if len(t) else np.zeros(0)

    def resolve(self, name: str) -> str:
        """The full signal name ``name`` stands for."""
        if name in self.index:
            return name
        by_address = self._by_address.get(name.upper())
        if by_address is not None:
            return by_address
        try:
            return self.index.resolve(name)
        except NameLookupError as e:
            where = (
                self.paths[0]
                if len(self.paths) == 1
                else f"{self.paths[0]} (+{len(self.paths) - 1})"
            )
            raise UnknownName(f"{e} in {where}") from None

    def type_of(self, name: str) -> str:
        """The IEC type of a signal."""
        return self._types[self.resolve(name)]

    def column(self, name: str) -> np.ndarray:
        """The values of one signal in every row."""
        full = self.resolve(name)
        col = self._cols.get(full)
        if col is None:
            col = self._concat([t[full] for t in self.traces])
            self._cols[full] = col
        return col

    def __getitem__(self, name: str) -> np.ndarray:
        return self.column(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.resolve(name)
        except UnknownName:
            return False
        return True

    def close(self) -> None:
        """Releases the files (arrays already taken stay valid as copies are not
        needed: the mappings close once no array uses them)."""
        self._cols.clear()
        for t in self.traces:
            t.close()

    def __repr__(self) -> str:
        return (
            f"<Recording {len(self.signals)} signals, {self.rows} rows, {len(self.traces)} file(s)>"
        )
