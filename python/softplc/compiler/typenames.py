"""Static type names beyond the elementary ones: the untyped ``ANY_INT``/``ANY_REAL``
of Python numbers, and enumerations.

A static type is a string. Elementary types are their IEC names (``INT``); an
enumeration (an ``IntEnum`` class used as a type) is its class name (``Phase``), or
its class name and module when another enumeration of a program already has that
name; :func:`storage` gives the IEC type its values are stored as (the cells and
process-image variables that hold them).
"""

from __future__ import annotations

import enum

from softplc.iectypes import ANY_INT, ANY_REAL
from softplc.types import ALL_TYPES, enum_storage

__all__ = ["enum_class", "enum_type", "is_enum", "is_untyped", "storage"]

_NAMES: dict[type, str] = {}
_CLASSES: dict[str, type[enum.IntEnum]] = {}
_RESERVED = {t.name for t in ALL_TYPES} | {ANY_INT, ANY_REAL}


def enum_type(cls: type[enum.IntEnum]) -> str:
    """The static type of enumeration ``cls``."""
    name = _NAMES.get(cls)
    if name is None:
        name = cls.__name__
        if name in _CLASSES or name in _RESERVED:
            name = f"{cls.__name__} ({cls.__module__})"
        _NAMES[cls] = name
        _CLASSES[name] = cls
    return name


def enum_class(t: str) -> type[enum.IntEnum] | None:
    """The enumeration a static type names, or None."""
    return _CLASSES.get(t)


def is_enum(t: str) -> bool:
    """True when ``t`` is an enumeration."""
    return t in _CLASSES


def is_untyped(t: str) -> bool:
    """True for the types of Python literals and loop indices."""
    return t in (ANY_INT, ANY_REAL)


def storage(t: str) -> str:
    """The IEC type that holds values of static type ``t``."""
    if t == ANY_INT:
        return "LINT"
    if t == ANY_REAL:
        return "LREAL"
    cls = _CLASSES.get(t)
    if cls is not None:
        return enum_storage(cls).name
    return t
