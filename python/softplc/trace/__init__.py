"""Traces: record chosen variables and the cycle timing of a running engine to a file,
read trace files back into NumPy arrays, summarise and compare them.

Recording runs in the scan with no allocation, lock or I/O on the scan thread; a
background thread writes the file (format: ``docs/trace-format.md``). A file cut short
by a crash loads up to its last whole block. Reading checks every count and offset
against the file's size and, by default, every checksum of a closed file.

Example:
    >>> import numpy as np, os, tempfile
    >>> import softplc.trace as st
    >>> path = os.path.join(tempfile.mkdtemp(), "demo.trace")
    >>> _ = st.record_arrays(path, {"tank.level": ("REAL", np.linspace(0, 1, 5))})
    >>> tr = st.load(path)
    >>> tr["level"].tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
"""

from softplc.trace._analysis import stats
from softplc.trace._diff import DiffStatus, FirstDifference, SignalDiff, TraceDiff, diff
from softplc.trace._errors import TraceError, TraceWarning
from softplc.trace._reader import Signal, Trace, glob_match, load, split_patterns
from softplc.trace._record import (
    TraceRecorder,
    parse_trigger,
    record_arrays,
    start_trace,
    stop_trace,
)

__all__ = [
    "DiffStatus",
    "FirstDifference",
    "Signal",
    "SignalDiff",
    "Trace",
    "TraceDiff",
    "TraceError",
    "TraceRecorder",
    "TraceWarning",
    "diff",
    "glob_match",
    "load",
    "parse_trigger",
    "record_arrays",
    "split_patterns",
    "start_trace",
    "stats",
    "stop_trace",
]
