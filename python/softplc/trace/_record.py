"""Recording traces: on a running engine, or from arrays."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

import numpy as np

from softplc.errors import ConfigError
from softplc.trace._errors import TraceError
from softplc.trace._reader import ENUMS_META, split_patterns
from softplc.types import NUMPY_DTYPES as _NUMPY_OF
from softplc.types import type_from_name as _type_from_name

__all__ = [
    "DEFAULT_MAX_BUFFER_BYTES",
    "MODES",
    "TraceRecorder",
    "parse_trigger",
    "record_arrays",
    "start_trace",
    "stop_trace",
]

#: Recorders running per engine, so that ``stop_trace(engine)`` finds its recorder.
_ACTIVE: weakref.WeakKeyDictionary[Any, TraceRecorder] = weakref.WeakKeyDictionary()


def _native() -> Any:
    from softplc import _native as n

    return n


def _config_error(message: str) -> Exception:
    from softplc.errors import ConfigError

    err: Exception = ConfigError(message)
    return err


#: Default cap on the memory of a trace's buffers (1 GiB).
DEFAULT_MAX_BUFFER_BYTES = 1 << 30

#: Recording modes.
MODES = ("continuous", "triggered")


def parse_trigger(trigger: str | None, mode: str | None = None) -> tuple[str, str | None]:
    """The mode and trigger text for the ``trigger`` and ``mode`` options.

    Without ``mode``: None means continuous recording; any text (``rising:NAME``,
    ``falling:NAME``, ``NAME>LEVEL``, ``NAME<LEVEL``, ``NAME<>LEVEL``, or ``manual``) a
    triggered one. ``mode="triggered"`` without a trigger waits for a forced trigger
    (``manual``); ``mode="continuous"`` with a trigger is an error.

    Example:
        >>> parse_trigger(None), parse_trigger("rising:tank.start")
        (('continuous', None), ('triggered', 'rising:tank.start'))
        >>> parse_trigger(None, mode="triggered")
        ('triggered', 'manual')
    """
    if mode is not None and mode not in MODES:
        raise _config_error(f"unknown trace mode {mode!r} (expected 'continuous' or 'triggered')")
    if trigger is None:
        return ("triggered", "manual") if mode == "triggered" else ("continuous", None)
    text = str(trigger).strip()
    if not text:
        raise _config_error("empty trigger (use manual, rising:NAME, NAME>LEVEL, ...)")
    if mode == "continuous":
        raise _config_error(
            f"trigger {text!r} needs mode='triggered' (continuous traces record everything)"
        )
    return "triggered", text


def _program_info(
    program_path: str | os.PathLike[str] | None, engine: Any
) -> list[tuple[str, str]]:
    info: list[tuple[str, str]] = []
    if program_path is not None:
        p = os.fspath(program_path)
        info.append(("path", os.path.abspath(p)))
        try:
            with open(p, "rb") as f:
                info.append(("sha256", hashlib.sha256(f.read()).hexdigest()))
        except OSError:
            pass
    names: list[str] = []
    try:
        names = [str(p["name"]) for p in engine.status().get("programs") or []]
    except Exception:  # noqa: BLE001 (the header is informative; never fail a trace on it)
        names = []
    if names:
        info.append(("names", ",".join(names)))
    return info


def _native_engine(engine: Any) -> Any:
    native = getattr(engine, "native", engine)
    n = _native()
    if not isinstance(native, n.Engine):
        raise TypeError(f"expected a softplc.Engine, got {type(engine).__name__}")
    return native


class TraceRecorder:
    """A trace being recorded on an engine; from :func:`start_trace`.

    Use it as a context manager or call :meth:`stop`, which closes the file and returns
    the final counters.
    """

    def __init__(self, engine: Any, native: Any, path: str, mode: str = "continuous") -> None:
        self._engine = engine
        self._native = native
        #: The trace file.
        self.path = path
        #: ``continuous`` or ``triggered``.
        self.mode = mode
        self._final: dict[str, int] | None = None

    def stop(self) -> dict[str, int]:
        """Detaches the recorder, writes the last rows and the index, closes the file.

        Returns the counters (``rows_written``, ``dropped_blocks``, ``events_lost``,
        ...). Idempotent. When the engine cannot hand the recorder back in time (a scan
        cycle stuck for seconds), it raises TraceError and the recorder stays attached and
        registered: calling ``stop()`` (or :func:`stop_trace`) again retries.
        """
        if self._final is None:
            self._final = dict(self._native.stop(_native_engine(self._engine)))
            if _ACTIVE.get(self._engine) is self:
                del _ACTIVE[self._engine]
        return dict(self._final)

    def trigger(self) -> None:
        """Forces the trigger at the next cycle (triggered traces)."""
        self._native.trigger()

    def wait_for_trigger(self, timeout: float | None = None, *, captures: int = 1) -> bool:
        """Waits until ``captures`` captures are in the file; False on timeout."""
        return bool(self._native.wait_for_trigger(captures, timeout))

    @property
    def stats(self) -> dict[str, int]:
        """Counters so far."""
        return dict(self._final) if self._final is not None else dict(self._native.stats())

    @property
    def error(self) -> str | None:
        """The first error writing the file, if any."""
        return self._native.error  # type: ignore[no-any-return]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._final is not None else "recording"
        return f"<TraceRecorder {self.path!r} {state}>"


def start_trace(
    engine: Any,
    path: str | os.PathLike[str],
    *,
    signals: str | Iterable[str] | None = None,
    decimate: int = 1,
    mode: str | None = None,
    trigger: str | None = None,
    pre: int = 1000,
    post: int = 1000,
    captures: int = 1,
    timing: bool = True,
    task: str | None = None,
    block_rows: int = 1024,
    buffer_blocks: int = 8,
    max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
    backpressure: bool | None = None,
    flush_interval: float = 0.5,
    program_path: str | os.PathLike[str] | None = None,
    meta: Mapping[str, str] | None = None,
) -> TraceRecorder:
    """Starts recording a trace of a started engine into ``path``.

    Args:
        engine: a started :class:`softplc.Engine`.
        path: the trace file to create. An existing file is replaced only once the trace
            has started: signals, trigger and buffers are checked first, and a trace that
            fails to start leaves it as it was.
        signals: names, addresses or globs (``"tank.*"``, ``"a,b"``); None records every
            variable.
        decimate: record every Nth cycle of the trace task.
        mode: ``"continuous"`` or ``"triggered"``; by default triggered exactly when a
            ``trigger`` is given. ``mode="triggered"`` without a trigger waits for
            :meth:`TraceRecorder.trigger`.
        trigger: None records continuously; ``"rising:NAME"``, ``"falling:NAME"``,
            ``"NAME>LEVEL"``, ``"NAME<LEVEL"``, ``"NAME<>LEVEL"`` or ``"manual"`` record
            ``pre`` rows before the trigger, the trigger row and ``post`` rows after it.
        captures: triggered captures to take (0: re-arm without limit).
        timing: also record per task the scheduled start, actual start, execution time
            and overrun flag.
        task: the task whose cycles make the rows (default: the first).
        block_rows: rows per block; ``buffer_blocks`` blocks are buffered in memory.
        max_buffer_bytes: cap on the memory of the buffers (default 1 GiB): continuous
            ``buffer_blocks x block_rows`` rows, triggered one or two captures of
            ``pre + 1 + post`` rows. A trace that would need more is refused with a
            ConfigError naming the options to change.
        backpressure: let the scan wait for the disk instead of dropping blocks; the
            default turns it on for virtual time only (real time never waits).
        flush_interval: seconds after which a partial block is written anyway.
        program_path: the program file, recorded (with its SHA-256) in the header.
        meta: extra header entries.

    Returns:
        A :class:`TraceRecorder`; :meth:`TraceRecorder.stop` closes the file.

    Raises:
        ConfigError: an unknown signal or trigger variable, or a bad option.
        TraceError: the file cannot be created, or a trace is already running.

    Example:
        >>> import softplc, softplc.trace as st, tempfile, os
        >>> eng = softplc.Engine(clock="virtual", cycle="1ms")
        >>> eng.declare("x", "memory", softplc.DINT)
        >>> eng.add_task("main", period="1ms")
        >>> eng.start()
        >>> path = os.path.join(tempfile.mkdtemp(), "e.trace")
        >>> rec = st.start_trace(eng, path)
        >>> _ = eng.run_cycles(5)
        >>> rec.stop()["rows_written"]
        5
        >>> eng.close()
    """
    if decimate < 1:
        raise _config_error(f"decimate must be at least 1 (got {decimate})")
    if pre < 0 or post < 0 or captures < 0:
        raise _config_error("pre, post and captures must not be negative")
    if engine in _ACTIVE:
        raise TraceError(
            f"a trace is already recording on this engine ({_ACTIVE[engine].path}); stop it first"
        )
    native_engine = _native_engine(engine)
    mode, text = parse_trigger(trigger, mode)
    _check_buffer_options(block_rows, buffer_blocks, max_buffer_bytes)
    clock = str(getattr(engine, "clock", getattr(native_engine, "clock", "")))
    if backpressure is None:
        backpressure = clock == "virtual"
    info = [("clock", clock), ("host", platform.node())]
    labels = getattr(engine, "enum_labels", None)
    if labels:
        # The names of enumeration values, so readers show members, not numbers.
        info.append(
            (
                ENUMS_META,
                json.dumps({n: {str(k): v for k, v in m.items()} for n, m in labels.items()}),
            )
        )
    info += [(str(k), str(v)) for k, v in (meta or {}).items()]
    rec = _native().trace_start(
        native_engine,
        os.fspath(path),
        signals=split_patterns(signals),
        timing=timing,
        task=task,
        decimate=decimate,
        mode=mode,
        trigger=text,
        pre=pre,
        post=post,
        captures=captures,
        block_rows=block_rows,
        buffer_blocks=buffer_blocks,
        max_buffer_bytes=max_buffer_bytes,
        backpressure=backpressure,
        flush_interval_s=flush_interval,
        program=_program_info(program_path, engine),
        meta=info,
    )
    recorder = TraceRecorder(engine, rec, os.fspath(path), mode)
    # An engine object without weak references is simply not tracked.
    with contextlib.suppress(TypeError):
        _ACTIVE[engine] = recorder
    return recorder


def _check_buffer_options(block_rows: int, buffer_blocks: int, max_buffer_bytes: int) -> None:
    for name, v in (
        ("block_rows", block_rows),
        ("buffer_blocks", buffer_blocks),
        ("max_buffer_bytes", max_buffer_bytes),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise _config_error(f"{name} must be a positive integer (got {v!r})")
    if max_buffer_bytes >= 1 << 64:
        raise _config_error(f"max_buffer_bytes must be below 2**64 (got {max_buffer_bytes})")


def stop_trace(engine: Any) -> dict[str, int]:
    """Stops the trace recording on ``engine``; returns its final counters.

    Raises TraceError when no trace is recording on it.

    Example:
        >>> import softplc, softplc.trace as st, tempfile, os
        >>> eng = softplc.Engine(clock="virtual", cycle="1ms")
        >>> eng.declare("on", "output", softplc.BOOL)
        >>> eng.add_task("main", period="1ms")
        >>> eng.start()
        >>> _ = st.start_trace(eng, os.path.join(tempfile.mkdtemp(), "s.trace"), trigger="manual")
        >>> _ = eng.run_cycles(3)
        >>> st.stop_trace(eng)["captures_written"]
        0
        >>> eng.close()
    """
    rec = _ACTIVE.get(engine)
    if rec is None:
        raise TraceError("no trace is recording on this engine")
    return rec.stop()


def _string_cap(type_name: str) -> int | None:
    if not type_name.strip().upper().startswith("STRING"):
        return None
    try:
        t = _type_from_name(type_name)
    except ConfigError as e:
        raise _config_error(str(e)) from None
    return t.size - 1


def _text_values(name: str, cap: int, values: Any, n: int | None) -> tuple[bytes, int]:
    """STRING values as the image holds them: a length byte, then ``cap`` bytes
    (truncated to the capacity, as every STRING write is)."""
    out = bytearray()
    count = 0
    for v in values:
        try:
            raw = str(v).encode("latin-1")[:cap]
        except UnicodeEncodeError:
            raise _config_error(
                f"{name}: {v!r} has characters beyond Latin-1, which a STRING cannot hold"
            ) from None
        out += bytes([len(raw)]) + raw + bytes(cap - len(raw))
        count += 1
    if n is not None and count != n:
        raise _config_error(f"{name}: {count} values, but other variables have {n}")
    return bytes(out), count


def _values(name: str, type_name: str, values: Any, n: int | None) -> tuple[bytes, int]:
    cap = _string_cap(type_name)
    if cap is not None:
        return _text_values(name, cap, values, n)
    dt = _NUMPY_OF.get(type_name.upper())
    if dt is None:
        raise _config_error(f"{name}: unknown type {type_name!r}")
    try:
        if type_name.upper() == "BOOL":
            arr = np.asarray(values).astype(bool)
        elif isinstance(values, np.ndarray):
            arr = values
        else:
            # Straight to the type: a list of Python ints converts exactly (a detour
            # through float64 would round 64-bit values).
            arr = np.asarray(values, dtype=np.dtype(dt))
    except (OverflowError, ValueError, TypeError) as e:
        raise _config_error(f"{name}: values do not fit {type_name}: {e}") from None
    if arr.ndim != 1:
        raise _config_error(f"{name}: values must be one-dimensional")
    out = np.ascontiguousarray(arr.astype(np.dtype(dt), copy=False))
    if n is not None and len(out) != n:
        raise _config_error(f"{name}: {len(out)} values, but other variables have {n}")
    return out.tobytes(), len(out)


def record_arrays(
    path: str | os.PathLike[str],
    variables: Mapping[str, Any],
    *,
    period_ns: int = 1_000_000,
    task: str = "main",
    exec_ns: Sequence[int] | np.ndarray | None = None,
    overrun: Sequence[bool] | np.ndarray | None = None,
    events: Iterable[Mapping[str, Any]] = (),
    force_trigger_at: Iterable[int] = (),
    signals: str | Iterable[str] | None = None,
    timing: bool = True,
    decimate: int = 1,
    mode: str | None = None,
    trigger: str | None = None,
    pre: int = 0,
    post: int = 0,
    captures: int = 1,
    block_rows: int = 1024,
    buffer_blocks: int = 8,
    max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
    program: Mapping[str, str] | None = None,
    meta: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Writes a trace file from arrays, through the same sampler and writer as a live
    recording: row ``i`` of the arrays is engine cycle ``i``, scheduled at
    ``i * period_ns`` in virtual time.

    Args:
        path: the trace file to create.
        variables: ``{name: (type, values)}`` or ``{name: {"type": ..., "values": ...,
            "area": "memory", "unit": "", "address": None}}``; all arrays equally long.
            TIME values are nanoseconds; BOOL values anything truthy.
        exec_ns, overrun: per-cycle execution time and overrun flag of the task.
        events: engine events to put in the file: dicts with ``t_ns``, ``kind``
            (``fault``, ``state``, ``overrun``, ``force``, ...), optional ``task``, ``a``,
            ``b`` and ``text``.
        force_trigger_at: cycles at which a forced trigger is requested.
        Other options as for :func:`start_trace`.

    Returns:
        The recorder's counters.

    Example:
        >>> import os, tempfile, softplc.trace as st
        >>> p = os.path.join(tempfile.mkdtemp(), "a.trace")
        >>> st.record_arrays(p, {"on": ("BOOL", [0, 1, 1])})["rows_written"]
        3
    """
    decls = []
    data = []
    n: int | None = None
    for name, spec in variables.items():
        if isinstance(spec, Mapping):
            type_name = str(spec["type"])
            vals = spec["values"]
            area = str(spec.get("area", "memory"))
            unit = str(spec.get("unit", ""))
            address = spec.get("address")
        else:
            type_name, vals = spec
            area, unit, address = "memory", "", None
        type_name = getattr(type_name, "name", type_name)
        raw, n = _values(name, str(type_name), vals, n)
        decls.append((name, str(type_name).upper(), area, unit, address))
        data.append(raw)
    if n is None:
        raise _config_error("record_arrays needs at least one variable")
    exec_raw = None
    if exec_ns is not None:
        exec_raw, _ = _values("exec_ns", "ULINT", exec_ns, n)
    over_raw = None
    if overrun is not None:
        over_raw, _ = _values("overrun", "BOOL", overrun, n)
    evs = [
        (
            int(e["t_ns"]),
            str(e["kind"]),
            int(e.get("task", -1)),
            int(e.get("a", 0)),
            int(e.get("b", 0)),
            str(e.get("text", "")),
        )
        for e in events
    ]
    mode, text = parse_trigger(trigger, mode)
    _check_buffer_options(block_rows, buffer_blocks, max_buffer_bytes)
    stats = _native().trace_record(
        os.fspath(path),
        decls,
        data,
        n,
        period_ns=period_ns,
        task=task,
        exec_ns=exec_raw,
        overrun=over_raw,
        events=evs,
        force_trigger_at=[int(i) for i in force_trigger_at],
        signals=split_patterns(signals),
        timing=timing,
        decimate=decimate,
        mode=mode,
        trigger=text,
        pre=pre,
        post=post,
        captures=captures,
        block_rows=block_rows,
        buffer_blocks=buffer_blocks,
        max_buffer_bytes=max_buffer_bytes,
        program=[(str(k), str(v)) for k, v in (program or {}).items()],
        meta=[(str(k), str(v)) for k, v in (meta or {}).items()],
    )
    return dict(stats)
