"""Internal: reference-mode views of a program's aggregate variables in the process
image (arrays, structures), which read and write the elementary variables they are
made of through the scan's I/O object.

A view is a reference, as a Python object is: ``r = self.recs[i]`` keeps naming
element ``i`` of ``recs`` whatever happens to ``i`` later, and writes through ``r``
reach the image. Every read of a leaf records its key on the program
(``_softplc_last_elem``), which ``QUALITY()``/``AGE()`` use to find the variable a
path names.
"""

from __future__ import annotations

import enum
from typing import Any

from softplc.datatypes import (
    ArrayType,
    convert_value,
    describe,
    index_text,
    is_struct,
    leaf_values,
    leaves,
    storage_name,
    struct_fields,
)
from softplc.errors import StateError
from softplc.iectypes import make
from softplc.types import is_enum_class

__all__ = ["ImageArrayView", "ImageStructView", "read", "write"]


def _io(owner: Any, key: str) -> Any:
    io = owner.__dict__.get("_softplc_io")
    if io is None:
        raise StateError(f"{key} is only accessible during a scan")
    return io


def _engine_value(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    return v


def read(owner: Any, key: str, t: Any) -> Any:
    """The value of ``owner``'s variable ``key`` of type ``t``: a scalar's value, or a
    view of an aggregate."""
    if isinstance(t, ArrayType):
        return ImageArrayView(owner, key, t, ())
    if is_struct(t):
        return ImageStructView(owner, key, t)
    d = owner.__dict__
    d["_softplc_last_elem"] = key
    raw = _io(owner, key).get(d["_softplc_index"][key])
    if is_enum_class(t):
        assert isinstance(t, type) and issubclass(t, enum.IntEnum)
        try:
            return t(raw)
        except ValueError:
            pass  # forced to a value that is no member: the number itself
    return make(storage_name(t), raw)


def write(owner: Any, key: str, t: Any, value: Any) -> None:
    """Writes ``value`` into ``owner``'s variable ``key`` of type ``t`` (an aggregate
    leaf by leaf, from a value or a view of the same type)."""
    d = owner.__dict__
    if isinstance(t, ArrayType):
        raise TypeError(f"assign the elements of array {key}, not the whole array")
    if is_struct(t):
        convert_value(t, value, key)  # the type check, before any leaf is written
        io = _io(owner, key)
        for (path, lt), v in zip(leaves(t, key), leaf_values(t, value), strict=True):
            io.set(d["_softplc_index"][path], _engine_value(convert_value(lt, v, path)))
        return
    io = _io(owner, key)
    io.set(d["_softplc_index"][key], _engine_value(convert_value(t, value, key)))


class ImageArrayView:
    """An array variable during a scan: ``a[i]``, ``a[i, j]`` (bounds checked, the
    error names the array); ``a[i]`` of a multi-dimensional array is its row."""

    __slots__ = ("given", "key", "owner", "t")

    def __init__(self, owner: Any, key: str, t: ArrayType, given: tuple[int, ...]) -> None:
        self.owner, self.key, self.t, self.given = owner, key, t, given

    def _index(self, i: Any) -> tuple[int, ...]:
        ix = self.given + (i if isinstance(i, tuple) else (i,))
        dims = self.t.dims
        if len(ix) > len(dims):
            raise IndexError(f"{self.key} has {len(dims)} dimensions, got {len(ix)} indices")
        for d in range(len(self.given), len(ix)):
            k = ix[d]
            if isinstance(k, bool) or not isinstance(k, int):
                raise TypeError(f"array index must be an integer, got {type(k).__name__}")
            if not 0 <= k < dims[d]:
                dim = f" (dimension {d + 1})" if len(dims) > 1 else ""
                name = f"{self.owner.__dict__.get('_softplc_name', '')}.{self.key}".lstrip(".")
                raise IndexError(f"index {int(k)} of {name}{dim} is out of range 0..{dims[d] - 1}")
        return tuple(int(k) for k in ix)

    def __getitem__(self, i: Any) -> Any:
        ix = self._index(i)
        if len(ix) < len(self.t.dims):
            return ImageArrayView(self.owner, self.key, self.t, ix)
        return read(self.owner, self.key + index_text(ix), self.t.elem)

    def __setitem__(self, i: Any, value: Any) -> None:
        ix = self._index(i)
        if len(ix) < len(self.t.dims):
            raise TypeError(f"assign the elements of {self.key}, not a whole row")
        write(self.owner, self.key + index_text(ix), self.t.elem, value)

    def __len__(self) -> int:
        return self.t.dims[len(self.given)]

    def __iter__(self) -> Any:
        raise TypeError("iterate over an array with for i in range(N) and index it")

    def __repr__(self) -> str:
        return f"<{self.key}: {describe(self.t)}>"


class ImageStructView:
    """A structure variable during a scan: its fields read and write the image."""

    __slots__ = ("_softplc_struct_type", "key", "owner")

    def __init__(self, owner: Any, key: str, t: type) -> None:
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "_softplc_struct_type", t)

    def _field(self, name: str) -> Any:
        t = struct_fields(self._softplc_struct_type).get(name)
        if t is None:
            raise AttributeError(
                f"{self.key} ({self._softplc_struct_type.__name__}) has no field {name!r}"
            )
        return t

    def __getattr__(self, name: str) -> Any:
        return read(self.owner, f"{self.key}.{name}", self._field(name))

    def __setattr__(self, name: str, value: Any) -> None:
        write(self.owner, f"{self.key}.{name}", self._field(name), value)

    def __repr__(self) -> str:
        return f"<{self.key}: {self._softplc_struct_type.__name__}>"
