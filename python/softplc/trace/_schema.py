"""Checks of the decoded contents of trace frames: every key the reader uses has the
type and range ``docs/trace-format.md`` gives it, or reading stops with a
:class:`TraceError` that names the frame, the key and what was expected.

A file can pass its checksums and still be wrong (another writer's bug, or a file made to
hurt the reader). Checking here, once, is what lets the rest of the reader use the
values without guarding every use: a row count bounds an allocation, an offset bounds
a slice, a task index picks a name.
"""

from __future__ import annotations

import re
from typing import Any

from softplc.errors import SoftPlcError
from softplc.trace._errors import TraceError
from softplc.types import ALL_TYPES, IecType

__all__ = [
    "I64_MAX",
    "U64_MAX",
    "Fields",
    "check_events",
    "check_gap",
    "check_header",
    "check_trigger",
    "column_dtype",
    "short",
]

U64_MAX = (1 << 64) - 1
I64_MAX = (1 << 63) - 1
I64_MIN = -(1 << 63)


def column_dtype(t: IecType) -> str:
    """The NumPy type string of a trace column of type ``t`` (``docs/trace-format.md``,
    section 2): derived from the type's size and kind, so it cannot drift from the
    type table.

    Example:
        >>> from softplc.types import BOOL, SINT, REAL, TIME
        >>> [column_dtype(t) for t in (BOOL, SINT, REAL, TIME)]
        ['|b1', '|i1', '<f4', '<i8']
    """
    if t.size == 0:
        return "|b1"
    kind = "f" if t.is_float else "i" if t.signed else "u"
    return f"{'|' if t.size == 1 else '<'}{kind}{t.size}"


#: IEC type name -> column dtype.
DTYPES = {t.name: column_dtype(t) for t in ALL_TYPES}

_STRING = re.compile(r"STRING\(([1-9][0-9]{0,2})\)")


def expected_dtype(type_name: str) -> str | None:
    """The column dtype of a signal of type ``type_name``: :data:`DTYPES`, or
    ``|V{n+1}`` for a ``STRING(n)`` (n from 1 to 254: the length byte and the
    characters); None for an unknown type."""
    d = DTYPES.get(type_name)
    if d is not None:
        return d
    m = _STRING.fullmatch(type_name)
    if m and int(m.group(1)) <= 254:
        return f"|V{int(m.group(1)) + 1}"
    return None


#: The type of each timing signal ``task:T.<field>`` (section 2 of the format).
TIMING_TYPES = {
    "scheduled_ns": "ULINT",
    "start_ns": "ULINT",
    "exec_time": "TIME",
    "overrun": "BOOL",
}


def short(v: Any) -> str:
    """A value for an error message: its repr, on one line, at most 60 characters."""
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


class Fields:
    """Typed access to the entries of one decoded record (a msgpack map), for error
    messages that name the file, the record and the key.

    Example:
        >>> f = Fields({"rows": -1}, "t.trace", "block 0 at byte 120")
        >>> try:
        ...     f.integer("rows", lo=1, hi=10)
        ... except TraceError as e:
        ...     print(e)
        t.trace: block 0 at byte 120: 'rows' must be an integer from 1 to 10, got -1
    """

    def __init__(self, record: Any, file: str, where: str) -> None:
        if not isinstance(record, dict):
            raise TraceError(f"{file}: {where} is not a map (got {short(record)})")
        self.record: dict[Any, Any] = record
        self.file = file
        self.where = where

    def fail(self, message: str) -> SoftPlcError:
        """A TraceError about this record."""
        return TraceError(f"{self.file}: {self.where}: {message}")

    def _get(self, key: str, default: Any, required: bool) -> Any:
        if key not in self.record:
            if required:
                raise self.fail(f"{key!r} is missing")
            return default
        return self.record[key]

    def integer(
        self,
        key: str,
        *,
        lo: int = 0,
        hi: int = U64_MAX,
        default: int | None = None,
        why: str = "",
    ) -> int:
        """An integer in ``lo..hi`` (required when ``default`` is None)."""
        v = self._get(key, default, default is None)
        return checked_int(v, lo, hi, lambda m: self.fail(f"{key!r} {m}{why}"))

    def opt_integer(self, key: str, *, lo: int = 0, hi: int = U64_MAX) -> int | None:
        """An integer in ``lo..hi``, or None (nil or absent)."""
        v = self.record.get(key)
        if v is None:
            return None
        return checked_int(v, lo, hi, lambda m: self.fail(f"{key!r} {m}"))

    def text(self, key: str, *, default: str | None = None) -> str:
        """A string (required when ``default`` is None)."""
        v = self._get(key, default, default is None)
        if not isinstance(v, str):
            raise self.fail(f"{key!r} must be a string, got {short(v)}")
        return v

    def opt_text(self, key: str) -> str | None:
        """A string, or None (nil or absent)."""
        v = self.record.get(key)
        if v is not None and not isinstance(v, str):
            raise self.fail(f"{key!r} must be a string or nil, got {short(v)}")
        return v

    def opt_flag(self, key: str) -> bool | None:
        """A boolean, or None (nil or absent)."""
        v = self.record.get(key)
        if v is not None and not isinstance(v, bool):
            raise self.fail(f"{key!r} must be true or false, got {short(v)}")
        return v

    def array(self, key: str, *, default: list[Any] | None = None) -> list[Any]:
        """An array (required when ``default`` is None)."""
        v = self._get(key, default, default is None)
        if not isinstance(v, list):
            raise self.fail(f"{key!r} must be an array, got {short(v)}")
        return v

    def opt_map(self, key: str) -> dict[Any, Any] | None:
        """A map, or None (nil or absent)."""
        v = self.record.get(key)
        if v is not None and not isinstance(v, dict):
            raise self.fail(f"{key!r} must be a map or nil, got {short(v)}")
        return v


def checked_int(v: Any, lo: int, hi: int, fail: Any) -> int:
    """``v`` when it is an integer (not a bool) in ``lo..hi``; else raises ``fail(why)``."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise fail(f"must be an integer, got {short(v)}")
    if not lo <= v <= hi:
        raise fail(f"must be an integer from {lo} to {hi}, got {v}")
    return v


def check_header(header: Any, file: str) -> dict[str, Any]:
    """Checks every header entry the reader uses (section 2 of the format); returns the
    header. ``format`` and ``version`` are checked by the caller first, so that a
    foreign or newer file gets that message rather than one about a key."""
    h = Fields(header, file, "header")
    cols = h.array("columns")
    fixed = [(str(c.get("name")), str(c.get("dtype"))) if isinstance(c, dict) else c for c in cols]
    if fixed != [("cycle", "<u8"), ("t_ns", "<u8")]:
        raise h.fail(
            f"'columns' must be cycle <u8 and t_ns <u8 (section 3 of the format), got {short(cols)}"
        )
    for i, s in enumerate(h.array("signals")):
        if _plain_signal(s):
            continue
        f = Fields(s, file, f"header: signal {i}")
        name = f.text("name")
        f.where = f"header: signal {i} ({name!r})"
        type_name = f.text("type")
        expected = expected_dtype(type_name)
        if expected is None:
            raise f.fail(
                f"unknown type {short(type_name)} (expected one of {', '.join(DTYPES)} or "
                "STRING(n))"
            )
        dtype = f.text("dtype")
        if dtype != expected:
            raise f.fail(f"dtype {dtype!r} does not match type {type_name} ({expected!r})")
        for key in _OPTIONAL_TEXT:
            f.opt_text(key)
        if name.startswith("task:"):
            field = name.rpartition(".")[2]
            want = TIMING_TYPES.get(field)
            if want is not None and type_name != want:
                raise f.fail(f"a task's {field} signal must be {want}, got {type_name}")
    for i, t in enumerate(h.array("tasks", default=[])):
        f = Fields(t, file, f"header: task {i}")
        f.text("name")
        f.opt_integer("period_ns")
    for key in ("trace_task", "mode", "engine_state", "engine_version", "writer"):
        h.opt_text(key)
    h.integer("decimate", lo=1, default=1)
    for key in ("cycle_period_ns", "sample_period_ns", "block_rows"):
        h.opt_integer(key)
    h.opt_integer("created_unix_ns", lo=I64_MIN, hi=I64_MAX)
    for key in ("program", "meta", "trigger"):
        h.opt_map(key)
    ref = h.opt_map("clock_ref")
    if ref is not None:
        f = Fields(ref, file, "header: clock_ref")
        f.opt_text("clock")
        # Both below 2**63, so that their difference converts times exactly in int64.
        f.opt_integer("engine_ns", hi=I64_MAX)
        f.opt_integer("unix_ns", hi=I64_MAX)
    return header  # type: ignore[no-any-return]


_OPTIONAL_TEXT = ("unit", "address", "kind", "task")


def _plain_signal(s: Any) -> bool:
    """True for a signal entry that is right and needs no closer look: the common case,
    checked without building messages (a header may list 200,000 signals)."""
    if type(s) is not dict:
        return False
    name, type_name = s.get("name"), s.get("type")
    return (
        type(name) is str
        and type(type_name) is str
        and (DTYPES.get(type_name) or expected_dtype(type_name)) == s.get("dtype")
        and not name.startswith("task:")
        and all(s.get(k) is None or type(s.get(k)) is str for k in _OPTIONAL_TEXT)
    )


def check_events(rec: dict[str, Any], file: str, where: str) -> None:
    """Checks an events frame: ``events`` holds maps with integer ``t_ns``, ``task``,
    ``a``, ``b`` and string ``kind``, ``text`` (any may be absent); ``lost`` is a count."""
    f = Fields(rec, file, where)
    f.opt_integer("lost")
    for i, e in enumerate(f.array("events", default=[])):
        ef = Fields(e, file, f"{where}: event {i}")
        ef.integer("t_ns", default=0)
        ef.integer("task", lo=I64_MIN, hi=I64_MAX, default=-1)
        ef.integer("a", lo=I64_MIN, hi=I64_MAX, default=0)
        ef.integer("b", lo=I64_MIN, hi=I64_MAX, default=0)
        ef.text("kind", default="")
        ef.text("text", default="")


def check_gap(rec: dict[str, Any], file: str, where: str) -> None:
    """Checks a gap frame: counts and cycle and time bounds are integers."""
    f = Fields(rec, file, where)
    f.integer("blocks", default=0)
    f.integer("rows", default=0)
    for key in ("first_cycle", "last_cycle", "t_first_ns", "t_last_ns", "before_seq"):
        f.opt_integer(key)
    f.opt_text("reason")


def check_trigger(rec: dict[str, Any], file: str, where: str) -> None:
    """Checks a trigger frame: capture, cycle, time and row counts are integers, the
    flags booleans."""
    f = Fields(rec, file, where)
    for key in ("capture", "cycle", "t_ns", "pre_rows"):
        f.opt_integer(key)
    f.opt_text("condition")
    f.opt_flag("forced")
    f.opt_flag("complete")
