"""Type stubs for ``softplc._native``, the private PyO3 module built from rust/softplc-py.

Written by hand and checked against the built module with ``python -m mypy.stubtest
softplc._native`` (tests/unit/test_native_stubs.py). The dictionaries the engine returns
are described by the private ``TypedDict`` classes below (``type_check_only``: they do
not exist at runtime); the same test compares their keys with the dictionaries a live
engine returns. Literal string types list every value the Rust side can produce (they
come from exhaustive matches over Rust enums); a field fed by free text stays ``str``.
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import (
    Literal,
    Self,
    SupportsFloat,
    SupportsIndex,
    TypeAlias,
    TypedDict,
    final,
    type_check_only,
)

import numpy as np
from numpy.typing import NDArray

__version__: str

__all__ = [
    "Checkpoint",
    "ConfigError",
    "Engine",
    "InvalidValue",
    "IoError",
    "IoMonitor",
    "NativeDriver",
    "ProgramError",
    "PyDeviceLink",
    "RuntimeFaulted",
    "ScanIO",
    "SoftPlcError",
    "StateError",
    "TraceError",
    "TraceRecorder",
    "UnknownVariable",
    "WatchdogInterrupt",
    "__version__",
    "event_kinds",
    "io_check_config",
    "io_load_config",
    "io_modbus_server",
    "io_opcua_server",
    "io_python_device",
    "io_xgt_server",
    "trace_dtypes",
    "trace_record",
    "trace_start",
    "vm_fb_layouts",
    "vm_operations",
    "vm_symbols",
    "vm_verify",
]

# ---------------------------------------------------------------------------------------
# Values and names

#: A variable's value as the engine returns it: BOOL -> bool, REAL/LREAL -> float, every
#: other type (TIME in ns) -> int.
_Value: TypeAlias = bool | int | float
#: A value the engine accepts: anything with ``__index__`` (bool, int, NumPy integers) or
#: ``__float__`` (float, NumPy floats). The type of the variable decides whether it fits.
_ValueIn: TypeAlias = SupportsIndex | SupportsFloat
#: A key of a ScanIO: the variable's index or its full name.
_Key: TypeAlias = int | str
#: A path the Rust side takes as a ``PathBuf``.
_StrPath: TypeAlias = str | os.PathLike[str]

_Area: TypeAlias = Literal["input", "output", "memory"]
_IecName: TypeAlias = Literal[
    "BOOL", "SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT", "REAL",
    "LREAL", "TIME",
]  # fmt: skip
_Quality: TypeAlias = Literal["good", "bad", "stale"]
_State: TypeAlias = Literal["RUN", "STOP", "FAULT"]
_EventKind: TypeAlias = Literal[
    "state", "fault", "overrun", "force", "unforce", "write", "io", "info"
]
_IoEventKind: TypeAlias = Literal[
    "connected", "connect_failed", "disconnected", "device_bad", "device_good",
    "outputs_rewritten", "write_rejected", "listening", "listen_failed", "listen_stopped",
    "accept_failed", "client_accepted", "client_not_allowed", "client_refused",
    "client_evicted", "client_write_refused", "other",
]  # fmt: skip
_FaultKind: TypeAlias = Literal["program", "panic", "watchdog", "overrun", "driver"]
_ProgramKind: TypeAlias = Literal["compiled", "python", "native"]

# ---------------------------------------------------------------------------------------
# Dictionaries returned by Engine

@type_check_only
class _Fault(TypedDict):
    kind: _FaultKind
    task: str  # empty when not task-related
    source: str  # program or driver name, or empty
    cycle: int
    t_ns: int
    started_ns: int
    message: str
    summary: str

@type_check_only
class _Percentiles(TypedDict):
    p50_ns: int
    p99_ns: int
    p999_ns: int
    max_ns: int
    mean_ns: int
    count: int

@type_check_only
class _TaskStats(TypedDict):
    name: str
    period_ns: int
    priority: int
    cycles: int
    overruns: int
    missed: int
    latency: _Percentiles
    exec: _Percentiles
    period: _Percentiles
    programs: list[tuple[str, _ProgramKind]]

@type_check_only
class _SwapDone(TypedDict):
    cycle: int
    t_ns: int
    retired: list[str]
    kept_state: list[str]

@type_check_only
class _RetainReport(TypedDict):
    level: str
    loaded_seq: int
    restored: list[str]
    reset: list[tuple[str, str]]
    dropped: list[str]
    warnings: list[str]

@type_check_only
class _RetainStatus(TypedDict):
    enabled: bool
    files: list[str]
    saves: int
    last_seq: int
    last_save_unix_ns: int
    error: str | None
    report: _RetainReport

@type_check_only
class _RtStatus(TypedDict):
    priority: int | None
    memory_locked: bool
    cpu: int | None
    timer_slack: bool
    cpu_dma_latency: bool
    degraded: list[str]
    watchdog_degraded: list[str]

@type_check_only
class _IoEvent(TypedDict):
    kind: _IoEventKind
    link: int | None  # the driver's connection, numbered by the driver
    device: int | None  # the device, in configuration order
    suppressed: int  # > 0: sums up this many events of `kind` left out

@type_check_only
class _Event(TypedDict):
    t_ns: int
    kind: _EventKind
    task: int  # -1 when not task-related
    a: int  # kind-specific; for "io": the link, or -1
    b: int  # kind-specific; for "io": the device, or -1
    text: str
    io: _IoEvent | None  # the typed I/O event, for kind "io"

@type_check_only
class _Variable(TypedDict):
    index: int
    name: str
    area: _Area
    type: _IecName
    address: str
    explicit: bool
    offset: int
    bit: int
    initial: _Value
    safe: _Value
    unit: str
    min: _Value | None
    max: _Value | None
    writable: bool
    retain: Literal["retain", "persistent"] | None

@type_check_only
class _Snapshot(TypedDict):
    input: NDArray[np.uint8]
    output: NDArray[np.uint8]
    memory: NDArray[np.uint8]
    quality: NDArray[np.uint8]
    stamp_ns: NDArray[np.uint64]
    now_ns: int
    cycles: int

# ---------------------------------------------------------------------------------------
# Exceptions (errors.rs)

class SoftPlcError(Exception): ...
class ConfigError(SoftPlcError): ...
class UnknownVariable(ConfigError, KeyError, AttributeError): ...
class ProgramError(SoftPlcError): ...
class IoError(SoftPlcError): ...
class RuntimeFaulted(SoftPlcError): ...
class InvalidValue(SoftPlcError): ...
class StateError(SoftPlcError): ...
class WatchdogInterrupt(BaseException): ...
class TraceError(SoftPlcError): ...

# ---------------------------------------------------------------------------------------
# Drivers (driver.rs, modbus.rs, xgt.rs)

@final
class NativeDriver:
    """A native I/O driver not yet handed to an engine (built by ``io_*`` functions)."""

    @property
    def name(self) -> str: ...

@final
class IoMonitor:
    """A driver's status, readable before and after the driver is attached."""

    @property
    def name(self) -> str: ...
    def status_json(self) -> str: ...

def io_load_config(path: str) -> list[tuple[NativeDriver, IoMonitor]]: ...
def io_modbus_server(
    listen: str,
    *,
    unit_id: int = ...,
    max_connections: int = ...,
    idle_timeout_ms: int = ...,
    allow: Sequence[str] = ...,
    read_only: Sequence[str] = ...,
    strict_map: bool = ...,
) -> tuple[NativeDriver, IoMonitor]: ...

@final
class PyDeviceLink:
    """The Python thread's side of a Python device driver (``softplc.io.serial_device``)."""

    @property
    def name(self) -> str: ...
    def state(self) -> str: ...
    def publish(self, values: Sequence[object]) -> None: ...
    def fail(self, error: str, bad: bool) -> None: ...
    def restarted(self) -> None: ...
    def port_state(self, port: str, open: bool) -> None: ...
    def take_outputs(self) -> list[tuple[str, _Value]] | None: ...

def io_python_device(
    name: str, inputs: Sequence[str], outputs: Sequence[str], *, stale_ms: int
) -> tuple[NativeDriver, PyDeviceLink, IoMonitor]: ...
def io_xgt_server(
    listen: str,
    *,
    cpu: str = ...,
    max_connections: int = ...,
    idle_timeout_ms: int = ...,
    allow: Sequence[str] = ...,
    read_only: Sequence[str] = ...,
) -> tuple[NativeDriver, IoMonitor]: ...
def io_opcua_server(
    endpoint: str,
    *,
    pki_dir: str | None = ...,
    users: Sequence[tuple[str, str, str]] = ...,
    anonymous: str | None = ...,
    expose: Sequence[str] = ...,
    sampling_ms: int = ...,
    trust_client_certs: bool = ...,
    max_sessions: int = ...,
) -> tuple[NativeDriver, IoMonitor]: ...
def io_check_config(
    path: str,
    variables: Sequence[tuple[str, str, str, str | None]] | None = ...,
) -> str: ...

# ---------------------------------------------------------------------------------------
# Compiled programs (vm.rs)

def vm_verify(ir: Sequence[int]) -> tuple[int, int]:
    """Verifies a serialized program (bytes): (instructions, cells)."""

def vm_fb_layouts() -> list[
    tuple[str, list[tuple[str, _IecName, Literal["input", "output", "internal"]]]]
]:
    """Every standard block: (block, [(field, type, role)])."""

def vm_operations() -> list[tuple[str, list[str]]]:
    """The operation vocabulary of the intermediate form: (name, [operand kind])."""

def vm_symbols(
    ir: Sequence[int],
) -> list[tuple[str, str, Literal["input", "output", "internal"], int]]:
    """The symbol table of a serialized program: (path, type, role, cell)."""

# ---------------------------------------------------------------------------------------
# The engine (engine.rs)

@final
class ScanIO:
    """The image access a Python program or plant gets for one call."""

    def get(self, index: int) -> _Value: ...
    def set(self, index: int, value: _ValueIn) -> None: ...
    def __getitem__(self, key: _Key, /) -> _Value: ...
    def __setitem__(self, key: _Key, value: _ValueIn, /) -> None: ...
    # PyO3 implements ``__getattr__`` in the tp_getattro slot, which Python exposes as
    # ``__getattribute__`` (there is no ``__getattr__`` attribute); mypy uses either for
    # attributes the class does not define, so ``io.level`` reads a variable.
    def __getattribute__(self, name: str, /) -> _Value: ...
    def __setattr__(self, name: str, value: _ValueIn, /) -> None: ...
    def quality(self, key: _Key) -> _Quality: ...
    def age_ns(self, key: _Key) -> int: ...
    @property
    def now_ns(self) -> int: ...
    @property
    def cycle(self) -> int: ...
    @property
    def period_ns(self) -> int: ...
    @property
    def dt_ns(self) -> int: ...

@final
class Checkpoint:
    """A checkpoint of a virtual-time engine (opaque)."""

    @property
    def cycle(self) -> int: ...

@final
class Engine:
    """The native engine: configure, then ``start``."""

    def __new__(
        cls,
        *,
        clock: Literal["real", "virtual"],
        priority: int | None = ...,
        lock_memory: bool = ...,
        cpu: int | None = ...,
    ) -> Self: ...

    # configuration
    def declare(
        self,
        name: str,
        area: str,
        type_name: str,
        address: str | None = ...,
        initial: _ValueIn | None = ...,
        safe: _ValueIn | None = ...,
        unit: str = ...,
        min: _ValueIn | None = ...,
        max: _ValueIn | None = ...,
        writable: bool = ...,
        values: Sequence[int] | None = ...,
        retain: Literal["retain", "persistent"] | None = ...,
    ) -> int: ...
    def set_retain(
        self,
        dir: str | os.PathLike[str],
        stem: str,
        *,
        cadence_ns: int,
        level: Literal["warm", "cold", "origin"],
        signature: str,
    ) -> None: ...
    def retain_status(self) -> _RetainStatus | None: ...
    def checkpoint(self) -> Checkpoint: ...
    def restore(self, cp: Checkpoint) -> None: ...
    def hold_quality(
        self,
        name: str,
        quality: Literal["good", "bad", "stale"] | None,
        age_ns: int | None = ...,
    ) -> None: ...
    def online_change(
        self,
        retire: Sequence[tuple[str, str]],
        declare: Sequence[tuple[object, ...]],
        tasks: Sequence[tuple[str, Sequence[tuple[str, str, object, str | None]]]],
        *,
        convert: Sequence[tuple[str, str]] = ...,
        signature: str | None = ...,
        timeout_ms: int = ...,
    ) -> _SwapDone: ...
    def add_task(
        self,
        name: str,
        period_ns: int,
        priority: int = ...,
        watchdog_ns: int | None = ...,
        watchdog_tolerance: int = ...,
        overrun: str = ...,
    ) -> None: ...
    def add_python_program(
        self, task: str, name: str, callable: Callable[[ScanIO], object]
    ) -> None: ...
    def add_compiled_program(self, task: str, name: str, ir: Sequence[int]) -> None: ...
    def add_driver(self, driver: NativeDriver) -> None: ...
    def set_plant(self, step: Callable[[ScanIO, float], object]) -> None: ...
    def declared_count(self) -> int: ...
    def rollback_declarations(self, n: int) -> None: ...
    def layout_preview(self) -> list[_Variable]: ...

    # life cycle
    def start(self, run: bool = ...) -> None: ...
    def run_cycles(self, n: int) -> int: ...
    def run_virtual_for(self, duration_ns: int) -> int: ...
    def virtual_now(self) -> int | None: ...
    def clock_ns(self) -> tuple[int, int]: ...
    def wait(
        self,
        duration_ns: int | None = ...,
        cycles: int | None = ...,
        stop_on_fault: bool = ...,
    ) -> Literal["time", "cycles", "fault", "stopped"]: ...
    def stop_at_cycle(self, total: int) -> None: ...
    def close(self) -> None: ...
    @property
    def scan_abandoned(self) -> bool: ...
    @property
    def clock(self) -> Literal["real", "virtual"]: ...

    # state
    def set_run(self) -> None: ...
    def set_stop(self) -> None: ...
    def clear_fault(self) -> None: ...
    @property
    def state(self) -> _State | Literal["CONFIG"]: ...
    def fault(self) -> _Fault | None: ...

    # variables
    def resolve(self, name: str) -> str: ...
    def read(self, name: str) -> _Value: ...
    def write(self, name: str, value: _ValueIn) -> None: ...
    def force(self, name: str, value: _ValueIn) -> None: ...
    def unforce(self, name: str | None = ...) -> None: ...
    def forced(self) -> dict[str, _Value]: ...
    def variables(self) -> list[_Variable]: ...
    def snapshot(self) -> _Snapshot: ...
    def quality(self, name: str) -> _Quality: ...
    def age_ns(self, name: str) -> int: ...

    # statistics and status
    def stats(self) -> list[_TaskStats]: ...
    def reset_stats(self) -> None: ...
    def rt_status(self) -> _RtStatus | None: ...
    def events(self, since: int = ...) -> tuple[list[_Event], int]: ...
    def driver_status(self) -> dict[str, str]: ...

# ---------------------------------------------------------------------------------------
# Traces (trace.rs)

@final
class TraceRecorder:
    """A trace recording on an engine; stop it with ``stop(engine)``."""

    def stop(self, engine: Engine) -> dict[str, int]: ...
    def trigger(self) -> None: ...
    def stats(self) -> dict[str, int]: ...
    def wait_for_trigger(self, captures: int = ..., timeout_s: float | None = ...) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def path(self) -> Path: ...
    @property
    def finished(self) -> bool: ...

def trace_start(
    engine: Engine,
    path: _StrPath,
    *,
    signals: Sequence[str] = ...,
    timing: bool = ...,
    task: str | None = ...,
    decimate: int = ...,
    mode: Literal["continuous", "triggered"] = ...,
    trigger: str | None = ...,
    pre: int = ...,
    post: int = ...,
    captures: int = ...,
    block_rows: int = ...,
    buffer_blocks: int = ...,
    max_buffer_bytes: int = ...,
    backpressure: bool = ...,
    flush_interval_s: float = ...,
    program: Sequence[tuple[str, str]] = ...,
    meta: Sequence[tuple[str, str]] = ...,
) -> TraceRecorder: ...
def trace_dtypes(extra: Sequence[str] = ...) -> list[tuple[str, str]]: ...
def event_kinds() -> tuple[list[_EventKind], list[_IoEventKind]]: ...
def trace_record(
    path: _StrPath,
    variables: Sequence[tuple[str, str, str, str, str | None]],
    values: Sequence[bytes],
    cycles: int,
    *,
    period_ns: int = ...,
    task: str = ...,
    exec_ns: bytes | None = ...,
    overrun: bytes | None = ...,
    events: Sequence[tuple[int, str, int, int, int, str]] = ...,
    force_trigger_at: Sequence[int] = ...,
    signals: Sequence[str] = ...,
    timing: bool = ...,
    decimate: int = ...,
    mode: Literal["continuous", "triggered"] = ...,
    trigger: str | None = ...,
    pre: int = ...,
    post: int = ...,
    captures: int = ...,
    block_rows: int = ...,
    buffer_blocks: int = ...,
    max_buffer_bytes: int = ...,
    program: Sequence[tuple[str, str]] = ...,
    meta: Sequence[tuple[str, str]] = ...,
) -> dict[str, int]: ...
