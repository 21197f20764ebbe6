"""The errors of the testing toolkit.

Failures of what a test checks are :class:`AssertionError` subclasses, so that pytest
reports them as failures with their message; bad input (an unknown variable, an
impossible request) is a :class:`softplc.ConfigError`, like the rest of softplc's
bad input. A fault of the engine during a run is :class:`softplc.RuntimeFaulted`.
"""

from __future__ import annotations

from typing import Any

from softplc.errors import UnknownVariable

__all__ = ["BenchTimeout", "FaultNotRaised", "TemporalAssertionError", "UnknownName"]


class UnknownName(UnknownVariable):
    """A variable or signal name that is not there (or ambiguous); the message names
    it and suggests the closest names. A :class:`softplc.UnknownVariable` (so a
    :class:`softplc.ConfigError` and a :class:`KeyError`), as everywhere in softplc."""


class BenchTimeout(AssertionError):
    """``run_until`` reached its timeout with the condition still false. The message
    gives the time, the cycle and the values of the variables the condition read.

    Attributes:
        condition: the condition as written (or the callable's name).
        values: the values of the variables involved at the timeout.
        cycle: cycles of the first task run by then.
        t_ns: virtual time reached.
    """

    def __init__(
        self, message: str, *, condition: str, values: dict[str, Any], cycle: int, t_ns: int
    ) -> None:
        super().__init__(message)
        self.condition = condition
        self.values = values
        self.cycle = cycle
        self.t_ns = t_ns


class FaultNotRaised(AssertionError):
    """A run that was expected to end in FAULT (``expect_fault``) did not."""


class TemporalAssertionError(AssertionError):
    """A temporal assertion does not hold on a recorded run.

    Attributes:
        assertion: the assertion as written (``always(pump or not enable)``).
        row: index of the first violating row in the recording.
        cycle: the cycle number of that row.
        t_ns: engine time of that row.
        signals: the signals shown in the window around it.
        traces: the trace files of the run (kept for a bench's recording).
    """

    def __init__(
        self,
        message: str,
        *,
        assertion: str,
        row: int,
        cycle: int,
        t_ns: int,
        signals: list[str],
        traces: list[str],
    ) -> None:
        super().__init__(message)
        self.assertion = assertion
        self.row = row
        self.cycle = cycle
        self.t_ns = t_ns
        self.signals = signals
        self.traces = traces
