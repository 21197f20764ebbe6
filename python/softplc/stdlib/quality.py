"""Data quality and age of inputs, as programs read them: ``QUALITY(self.level)``,
``AGE(self.level)`` and the codes :data:`GOOD`, :data:`BAD`, :data:`STALE`.

Example:
    >>> int(GOOD), int(BAD), int(STALE)
    (0, 1, 2)
"""

from __future__ import annotations

from typing import Any

from softplc._varref import resolve
from softplc.iectypes import (
    Time,
    make,
)

__all__ = ["AGE", "BAD", "GOOD", "QUALITY", "STALE"]

#: Quality codes returned by :func:`QUALITY` (USINT): fresh data from a working device
#: (or an input no driver supplies).
GOOD = make("USINT", 0)
#: The device failed; the value is the last one or a declared substitute.
BAD = make("USINT", 1)
#: No fresh data within the expected period (also before a device's first answer).
STALE = make("USINT", 2)

_QUALITY_CODES = {"good": GOOD, "bad": BAD, "stale": STALE}
_TIME_MAX = (1 << 63) - 1


def QUALITY(var: Any) -> Any:
    """The data quality of an input, as USINT: :data:`GOOD` (0), :data:`BAD` (1) or
    :data:`STALE` (2). Drivers set it (Modbus: bad after ``fail_after`` failed polls,
    stale when the newest data is older than ``stale_ms``); inputs written from Python
    or by a plant model are good.

    The argument names the variable itself, not a value: ``QUALITY(self.level)`` or
    ``QUALITY(self.levels[i])``, an input of the program, directly in the call.
    Anything else is an error (a compile error in compiled programs).

    Example (inside a program's ``scan``)::

        if QUALITY(self.level) != GOOD:
            self.pump = False
    """
    io, index = resolve("QUALITY")
    return _QUALITY_CODES[io.quality(index)]


def AGE(var: Any) -> Time:
    """The age of an input's data, as TIME: the cycle's ``now`` minus the time the data
    was acquired (a Modbus poll's start, the cycle an ``engine.write`` landed in, the
    plant model's step). Never negative.

    Takes the variable as :func:`QUALITY` does: ``AGE(self.level)``.

    Example (inside a program's ``scan``)::

        self.level_old = AGE(self.level) > s(2)
    """
    io, index = resolve("AGE")
    return Time(min(int(io.age_ns(index)), _TIME_MAX))
