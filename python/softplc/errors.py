"""The softplc exception hierarchy. Every error softplc raises derives from
:class:`SoftPlcError`; the native module defines the classes and this module re-exports
them so that ``except softplc.ConfigError`` works the same for both sides.

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
)

__all__ = [
    "ConfigError",
    "InvalidValue",
    "IoError",
    "ProgramError",
    "RuntimeFaulted",
    "SoftPlcError",
    "StateError",
    "TraceError",
]
