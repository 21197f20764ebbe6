"""Comparing two traces: per signal, the first row where they differ."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from softplc.trace._analysis import json_value, text_value
from softplc.trace._errors import TraceError
from softplc.trace._reader import Signal, Trace, load

__all__ = ["DiffStatus", "FirstDifference", "SignalDiff", "TraceDiff", "diff"]


class DiffStatus(StrEnum):
    """How one signal compares between trace A and trace B."""

    #: Equal (within the tolerance) in every row both traces hold.
    SAME = "same"
    #: Different in at least one row.
    DIFFERS = "differs"
    #: Recorded with another IEC type in B than in A: not compared.
    TYPE_DIFFERS = "type_differs"
    #: Only in B.
    MISSING_IN_A = "missing_in_a"
    #: Only in A.
    MISSING_IN_B = "missing_in_b"


@dataclass(frozen=True)
class FirstDifference:
    """The first row where a signal differs: its cycle, its time (seconds from A's first
    row) and both values (as JSON values and as text)."""

    cycle: int
    t: float
    a: Any
    b: Any
    a_text: str
    b_text: str


@dataclass(frozen=True)
class SignalDiff:
    """The comparison of one signal."""

    name: str
    status: DiffStatus
    #: Rows that differ (for ``DIFFERS``).
    rows_differing: int = 0
    #: The first of them (for ``DIFFERS``).
    first: FirstDifference | None = None
    #: The two types (for ``TYPE_DIFFERS``).
    type_a: str | None = None
    type_b: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """As ``softplc trace diff --json`` prints it."""
        out: dict[str, Any] = {"name": self.name, "status": str(self.status)}
        if self.status is DiffStatus.DIFFERS and self.first is not None:
            out["rows_differing"] = self.rows_differing
            out["first"] = dict(vars(self.first))
        elif self.status is DiffStatus.TYPE_DIFFERS:
            out.update(type_a=self.type_a, type_b=self.type_b)
        return out


@dataclass(frozen=True)
class TraceDiff:
    """The result of :func:`diff`. True in a boolean context when the traces are the
    same."""

    #: Every compared signal is the same and both traces hold the same cycles.
    same: bool
    a: str
    b: str
    tol: float
    #: Rows in A, in B, and cycles both hold.
    rows_a: int
    rows_b: int
    rows_common: int
    signals: list[SignalDiff] = field(default_factory=list)

    @property
    def differences(self) -> list[SignalDiff]:
        """The signals that are not the same."""
        return [s for s in self.signals if s.status is not DiffStatus.SAME]

    def __bool__(self) -> bool:
        return self.same

    def as_dict(self) -> dict[str, Any]:
        """As ``softplc trace diff --json`` prints it."""
        return {
            "same": self.same,
            "a": self.a,
            "b": self.b,
            "tol": self.tol,
            "rows": {"a": self.rows_a, "b": self.rows_b, "common": self.rows_common},
            "signals": [s.as_dict() for s in self.signals],
        }


def _within(sig: Signal, a: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    """Row-wise equality within ``tol`` (absolute, in the signal's unit; TIME in ns)."""
    if sig.is_float:
        fa, fb = a.astype(np.float64), b.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            same = np.abs(fa - fb) <= tol
        both_nan = np.isnan(fa) & np.isnan(fb)
        same_inf = np.isinf(fa) & (fa == fb)
        result: np.ndarray = same | both_nan | same_inf
        return result
    if tol == 0 or sig.is_bool:
        eq: np.ndarray = a == b
        return eq
    # Integers: the distance |a - b| exactly, as uint64 (two's complement subtraction of
    # the larger minus the smaller never wraps past 2**64), against the whole part of tol.
    whole = math.floor(tol)
    if whole >= (1 << 64) - 1:
        return np.ones(len(a), dtype=bool)
    wide = np.int64 if a.dtype.kind == "i" else np.uint64
    wa, wb = a.astype(wide), b.astype(wide)
    ua, ub = wa.view(np.uint64), wb.view(np.uint64)
    dist = np.where(wa >= wb, ua - ub, ub - ua)
    close: np.ndarray = dist <= np.uint64(whole)
    return close


def _opened(t: Trace | str | os.PathLike[str], verify: bool) -> tuple[Trace, bool]:
    if isinstance(t, Trace):
        return t, False
    return load(t, verify=verify), True


def diff(
    a: Trace | str | os.PathLike[str],
    b: Trace | str | os.PathLike[str],
    *,
    signals: str | Iterable[str] | None = None,
    tol: float = 0.0,
    verify: bool = True,
) -> TraceDiff:
    """Compares two traces row by row on the cycles both hold.

    Per signal: the first divergence (cycle, time, both values) and how many rows
    differ. Timing signals are compared only when selected (they vary from run to run).
    The traces differ when a signal differs, is missing from one of them, has another
    type, or when the two do not hold the same cycles.

    Args:
        a: the reference trace (a golden trace), loaded or a path.
        b: the trace to check, loaded or a path.
        signals: names or globs to compare (``"tank.*"``, ``["a", "b"]``); by default
            every variable of either trace.
        tol: absolute tolerance, in each signal's unit (TIME: nanoseconds); 0 compares
            exactly (floats bit for bit, except that NaN equals NaN).
        verify: for paths, as :func:`load`.

    Returns:
        A :class:`TraceDiff`; true when the traces are the same.

    Raises:
        TraceError: a file cannot be read, ``tol`` is negative or not finite, or no
            selected signal is in either trace.

    Example:
        >>> import os, tempfile, softplc.trace as st
        >>> d = tempfile.mkdtemp()
        >>> golden, new = os.path.join(d, "golden.trace"), os.path.join(d, "new.trace")
        >>> _ = st.record_arrays(golden, {"x": ("INT", [1, 2, 3, 4])})
        >>> _ = st.record_arrays(new, {"x": ("INT", [1, 2, 5, 4])})
        >>> result = st.diff(golden, new)
        >>> result.same, result.differences[0].first.cycle, result.differences[0].first.b
        (False, 2, 5)
        >>> bool(st.diff(golden, new, tol=2))
        True
    """
    if isinstance(tol, bool) or not isinstance(tol, (int, float)):
        raise TraceError(f"tol must be a number (got {tol!r})")
    if tol < 0 or not math.isfinite(tol):
        raise TraceError(f"tol must be a finite number >= 0 (got {tol})")
    ta, close_a = _opened(a, verify)
    try:
        tb, close_b = _opened(b, verify)
        try:
            return _compare(ta, tb, signals, float(tol))
        finally:
            if close_b:
                tb.close()
    finally:
        if close_a:
            ta.close()


def _compare(a: Trace, b: Trace, patterns: str | Iterable[str] | None, tol: float) -> TraceDiff:
    names: list[str] = []
    if patterns is not None and not isinstance(patterns, str):
        patterns = list(patterns)
    if patterns:
        for tr in (a, b):
            try:
                sel = tr.select(patterns)
            except TraceError:
                continue
            names.extend(s.name for s in sel if s.name not in names)
        if not names:
            raise TraceError("the signals selected are in neither trace")
    else:
        seen: set[str] = set()
        for tr in (a, b):
            for s in tr.signals:
                if s.kind != "timing" and s.name not in seen:
                    seen.add(s.name)
                    names.append(s.name)
    ca, cb = a.cycle, b.cycle
    # Cycles rise row by row in a trace; a file whose cycles repeat is still compared
    # (on the first row of each cycle) rather than trusted to be unique.
    unique = bool(np.all(ca[1:] > ca[:-1]) and np.all(cb[1:] > cb[:-1]))
    common, ia, ib = np.intersect1d(ca, cb, assume_unique=unique, return_indices=True)
    rows_same = len(common) == len(ca) == len(cb)
    result: list[SignalDiff] = []
    t_rel = (a.t_ns[ia] - np.uint64(a.t0_ns)).astype(np.float64) / 1e9
    by_a = {s.name: s for s in a.signals}
    by_b = {s.name: s for s in b.signals}
    for name in names:
        sa, sb = by_a.get(name), by_b.get(name)
        if sa is None or sb is None:
            status = DiffStatus.MISSING_IN_B if sa is not None else DiffStatus.MISSING_IN_A
            result.append(SignalDiff(name, status))
            continue
        if sa.type != sb.type:
            result.append(SignalDiff(name, DiffStatus.TYPE_DIFFERS, type_a=sa.type, type_b=sb.type))
            continue
        va, vb = a.read(sa)[ia], b.read(sb)[ib]
        bad = ~_within(sa, va, vb, tol)
        n_bad = int(np.count_nonzero(bad))
        if n_bad == 0:
            result.append(SignalDiff(name, DiffStatus.SAME))
            continue
        i = int(np.argmax(bad))
        first = FirstDifference(
            cycle=int(common[i]),
            t=float(t_rel[i]),
            a=json_value(sa, va[i]),
            b=json_value(sb, vb[i]),
            a_text=text_value(sa, va[i]),
            b_text=text_value(sb, vb[i]),
        )
        result.append(SignalDiff(name, DiffStatus.DIFFERS, rows_differing=n_bad, first=first))
    same = rows_same and all(r.status is DiffStatus.SAME for r in result)
    return TraceDiff(
        same=same,
        a=a.path,
        b=b.path,
        tol=tol,
        rows_a=len(ca),
        rows_b=len(cb),
        rows_common=len(common),
        signals=result,
    )
