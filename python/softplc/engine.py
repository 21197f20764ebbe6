"""The engine: process image, tasks, programs, drivers, and the scan.

Example (virtual time, deterministic and faster than real time):
    >>> from softplc import Engine, program, Output, Memory, BOOL, DINT
    >>> @program
    ... class Counter:
    ...     pulse = Output(BOOL)
    ...     n = Memory(DINT)
    ...     def scan(self):
    ...         self.n = self.n + 1
    ...         self.pulse = self.n % 2 == 0
    >>> with Engine(clock="virtual", cycle="10ms") as plc:
    ...     _ = plc.add_program(Counter(), mode="reference")
    ...     plc.start()
    ...     _ = plc.run_cycles(5)
    ...     plc.read("counter.n"), plc.read("pulse"), plc.state
    (5, False, 'RUN')
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import enum
import hashlib
import json
import os
import sys
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np

from softplc import _native, _scanstate, authoring, trace
from softplc.compiler import compile_instance
from softplc.compiler.reference import prepare as prepare_reference
from softplc.errors import (
    ConfigError,
    InvalidValue,
    ProgramError,
    SoftPlcError,
    StateError,
    UnknownVariable,
)
from softplc.timefmt import parse_duration
from softplc.types import NUMPY_DTYPES, IecType

if TYPE_CHECKING:
    from softplc._native import _Variable

__all__ = ["Checkpoint", "Engine", "RealtimeWarning", "Snapshot", "Task"]

Duration = str | int | timedelta
Mode = Literal["auto", "compiled", "reference"]


class RealtimeWarning(UserWarning):
    """The system refused part of the real-time set-up; the engine runs degraded."""


@dataclass
class Task:
    """A cyclic task, for program files that declare their own tasks (``TASKS = [...]``).

    Example:
        >>> Task("fast", period="1ms", programs=[], priority=1).period
        '1ms'
    """

    name: str
    period: Duration
    programs: list[Any]
    priority: int = 10
    watchdog: Duration | None = None
    watchdog_tolerance: int = 0
    overrun: str = "skip"


def _positive(value: Duration, what: str) -> int:
    v = parse_duration(value, what=what)
    if v <= 0:
        raise ConfigError(f"{what} must be greater than 0 (got {value!r})")
    return v


@dataclass(frozen=True)
class Checkpoint:
    """The state of a virtual-time engine between two cycles (see
    :meth:`Engine.checkpoint`): the native part, and what Python programs and the plant
    hold."""

    native: Any
    python: list[tuple[str, dict[str, Any]]]

    @property
    def cycle(self) -> int:
        """The first task's cycle count when it was taken."""
        return int(self.native.cycle)


class Snapshot:
    """A consistent copy of the process image at the end of one cycle.

    ``input``, ``output`` and ``memory`` are the raw area bytes (``uint8`` arrays);
    ``quality`` and ``stamp_ns`` have one entry per variable. :meth:`value` decodes one
    variable and :meth:`values` all of an area.
    """

    def __init__(self, raw: Mapping[str, Any], variables: list[dict[str, Any]]) -> None:
        self.input: np.ndarray = raw["input"]
        self.output: np.ndarray = raw["output"]
        self.memory: np.ndarray = raw["memory"]
        self.quality: np.ndarray = raw["quality"]
        self.stamp_ns: np.ndarray = raw["stamp_ns"]
        self.now_ns: int = raw["now_ns"]
        self.cycles: int = raw["cycles"]
        self._vars = {v["name"]: v for v in variables}

    def value(self, name: str) -> Any:
        """Decodes one variable (full name) from the snapshot; :class:`UnknownVariable`
        (a ``KeyError``) for a name the engine does not have."""
        v = self._vars.get(name)
        if v is None:
            raise UnknownVariable(f"unknown variable {name!r} (a snapshot takes full names)")
        data = getattr(self, v["area"])
        off = v["offset"]
        if v["type"] == "BOOL":
            return bool((int(data[off]) >> v["bit"]) & 1)
        if v["type"].startswith("STRING("):
            # The length byte, then the characters (single-byte: Latin-1).
            cap = int(v["type"][7:-1])
            n = min(int(data[off]), cap)
            return bytes(data[off + 1 : off + 1 + n]).decode("latin-1")
        dt = np.dtype(NUMPY_DTYPES[v["type"]])
        return data[off : off + dt.itemsize].view(dt)[0].item()

    def values(self, area: str | None = None) -> dict[str, Any]:
        """All variables (of one area: ``input``, ``output``, ``memory``) by name."""
        return {n: self.value(n) for n, v in self._vars.items() if area in (None, v["area"])}


def _wrap_python(obj: Any) -> Callable[[Any], None]:
    """Turns a plain callable or an object with ``scan(io)`` into ``f(io)`` that also
    makes ``softplc.now()`` work inside."""
    target: Callable[[Any], Any]
    if callable(getattr(obj, "scan", None)) and not authoring.is_program(obj):
        target = obj.scan
    elif callable(obj):
        target = obj
    else:
        raise ProgramError(f"{obj!r} is not a program: give a callable or an object with scan()")
    stack = _scanstate.current_io

    def run(io: Any) -> None:
        stack.append(io)
        try:
            target(io)
        finally:
            stack.pop()

    return run


class Engine:
    """A soft PLC engine.

    Args:
        clock: ``"real"`` sleeps to absolute deadlines on the monotonic clock;
            ``"virtual"`` steps cycles as fast as it can with ``now`` = scheduled time.
        cycle: period of the default task ``main`` (created when a program is added
            without a task), e.g. ``"10ms"``.
        priority: SCHED_FIFO priority (1-99) for the scan thread in real time; None keeps
            the normal scheduler. Refusals warn once (:class:`RealtimeWarning`) and show
            in :meth:`status`.
        lock_memory: ``mlockall`` the process (default: when ``priority`` is set).
        cpu: pin the scan thread to this CPU (default: the last CPU when ``priority``
            is set).
    """

    def __init__(
        self,
        *,
        clock: Literal["real", "virtual"] = "real",
        cycle: Duration = "10ms",
        priority: int | None = None,
        lock_memory: bool | None = None,
        cpu: int | None = None,
    ) -> None:
        if clock not in ("real", "virtual"):
            raise ConfigError(f"clock must be 'real' or 'virtual', got {clock!r}")
        self._cycle_ns = _positive(cycle, "cycle")
        if priority is not None and not 1 <= priority <= 99:
            raise ConfigError(f"priority must be 1..99, got {priority}")
        if lock_memory is None:
            lock_memory = priority is not None
        if cpu is None and priority is not None:
            cpu = (os.cpu_count() or 1) - 1
        self._native = _native.Engine(
            clock=clock, priority=priority, lock_memory=lock_memory, cpu=cpu
        )
        self._tasks: list[str] = []
        self._programs: list[tuple[str, str, str]] = []  # (name, task, mode)
        self._bind: list[tuple[Any, dict[str, str]]] = []
        # Variables of an enumeration type, by full name: read as members, written by
        # member or name.
        self._enums: dict[str, type[enum.IntEnum]] = {}
        # The globals declared so far, by name.
        self._globals: dict[str, authoring.Global] = {}
        self._var_index: dict[str, int] = {}
        # Compiled form of each compiled program (an online change compares them).
        self._ir: dict[str, bytes] = {}
        self._variables: list[_Variable] | None = None
        self._plant: Any = None
        self._closed = False
        self._switch_interval: float | None = None
        # What identifies the programs, for retain (see set_retain).
        self._identity = hashlib.sha256()
        self._retain: tuple[str, str, int, Literal["warm", "cold", "origin"], str | None] | None = (
            None
        )
        self._periods: dict[str, int] = {}

    # -- configuration ------------------------------------------------------------

    @property
    def clock(self) -> str:
        """``"real"`` or ``"virtual"``."""
        return str(self._native.clock)

    def declare(
        self,
        name: str,
        area: str,
        type: IecType,
        address: str | None = None,
        *,
        initial: Any = None,
        safe: Any = None,
        unit: str = "",
        min: Any = None,
        max: Any = None,
        writable: bool = True,
        retain: Literal["retain", "persistent"] | None = None,
    ) -> None:
        """Declares a global variable in ``area`` (``input``/``output``/``memory``).

        ``min``/``max``/``writable`` bound external writes (see :class:`softplc.Var`).

        Example:
            >>> from softplc import Engine, BOOL
            >>> plc = Engine(clock="virtual")
            >>> plc.declare("start", "input", BOOL, "%IX0.0")
        """
        if not isinstance(type, IecType):
            raise ConfigError(f"variable {name!r}: {type!r} is not an IEC type")
        self._native.declare(
            name, area, type.name, address, initial, safe, unit, min=min, max=max,
            writable=writable, retain=retain,
        )  # fmt: skip

    def add_global(self, variable: authoring.Global) -> str:
        """Declares a global variable (once: a program that names an already declared
        global shares it). Returns its name.

        Raises :class:`ConfigError` when another declaration of the same name differs
        in type, area or address, naming both declarations.

        Example:
            >>> from softplc import Engine, Global, DINT
            >>> plc = Engine(clock="virtual")
            >>> plc.add_global(Global(DINT, name="parts"))
            'parts'
        """
        name = variable.global_name
        prev = self._globals.get(name)
        if prev is not None:
            if prev is variable or prev.same_as(variable):
                return name
            raise ConfigError(
                f"global {name!r} is declared twice with different types: "
                f"{prev!r} at {prev.site} and {variable!r} at {variable.site}"
            )
        mark = self._native.declared_count()
        try:
            for spec in variable.specs():
                spec.declare(self._native, spec.attr)
                if spec.enum is not None:
                    self._enums[spec.attr] = spec.enum
        except BaseException:
            self._native.rollback_declarations(mark)
            raise
        self._globals[name] = variable
        return name

    def add_task(
        self,
        name: str,
        *,
        period: Duration,
        priority: int = 10,
        watchdog: Duration | None = None,
        watchdog_tolerance: int = 0,
        overrun: str = "skip",
    ) -> None:
        """Adds a cyclic task.

        Args:
            period: cycle time (``"1ms"``, ``timedelta``, or int ns).
            priority: 0 is highest; orders tasks due at the same time.
            watchdog: execution-time limit; a cycle taking longer is a breach.
            watchdog_tolerance: consecutive breaches tolerated before FAULT.
            overrun: ``skip`` (drop missed cycles, stay on the tick grid), ``catch-up``
                (run them back to back) or ``fault``.
        """
        period_ns = _positive(period, f"task {name!r}: period")
        wd = None if watchdog is None else _positive(watchdog, f"task {name!r}: watchdog")
        if watchdog_tolerance < 0:
            raise ConfigError(f"task {name!r}: watchdog_tolerance must be >= 0")
        self._native.add_task(name, period_ns, priority, wd, watchdog_tolerance, overrun)
        self._tasks.append(name)
        self._periods[name] = period_ns

    def add_program(
        self,
        program: Any,
        *,
        task: str | None = None,
        name: str | None = None,
        mode: Mode = "auto",
    ) -> str:
        """Adds a program to a task (default: ``main``, created with ``cycle``).

        ``program`` is a ``@program`` instance (or class, instantiated here), a plain
        callable ``f(io)``, or an object with ``scan(io)``. ``@program`` instances run
        compiled by default (``mode="auto"`` or ``"compiled"``) or as plain Python with
        ``mode="reference"``; other programs always run as Python with the GIL.
        Returns the program's instance name.
        """
        if mode not in ("auto", "compiled", "reference"):
            raise ConfigError(f"mode must be auto, compiled or reference, got {mode!r}")
        if task is None:
            task = "main"
            if "main" not in self._tasks:
                self.add_task("main", period=self._cycle_ns)
        elif task not in self._tasks:
            raise ConfigError(f"unknown task {task!r} (declared: {', '.join(self._tasks)})")
        if isinstance(program, type) and authoring.is_program(program):
            program = program(name=name) if name else program()
        if authoring.is_program(program):
            pname = authoring.instance_name(program)
            if name and name != pname:
                raise ConfigError(f"program instance is named {pname!r}, not {name!r}")
            run_mode = "compiled" if mode == "auto" else mode
            # All or nothing: a program that fails to declare or compile leaves no
            # variables behind.
            mark = self._native.declared_count()
            try:
                names: dict[str, str] = {}
                for spec in authoring.program_variables(program):
                    full = f"{pname}.{spec.attr}"
                    spec.declare(self._native, full)
                    names[spec.attr] = full
                    if spec.enum is not None:
                        self._enums[full] = spec.enum
                for alias, g in authoring.program_globals(program):
                    gname = self.add_global(g)
                    for spec in g.specs():
                        names[alias + spec.attr[len(gname) :]] = spec.attr
                if run_mode == "compiled":
                    ir = compile_instance(program)
                    self._native.add_compiled_program(task, pname, ir)
                    self._ir[pname] = ir
                    self._identity.update(pname.encode() + b"\0" + ir)
                else:
                    _check_reference_scan(program)
                    # The compiler's implicit conversions (typed locals, unified
                    # branches), applied to the Python code so both modes agree.
                    prepare_reference(program)
                    self._native.add_python_program(task, pname, _reference_runner(program))
                    self._identity.update(_source_identity(type(program)))
            except BaseException:
                self._native.rollback_declarations(mark)
                raise
            self._bind.append((program, names))
            self._programs.append((pname, task, str(run_mode)))
            return pname
        if mode == "compiled":
            raise ProgramError(
                f"{program!r} is not a @program class: only declared programs can be compiled"
            )
        pname = name or getattr(program, "__name__", None) or type(program).__name__
        self._native.add_python_program(task, pname, _wrap_python(program))
        self._identity.update(_source_identity(program))
        self._programs.append((pname, task, "python"))
        return pname

    def add_driver(self, driver: Any) -> None:
        """Attaches an I/O driver (a native driver object, e.g. from ``softplc.io``)."""
        native = getattr(driver, "_native_driver", driver)
        if not isinstance(native, _native.NativeDriver):
            raise ConfigError(f"{driver!r} is not a softplc driver")
        self._native.add_driver(native)

    def set_retain(
        self,
        directory: str | os.PathLike[str],
        *,
        name: str,
        cadence: Duration = "1s",
        restart: Literal["warm", "cold", "origin"] = "warm",
        signature: str | None = None,
    ) -> None:
        """Keeps the retained and persistent variables (``Memory(..., retain=True)``,
        ``persistent=True``) in ``<directory>/<name>.retain.0|1``, written atomically
        every ``cadence`` and on every clean stop (see docs/programs.md, "Retain and
        persistent").

        Args:
            restart: ``warm`` keeps retain and persistent values, ``cold`` keeps only
                persistent ones, ``origin`` starts every variable afresh and clears
                the files.
            signature: what identifies the program (a changed program resets retain
                variables, persistent ones migrate). Default: a hash of the compiled
                programs and of the Python programs' source, taken at :meth:`start`.

        Example:
            >>> import tempfile
            >>> from softplc import Engine, DINT
            >>> d = tempfile.mkdtemp()
            >>> with Engine(clock="virtual") as plc:
            ...     plc.declare("count", "memory", DINT, retain="retain")
            ...     plc.add_task("main", period="10ms")
            ...     plc.set_retain(d, name="demo")
            ...     plc.start()
            ...     plc.write("count", 41)
            ...     _ = plc.run_cycles(1)
            >>> with Engine(clock="virtual") as plc:
            ...     plc.declare("count", "memory", DINT, retain="retain")
            ...     plc.add_task("main", period="10ms")
            ...     plc.set_retain(d, name="demo")
            ...     plc.start()
            ...     plc.read("count")
            41
        """
        cadence_ns = _positive(cadence, "retain cadence")
        if restart not in ("warm", "cold", "origin"):
            raise ConfigError(f"restart must be warm, cold or origin, got {restart!r}")
        self._retain = (os.fspath(directory), f"{name}.retain", cadence_ns, restart, signature)

    def retain_status(self) -> dict[str, Any] | None:
        """What retain did at start (``report``: restored, reset with why, dropped,
        warnings about damaged files) and does (``saves``, ``last_seq``, ``error``);
        None before :meth:`start`."""
        st = self._native.retain_status()
        return None if st is None else dict(st)

    def set_plant(self, plant: Any) -> None:
        """Sets the plant model of the simulation driver: an object with
        ``step(io, dt)`` (or a callable ``f(io, dt)``), called every cycle before the
        programs with the outputs of the previous cycle; ``dt`` is in seconds."""
        step = getattr(plant, "step", plant)
        if not callable(step):
            raise ConfigError(f"plant {plant!r} has no step(io, dt) method")
        self._plant = plant
        self._native.set_plant(step)

    # -- life cycle ---------------------------------------------------------------

    def start(self, *, run: bool = True) -> None:
        """Builds the image, binds programs and drivers, and starts (in RUN, or STOP
        with ``run=False``). On error nothing is left running."""
        if not self._tasks:
            raise ConfigError("the engine has no task: add a program or a task first")
        # Bind declared programs before the scan thread can call them.
        try:
            if self._retain is not None:
                directory, stem, cadence_ns, restart, signature = self._retain
                self._native.set_retain(
                    directory,
                    stem,
                    cadence_ns=cadence_ns,
                    level=restart,
                    signature=signature or self._identity.hexdigest(),
                )
            self._variables = list(self._native.layout_preview())
            self._var_index = {v["name"]: v["index"] for v in self._variables}
            for obj, names in self._bind:
                authoring.bind(obj, {attr: self._var_index[full] for attr, full in names.items()})
            if self.clock == "real" and any(m != "compiled" for _, _, m in self._programs):
                # Python programs wait for the GIL at each cycle; another busy Python
                # thread hands it over only every switch interval (5 ms by default).
                # Shorten it so the wait stays well inside one cycle.
                fastest = min(self._periods.values())
                wanted = max(fastest / 4e9, 50e-6)
                if sys.getswitchinterval() > wanted:
                    self._switch_interval = sys.getswitchinterval()
                    sys.setswitchinterval(wanted)
            self._native.start(run)
            _LIVE.add(self)
        except BaseException:
            self._closed = True
            self._native.close()
            raise
        rt = self._native.rt_status()
        if rt and rt["degraded"]:
            warnings.warn(
                "real-time set-up degraded: " + "; ".join(rt["degraded"]),
                RealtimeWarning,
                stacklevel=2,
            )

    def run_cycles(self, n: int) -> int:
        """Virtual time: runs ``n`` cycles of the first task (other tasks run as their
        periods fall in between). Returns
        the virtual time reached (ns)."""
        if n < 0:
            raise ConfigError(f"run_cycles: n must be >= 0, got {n}")
        return int(self._native.run_cycles(n))

    def run_for(self, duration: Duration) -> str:
        """Runs for a duration. Virtual time: every cycle scheduled in it, at full speed.
        Real time: waits with the GIL released (Ctrl-C raises KeyboardInterrupt).
        Returns why it returned: ``"time"``."""
        d = parse_duration(duration, what="duration")
        if d < 0:
            raise ConfigError(f"duration must not be negative (got {duration!r})")
        if self.clock == "virtual":
            self._native.run_virtual_for(d)
            return "time"
        return str(self._native.wait(d, None, False))

    def wait(
        self,
        *,
        duration: Duration | None = None,
        cycles: int | None = None,
        stop_on_fault: bool = False,
    ) -> str:
        """Real time: blocks until ``duration`` passed, at least ``cycles`` more cycles
        of the first task ran (checked every few milliseconds), or (with
        ``stop_on_fault``) the engine faulted. Returns ``"time"``, ``"cycles"``,
        ``"fault"``, or ``"stopped"`` when the scan has ended."""
        if self.clock == "virtual":
            raise StateError(
                "wait() is for real time; a virtual engine advances only in "
                "run_cycles() and run_for()"
            )
        d = None if duration is None else parse_duration(duration, what="duration")
        if d is not None and d < 0:
            raise ConfigError(f"duration must not be negative (got {duration!r})")
        if cycles is not None and cycles < 0:
            raise ConfigError(f"cycles must not be negative (got {cycles})")
        return str(self._native.wait(d, cycles, stop_on_fault))

    def close(self) -> None:
        """Stops: outputs take their safe values in a last cycle, the scan thread is
        joined, drivers are stopped. Idempotent.

        Bounded in time whatever the programs do: if the scan is still inside a cycle
        after 0.5 s (Python code that never returns), its outputs are forced to their
        safe values through the drivers, the engine enters FAULT and the Python code is
        interrupted with :class:`~softplc.WatchdogInterrupt`; code that still does not
        return within 1.5 s more is abandoned (:attr:`scan_abandoned`).
        """
        if not self._closed:
            self._closed = True
            self._native.close()
            if self._native.scan_abandoned:
                _ABANDONED.append(self)
            if self._switch_interval is not None:
                sys.setswitchinterval(self._switch_interval)
                self._switch_interval = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ----------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"RUN"``, ``"STOP"``, ``"FAULT"`` (``"CONFIG"`` before start)."""
        return str(self._native.state)

    def stop(self) -> None:
        """Enters STOP at the next cycle: programs pause, outputs go safe."""
        self._native.set_stop()

    def run(self) -> None:
        """Enters RUN from STOP at the next cycle."""
        self._native.set_run()

    def clear_fault(self) -> None:
        """Leaves FAULT for STOP at the next cycle (then :meth:`run` to resume)."""
        self._native.clear_fault()

    @property
    def scan_abandoned(self) -> bool:
        """True when :meth:`close` had to abandon a scan thread stuck in Python code that
        never returned, not even to :class:`~softplc.WatchdogInterrupt` (code that
        swallows ``BaseException`` in a loop). Its outputs were made safe first. That
        thread may still run Python code, so the process should end soon: at exit, an
        abandoned scan makes softplc end the process with ``os._exit(3)`` rather than
        let the interpreter shut down under a thread it cannot stop.
        """
        return bool(self._native.scan_abandoned)

    @property
    def fault(self) -> dict[str, Any] | None:
        """The fault (kind, task, source, cycle, t_ns, started_ns, message, summary), or
        None. ``started_ns`` is when the faulting cycle started, ``t_ns`` when the fault
        was detected (for a watchdog fault: when the watchdog fired)."""
        f = self._native.fault()
        return dict(f) if f is not None else None

    # -- variables ------------------------------------------------------------------

    def read(self, name: str) -> Any:
        """Reads a variable (full name, unique bare name, or direct address) as of the
        last finished cycle. A variable of an enumeration reads as its member."""
        v = self._native.read(name)
        e = self._enum_of(name)
        if e is not None and isinstance(v, int):
            with contextlib.suppress(ValueError):
                return e(v)
        return v

    def write(self, name: str, value: Any) -> None:
        """Writes a value once; it lands at the start of the next cycle, after inputs
        are latched. An input no driver supplies keeps it.

        An external write: a value outside the variable's ``min``/``max``, a value that
        is not a member of its enumeration (a member, its name or its value may be
        written), or any value for a variable declared ``writable=False``, raises
        :class:`~softplc.InvalidValue` and nothing is written."""
        self._native.write(name, self._enum_value(name, value))

    def force(self, name: str, value: Any) -> None:
        """Forces a variable: held before and after the programs until :meth:`unforce`."""
        self._native.force(name, self._enum_value(name, value))

    def _enum_of(self, name: str) -> type[enum.IntEnum] | None:
        """The enumeration of the variable ``name`` names, or None."""
        if not self._enums:
            return None
        e = self._enums.get(name)
        if e is None:
            try:
                e = self._enums.get(self._native.resolve(name))
            except SoftPlcError:
                return None
        return e

    def _enum_value(self, name: str, value: Any) -> Any:
        """A member's name written to an enumeration variable, as its value."""
        e = self._enum_of(name) if isinstance(value, str) else None
        if e is None:
            return value
        try:
            return int(e[value])
        except KeyError:
            members = ", ".join(m.name for m in e)
            raise InvalidValue(
                f"{name} ({e.__name__}): {value!r} is not a member (members: {members})"
            ) from None

    @property
    def enum_labels(self) -> dict[str, dict[int, str]]:
        """Per variable of an enumeration type, the name of each value (what traces
        record, so that ``softplc trace show`` prints names)."""
        return {n: {int(m): m.name for m in e} for n, e in self._enums.items()}

    def unforce(self, name: str | None = None) -> None:
        """Releases one force, or all with no name."""
        self._native.unforce(name)

    @property
    def forced(self) -> dict[str, Any]:
        """The forced variables and their values."""
        return dict(self._native.forced())

    def checkpoint(self) -> Checkpoint:
        """Virtual time, between cycles: the engine's complete state (image, program
        and function-block state with running timers, task timing, forces, held
        qualities, Python programs' blocks and the plant model), to :meth:`restore`
        into this engine or one built the same way, which then continues bit for bit
        like this one from here.

        Example:
            >>> from softplc import Engine, DINT
            >>> def count(io):
            ...     io.n = io.n + 1
            >>> def make():
            ...     e = Engine(clock="virtual", cycle="10ms")
            ...     e.declare("n", "memory", DINT)
            ...     e.add_program(count)
            ...     e.start()
            ...     return e
            >>> a = make(); _ = a.run_cycles(5); cp = a.checkpoint()
            >>> _ = a.run_cycles(5); a.read("n")
            10
            >>> b = make(); b.restore(cp); _ = b.run_cycles(5); b.read("n")
            10
            >>> a.close(); b.close()
        """
        native = self._native.checkpoint()
        python = copy.deepcopy([(name, _state_of(obj)) for name, obj in self._python_objects()])
        return Checkpoint(native, python)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Puts back a :meth:`checkpoint` (of this engine or one built the same way)."""
        if not isinstance(checkpoint, Checkpoint):
            raise ConfigError(f"{checkpoint!r} is not a softplc checkpoint")
        mine = self._python_objects()
        if [k for k, _ in mine] != [k for k, _ in checkpoint.python]:
            raise ConfigError(
                "the checkpoint was taken on an engine with other Python programs or plant"
            )
        self._native.restore(checkpoint.native)
        # A copy each time: one checkpoint can be restored again and again.
        for (_, obj), (_, saved) in zip(mine, copy.deepcopy(checkpoint.python), strict=True):
            obj.__dict__.update(saved)

    def _python_objects(self) -> list[tuple[str, Any]]:
        """The Python objects that hold machine state: reference-mode programs (their
        blocks and other attributes; their variables live in the image) and the plant
        model."""
        out = []
        reference = {n for n, _, m in self._programs if m != "compiled"}
        for obj, _ in self._bind:
            name = authoring.instance_name(obj)
            if name in reference:
                out.append((name, obj))
        if self._plant is not None and hasattr(self._plant, "__dict__"):
            out.append(("<plant>", self._plant))
        return out

    def hold_quality(
        self,
        name: str,
        quality: Literal["good", "bad", "stale"] | None,
        *,
        age: Duration | None = None,
    ) -> None:
        """Holds an input's quality (and, with ``age``, the age of its data, growing
        from now) from the next cycle on, whatever drivers report, until released with
        ``quality=None``: fault injection for test benches. Programs see it through
        ``QUALITY()``/``AGE()`` exactly as from a failing device.

        Example:
            >>> from softplc import Engine, REAL
            >>> with Engine(clock="virtual") as plc:
            ...     plc.declare("level", "input", REAL)
            ...     plc.add_task("main", period="10ms")
            ...     plc.start()
            ...     _ = plc.run_cycles(500)             # 5 s of virtual time
            ...     plc.hold_quality("level", "stale", age="2s")
            ...     _ = plc.run_cycles(1)
            ...     plc.quality("level"), plc.age_ns("level")
            ('stale', 2000000000)

        In virtual time the clock starts at 0: an age reaches back at most to there.
        """
        age_ns = None if age is None else parse_duration(age, what="age")
        if age_ns is not None and age_ns < 0:
            raise ConfigError(f"age must not be negative (got {age!r})")
        self._native.hold_quality(name, quality, age_ns)

    def quality(self, name: str) -> str:
        """Data quality of an input: ``good``, ``bad`` or ``stale``."""
        return str(self._native.quality(name))

    def age_ns(self, name: str) -> int:
        """Age of a variable's data at the last finished cycle (ns)."""
        return int(self._native.age_ns(name))

    def _refresh_variables(self) -> None:
        """Re-reads the variables after an online change grew the layout."""
        self._variables = list(self._native.variables())
        self._var_index = {v["name"]: v["index"] for v in self._variables}

    @property
    def variables(self) -> list[dict[str, Any]]:
        """The variables with their addresses (after :meth:`start`)."""
        if self._variables is None:
            raise StateError("the engine is not started")
        return [dict(v) for v in self._variables]

    def snapshot(self) -> Snapshot:
        """A consistent copy of the whole image as NumPy arrays (never memory the scan
        thread writes)."""
        return Snapshot(self._native.snapshot(), self.variables)

    # -- statistics ---------------------------------------------------------------------

    def stats(self) -> list[dict[str, Any]]:
        """Per-task statistics: cycles, overruns, and latency/exec/period percentiles
        (``p50_ns``, ``p99_ns``, ``p999_ns``, ``max_ns``)."""
        return [dict(s) for s in self._native.stats()]

    def reset_stats(self) -> None:
        """Clears statistics (e.g. after a warm-up)."""
        self._native.reset_stats()

    def events(self, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Engine events since a sequence number, and the next number to ask for.

        Each event is a dict: ``t_ns``, ``kind`` (``state``, ``fault``, ``overrun``,
        ``force``, ``unforce``, ``write``, ``io``, ``info``), ``task`` (index, -1 for
        none), ``a`` and ``b`` (kind-specific numbers), ``text``, and ``io``: for kind
        ``io`` the typed driver event (``kind``, ``link``, ``device``, ``suppressed``;
        see docs/trace-format.md, section 10), None otherwise.
        """
        evs, nxt = self._native.events(since)
        return [dict(e) for e in evs], int(nxt)

    def status(self) -> dict[str, Any]:
        """Everything a status display needs, as plain data."""
        return {
            "state": self.state,
            "clock": self.clock,
            "fault": self.fault,
            "realtime": self._native.rt_status(),
            "forced": self.forced,
            "programs": [{"name": n, "task": t, "mode": m} for n, t, m in self._programs],
            "tasks": self.stats(),
            "drivers": {
                name: json.loads(text) for name, text in self._native.driver_status().items()
            },
            "retain": self.retain_status(),
        }

    # -- tracing ----------------------------------------------------------------------

    def start_trace(self, path: Any, **options: Any) -> Any:
        """Starts recording a trace file on the started engine; returns the recorder.

        Options are those of :func:`softplc.trace.start_trace`: ``signals``,
        ``decimate``, ``mode`` (``"continuous"`` or ``"triggered"``; by default
        triggered exactly when a ``trigger`` is given), ``trigger``, ``pre``, ``post``,
        ``captures``, ``max_buffer_bytes``, ...
        """
        return trace.start_trace(self, path, **options)

    def stop_trace(self) -> dict[str, int]:
        """Stops the trace started with :meth:`start_trace`; returns its counters."""
        result: dict[str, int] = trace.stop_trace(self)
        return result

    @property
    def native(self) -> Any:
        """The private native engine (for softplc's own extension modules)."""
        return self._native


# Engines still running when the interpreter exits are closed first, so that their
# outputs reach their safe values while Python threads can still run.
_LIVE: weakref.WeakSet[Engine] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    abandoned = False
    for e in list(_LIVE):
        e.close()
        abandoned |= e.scan_abandoned
    for e in _ABANDONED:
        abandoned |= e.scan_abandoned
    if abandoned:
        # A scan thread stuck in Python code that ignores WatchdogInterrupt still runs;
        # interpreter shutdown would end it with pthread_exit, which aborts the process
        # inside Rust. End here instead, after flushing what was written.
        sys.stderr.write(
            "softplc: a scan thread stuck in Python code was abandoned; exiting without "
            "interpreter shutdown\n"
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(3)


# Closed engines that abandoned their scan thread (checked at exit, see above).
_ABANDONED: list[Engine] = []


def _check_reference_scan(obj: Any) -> None:
    """In the class form ``scan`` takes only ``self`` (the compiler says the same)."""
    import inspect

    params = list(inspect.signature(type(obj).scan).parameters.values())[1:]
    extra = [p.name for p in params if p.default is inspect.Parameter.empty]
    if extra:
        raise ProgramError(
            f"program {authoring.instance_name(obj)}: scan(self) takes no other argument, but "
            f"it declares {', '.join(extra)} (in the class form the variables are "
            "attributes: self.level, not io.level)"
        )


def _state_of(obj: Any) -> dict[str, Any]:
    """An object's own attributes, without softplc's bookkeeping (bound indices, the
    scan's I/O object)."""
    return {k: v for k, v in obj.__dict__.items() if not k.startswith("_softplc_")}


def _source_identity(obj: Any) -> bytes:
    """The source text of a Python program (its module's file), for the identity that
    tells retain whether the program changed; its name when it has no readable source."""
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    try:
        return Path(path).read_bytes() if path else repr(obj).encode()
    except OSError:
        return repr(obj).encode()


def _reference_runner(obj: Any) -> Callable[[Any], None]:
    def run(io: Any) -> None:
        authoring.reference_scan(obj, io)

    return run
