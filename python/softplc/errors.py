"""The softplc exception hierarchy. Every error softplc raises derives from
:class:`SoftPlcError`; the native module defines the classes and this module re-exports
them so that ``except softplc.ConfigError`` works the same for both sides.

:class:`WatchdogInterrupt` is the exception the watchdog raises inside Python program
code that runs past its task's limit; like ``KeyboardInterrupt`` it derives from
``BaseException``, so that ``except Exception`` in a program does not swallow it.

:class:`UnknownVariable` is raised wherever a variable name or index leads to no variable
(``Engine.read``, ``io["x"]``, ``io.x``). It is a :class:`ConfigError`, and also a
``KeyError`` and an ``AttributeError``, so that ``getattr(io, "x", None)`` and
``except KeyError`` keep working.

Example:
    >>> import softplc
    >>> issubclass(softplc.ConfigError, softplc.SoftPlcError)
    True
    >>> issubclass(softplc.UnknownVariable, (softplc.ConfigError, KeyError))
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
    UnknownVariable,
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
    "UnknownVariable",
    "WatchdogInterrupt",
]
