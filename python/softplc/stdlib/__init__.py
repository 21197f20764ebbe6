"""The IEC standard library: function blocks and functions, reference form.

Every name here exists twice: in this package, as plain Python that reference mode runs,
and in the compiled form (Rust, ``softplc-vm``). Both follow the same definitions
(``docs/programs.md``; timers, counters, edges and bistables exactly as
``docs/iec-function-blocks.md``) and agree bit for bit, which the differential tests
check. One module a concern:

* :mod:`softplc.stdlib.blocks`: the function blocks (timers, counters, edges,
  bistables, HYSTERESIS, RAMP, PID);
* :mod:`softplc.stdlib.functions`: the functions (math, selection, bits, conversions);
* :mod:`softplc.stdlib.quality`: ``QUALITY``, ``AGE`` and the quality codes;
* :mod:`softplc.stdlib.strings`: LEN, LEFT, RIGHT, MID, FIND, CONCAT, TO_STRING;
* :mod:`softplc.stdlib.time`: ``now()``, ``ms``/``s``/``us`` and the TIME conversions.

Function blocks are declared as program attributes and called with keyword inputs;
inputs keep their value between calls::

    @program
    class Door:
        button = Input(BOOL)
        lamp = Output(BOOL)
        hold = TON(PT=s(2))

        def scan(self):
            self.hold(IN=self.button)
            self.lamp = self.hold.Q

Example:
    >>> t = TON(PT=ms(100))
    >>> t.PT, t.Q
    (100000000, False)
    >>> LIMIT(0, 150, 100), MAX(1, 7, 3), SEL(True, 1.5, 2.5)
    (100, 7, 2.5)
"""

from __future__ import annotations

from typing import Any

from softplc.stdlib.blocks import (
    CTD,
    CTU,
    CTUD,
    F_TRIG,
    FB_TYPES,
    HYSTERESIS,
    PID,
    R_TRIG,
    RAMP,
    RS,
    SR,
    TOF,
    TON,
    TP,
    FunctionBlock,
)
from softplc.stdlib.functions import (
    ABS,
    ACOS,
    ASIN,
    ATAN,
    CONVERSIONS,
    COS,
    EXP,
    GET_BIT,
    LIMIT,
    LN,
    LOG,
    MAX,
    MIN,
    MUX,
    ROL,
    ROR,
    SEL,
    SET_BIT,
    SHL,
    SHR,
    SIN,
    SQRT,
    TAN,
    TO_BOOL,
    TO_BYTE,
    TO_DINT,
    TO_DWORD,
    TO_INT,
    TO_LINT,
    TO_LREAL,
    TO_LWORD,
    TO_REAL,
    TO_SINT,
    TO_UDINT,
    TO_UINT,
    TO_ULINT,
    TO_USINT,
    TO_WORD,
    TRUNC,
)
from softplc.stdlib.quality import AGE, BAD, GOOD, QUALITY, STALE
from softplc.stdlib.strings import (
    CONCAT,
    FIND,
    LEFT,
    LEN,
    MID,
    RIGHT,
    STRING_FUNCTIONS,
    TO_STRING,
)
from softplc.stdlib.time import TIME_TO_MS, TIME_TO_S, ms, now, s, us

__all__ = [
    "ABS",
    "ACOS",
    "AGE",
    "ASIN",
    "ATAN",
    "BAD",
    "CONCAT",
    "CONVERSIONS",
    "COS",
    "CTD",
    "CTU",
    "CTUD",
    "EXP",
    "FB_TYPES",
    "FIND",
    "FUNCTIONS",
    "F_TRIG",
    "GET_BIT",
    "GOOD",
    "HYSTERESIS",
    "LEFT",
    "LEN",
    "LIMIT",
    "LN",
    "LOG",
    "MAX",
    "MID",
    "MIN",
    "MUX",
    "PID",
    "QUALITY",
    "RAMP",
    "RIGHT",
    "ROL",
    "ROR",
    "RS",
    "R_TRIG",
    "SEL",
    "SET_BIT",
    "SHL",
    "SHR",
    "SIN",
    "SQRT",
    "SR",
    "STALE",
    "STRING_FUNCTIONS",
    "TAN",
    "TIME_TO_MS",
    "TIME_TO_S",
    "TOF",
    "TON",
    "TO_BOOL",
    "TO_BYTE",
    "TO_DINT",
    "TO_DWORD",
    "TO_INT",
    "TO_LINT",
    "TO_LREAL",
    "TO_LWORD",
    "TO_REAL",
    "TO_SINT",
    "TO_STRING",
    "TO_UDINT",
    "TO_UINT",
    "TO_ULINT",
    "TO_USINT",
    "TO_WORD",
    "TP",
    "TRUNC",
    "FunctionBlock",
    "ms",
    "now",
    "s",
    "us",
]

#: The standard functions by name (what compiled programs may call).
FUNCTIONS: dict[str, Any] = {
    "ABS": ABS,
    "SQRT": SQRT,
    "SIN": SIN,
    "COS": COS,
    "TAN": TAN,
    "ASIN": ASIN,
    "ACOS": ACOS,
    "ATAN": ATAN,
    "EXP": EXP,
    "LN": LN,
    "LOG": LOG,
    "MIN": MIN,
    "MAX": MAX,
    "LIMIT": LIMIT,
    "SEL": SEL,
    "MUX": MUX,
    "GET_BIT": GET_BIT,
    "SET_BIT": SET_BIT,
    "TRUNC": TRUNC,
    "SHL": SHL,
    "SHR": SHR,
    "ROL": ROL,
    "ROR": ROR,
    "TIME_TO_MS": TIME_TO_MS,
    "TIME_TO_S": TIME_TO_S,
    "ms": ms,
    "s": s,
    "us": us,
    "now": now,
    "QUALITY": QUALITY,
    "AGE": AGE,
    **CONVERSIONS,
    **STRING_FUNCTIONS,
}
