"""The softplc exception hierarchy. Every error softplc raises derives from
:class:`SoftPlcError`; the native module defines the classes and this module re-exports
them so that ``except softplc.ConfigError`` works the same for both sides.

:class:`WatchdogInterrupt` is the exception the watchdog raises inside Python program
code that runs past its task's limit; like ``KeyboardInterrupt`` it derives from
``BaseException``, so that ``except Exception`` in a program does not swallow it.

Example:
    >>> import softplc
    >>> issubclass(softplc.ConfigError, softplc.SoftPlcError)
    True
"""

from softplc._native import (
    ConfigError,
    InvalidValue,
    IoError,
    ProgramError,
    RuntimeFaulted,
    SoftPlcError,
    StateError,
    TraceError,
    WatchdogInterrupt,
)


class ControlError(SoftPlcError):
    """A control-channel request failed: no such runtime, a refused request, a broken
    connection."""


__all__ = [
    "ConfigError",
    "ControlError",
    "InvalidValue",
    "IoError",
    "ProgramError",
    "RuntimeFaulted",
    "SoftPlcError",
    "StateError",
    "TraceError",
    "WatchdogInterrupt",
]
