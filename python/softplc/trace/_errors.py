"""The trace exception and warning.

:class:`TraceError` is the native ``softplc._native.TraceError`` (a subclass of
:class:`softplc.SoftPlcError`), so that errors raised by the Rust writer and by the
Python reader are the same class.
"""

from __future__ import annotations

import importlib

from softplc.errors import SoftPlcError

__all__ = ["TraceError", "TraceWarning"]


def _trace_error() -> type[SoftPlcError]:
    cls = getattr(importlib.import_module("softplc._native"), "TraceError", None)
    if isinstance(cls, type) and issubclass(cls, SoftPlcError):
        return cls

    class TraceError(SoftPlcError):  # type: ignore[misc, unused-ignore]  # pragma: no cover
        """A trace cannot be recorded, or a trace file cannot be read."""

    return TraceError


#: A trace cannot be recorded, or a trace file cannot be read.
TraceError = _trace_error()


class TraceWarning(UserWarning):
    """A trace file was read only in part (cut short, or still being written)."""
