"""softplc: a soft PLC. Control programs written in Python, run by a Rust scan-cycle
engine at fixed cycle times, with virtual time for tests.

Example:
    >>> import softplc
    >>> softplc.ms(5)
    5000000
"""

from softplc.engine import Engine, RealtimeWarning, Snapshot, Task
from softplc.errors import (
    ConfigError,
    InvalidValue,
    IoError,
    ProgramError,
    RuntimeFaulted,
    SoftPlcError,
    StateError,
)
from softplc.program import Input, Memory, Output, Var, now, program
from softplc.timefmt import ms, ns, parse_duration, s, us
from softplc.types import (
    BOOL,
    DINT,
    INT,
    LINT,
    LREAL,
    REAL,
    SINT,
    TIME,
    UDINT,
    UINT,
    ULINT,
    USINT,
    IecType,
)

__version__ = "0.1.0"

__all__ = [
    "BOOL",
    "DINT",
    "INT",
    "LINT",
    "LREAL",
    "REAL",
    "SINT",
    "TIME",
    "UDINT",
    "UINT",
    "ULINT",
    "USINT",
    "ConfigError",
    "Engine",
    "IecType",
    "Input",
    "InvalidValue",
    "IoError",
    "Memory",
    "Output",
    "ProgramError",
    "RealtimeWarning",
    "RuntimeFaulted",
    "Snapshot",
    "SoftPlcError",
    "StateError",
    "Task",
    "Var",
    "ms",
    "now",
    "ns",
    "parse_duration",
    "program",
    "s",
    "us",
]
