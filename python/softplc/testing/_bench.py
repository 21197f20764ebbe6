"""The test bench: a virtual-time engine driven by a test that reads like a test plan.

Example:
    >>> b = Bench.from_file("programs/tank.py", record=False)
    >>> b.set(enable=False)                  # inputs and setpoints by name
    >>> b.run_for("10s")                     # virtual time: at full speed
    >>> b["pump"], round(b["level"], 1)      # outputs by short name
    (False, 0.0)
    >>> b.set(enable=True)
    >>> b.run_until("pump", timeout="1s")    # virtual ns it took
    10000000
    >>> b.close()
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from softplc import trace as st
from softplc._names import NameIndex, NameLookupError
from softplc.engine import Duration, Engine, Mode
from softplc.errors import ConfigError, RuntimeFaulted, StateError
from softplc.loader import ProgramFile, load_program_file
from softplc.stimulus import DRIVABLE_AREAS, Schedule, Stimulus, load_stimulus
from softplc.testing import _registry
from softplc.testing._errors import BenchTimeout, FaultNotRaised, UnknownName
from softplc.testing._expr import Expr, ScalarMonitor
from softplc.testing._recording import Recording
from softplc.testing._timeline import Timeline
from softplc.timefmt import format_duration, parse_duration

__all__ = ["FILE_PLANT", "Bench", "CaughtFault", "bench_from"]


class _FilePlant:
    def __repr__(self) -> str:
        return "FILE_PLANT"


#: Default of ``plant=``: a program file's own ``PLANT``. Pass ``plant=None`` for none.
FILE_PLANT: Any = _FilePlant()

Condition = str | Callable[["Bench"], Any]


@dataclasses.dataclass
class CaughtFault:
    """What :meth:`Bench.expect_fault` caught: the fault dict (``kind``, ``task``,
    ``source``, ``cycle``, ``t_ns``, ``message``, ``summary``) once the block ran."""

    fault: dict[str, Any] | None = None


def _fault_key(f: Mapping[str, Any]) -> tuple[Any, ...]:
    return (f.get("kind"), f.get("task"), f.get("cycle"), f.get("t_ns"))


def _seconds(t_ns: int) -> str:
    return f"{t_ns / 1e9:.3f} s"


def _duration_text(value: Duration) -> str:
    return repr(value) if isinstance(value, str) else format_duration(parse_duration(value))


# Program files loaded once per path and modification time; each bench gets its own
# copies of the file's program instances and plant (a plant keeps state).
_FILES: dict[tuple[str, int], ProgramFile] = {}


def _fresh_program_file(path: Path) -> ProgramFile:
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    pf = _FILES.get(key)
    if pf is None:
        pf = load_program_file(path)
        _FILES[key] = pf
    try:
        tasks = [dataclasses.replace(t, programs=copy.deepcopy(t.programs)) for t in pf.tasks]
        return dataclasses.replace(
            pf,
            programs=copy.deepcopy(pf.programs),
            tasks=tasks,
            plant=copy.deepcopy(pf.plant),
        )
    except Exception:  # noqa: BLE001 (something in the file does not copy: load it anew)
        return load_program_file(path)


class Bench:
    """A started virtual-time engine with the verbs of a test plan.

    Build one with :meth:`from_file`, :meth:`from_programs` or :meth:`from_engine`
    (or the pytest fixture ``plc``). Every run call (:meth:`run_for`,
    :meth:`run_cycles`, :meth:`run_until`, :meth:`pulse`, :meth:`play`) raises
    :class:`softplc.RuntimeFaulted` when the engine enters FAULT during it, unless the
    test asks for the fault (``expect_fault=True`` or :meth:`expect_fault`). Names are
    full names (``tank.pump``), a last part only one variable has (``pump``) or a
    direct address; an unknown name raises :class:`UnknownName` with the closest
    names.

    While it runs, a bench records every cycle into a trace file (unless
    ``record=False``); :meth:`recorded` gives the run for temporal assertions, and the
    pytest plugin keeps the trace of a failing test.

    Coming in a later version (the names are reserved): ``inject`` (input quality and
    age, silent devices), ``checkpoint``/``fork``, and golden traces.

    Args:
        engine: a virtual-time engine, configured; started here if it is not yet.
        record: record a trace while running.
        signals: the signals to record (names or globs, as ``Engine.start_trace``
            takes them); all variables by default.
        trace_dir: folder for the trace files; by default a temporary one (inside
            pytest: the test's, kept when the test fails).
        name: stem of the trace file names.
        program_path: the program file, noted in the trace header.
        own_engine: close the engine with the bench.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        record: bool = True,
        signals: str | Sequence[str] | None = None,
        trace_dir: str | Path | None = None,
        name: str = "bench",
        program_path: str | Path | None = None,
        own_engine: bool = True,
    ) -> None:
        if engine.clock != "virtual":
            raise ConfigError(
                "a test bench runs in virtual time: build the engine with clock='virtual'"
            )
        self._engine = engine
        self._native = engine.native
        self._own_engine = own_engine
        self._closed = False
        if engine.state == "CONFIG":
            try:
                engine.start()
            except BaseException:
                if own_engine:
                    engine.close()
                raise
        self._vars = {v["name"]: v for v in engine.variables}
        self._index = NameIndex(self._vars)
        self._resolved: dict[str, str] = {}  # names as a test wrote them -> full names
        self._period_ns = int(engine.stats()[0]["period_ns"])
        self._acknowledged: tuple[Any, ...] | None = None
        f = engine.fault
        if f is not None:  # a fault before the bench existed is not the bench's to report
            self._acknowledged = _fault_key(f)
        self._expecting: list[CaughtFault] = []
        self._reads: set[str] | None = None
        # Recording: segment files, one per stretch of running between two reads.
        self._record = record
        self._signals = signals
        self._program_path = str(program_path) if program_path is not None else None
        self._segments: list[str] = []
        self._recorder: Any = None
        self._kept = False
        self._scope = _registry.current()
        self._own_dir = False
        if trace_dir is not None:
            self._dir = Path(trace_dir)
            self._dir.mkdir(parents=True, exist_ok=True)
            self._name = name
        elif self._scope is not None:
            self._dir = self._scope.directory()
            self._name = self._scope.bench_name(name)
        else:
            self._dir = Path(tempfile.mkdtemp(prefix="softplc-bench-"))
            self._own_dir = True
            self._name = name
        if self._scope is not None:
            self._scope.add(self)
        if record:
            try:
                self._start_segment()
            except BaseException:
                self.close()
                raise

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        cycle: Duration = "10ms",
        mode: Mode = "auto",
        plant: Any = FILE_PLANT,
        watchdog: Duration | None = None,
        overrun: str = "skip",
        record: bool = True,
        signals: str | Sequence[str] | None = None,
        trace_dir: str | Path | None = None,
    ) -> Bench:
        """A bench running a program file, as ``softplc run --virtual`` would: its
        tasks, programs and plant model (``plant=`` another one, or None for none).

        Example:
            >>> with Bench.from_file("programs/blink.py", cycle="100ms", record=False) as b:
            ...     b.run_for("600ms")
            ...     b["lamp"]
            True
        """
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"program file {str(path)!r} does not exist")
        pf = _fresh_program_file(p)
        if plant is not FILE_PLANT:
            pf.plant = plant() if isinstance(plant, type) else plant
        engine = pf.build_engine(
            clock="virtual", cycle=cycle, mode=mode, watchdog=watchdog, overrun=overrun
        )
        return cls(
            engine,
            record=record,
            signals=signals,
            trace_dir=trace_dir,
            name=p.stem,
            program_path=p,
        )

    @classmethod
    def from_programs(
        cls,
        *programs: Any,
        plant: Any = None,
        cycle: Duration = "10ms",
        mode: Mode = "auto",
        watchdog: Duration | None = None,
        overrun: str = "skip",
        record: bool = True,
        signals: str | Sequence[str] | None = None,
        trace_dir: str | Path | None = None,
    ) -> Bench:
        """A bench running program instances (or ``@program`` classes, or callables
        ``f(io)``) in one task ``main`` of period ``cycle``, in order, with an optional
        plant model (an object with ``step(io, dt)``, or its class)."""
        if not programs:
            raise ConfigError("from_programs needs at least one program")
        engine = Engine(clock="virtual", cycle=cycle)
        try:
            engine.add_task("main", period=cycle, watchdog=watchdog, overrun=overrun)
            names = [engine.add_program(p, task="main", mode=mode) for p in programs]
            if plant is not None:
                engine.set_plant(plant() if isinstance(plant, type) else plant)
        except BaseException:
            engine.close()
            raise
        return cls(engine, record=record, signals=signals, trace_dir=trace_dir, name=names[0])

    @classmethod
    def from_engine(
        cls,
        engine: Engine,
        *,
        record: bool = True,
        signals: str | Sequence[str] | None = None,
        trace_dir: str | Path | None = None,
        own_engine: bool = False,
    ) -> Bench:
        """A bench around an engine built elsewhere (virtual time; started here if it
        is not yet). The engine stays open when the bench closes unless
        ``own_engine``."""
        return cls(
            engine, record=record, signals=signals, trace_dir=trace_dir, own_engine=own_engine
        )

    # -- names and values ---------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine (for what the bench does not wrap)."""
        return self._engine

    @property
    def variables(self) -> list[dict[str, Any]]:
        """The engine's variables with their areas, types and addresses."""
        return [dict(v) for v in self._vars.values()]

    @property
    def period_ns(self) -> int:
        """Period of the first task."""
        return self._period_ns

    def resolve(self, name: str) -> str:
        """The full name of a variable (``pump`` -> ``tank.pump``, ``%QX0.0`` ->
        ``tank.pump``); :class:`UnknownName` with suggestions when there is none."""
        full = self._resolved.get(name)
        if full is not None:
            return full
        full = self._lookup(name)
        self._resolved[name] = full
        return full

    def _lookup(self, name: str) -> str:
        if not isinstance(name, str):
            raise TypeError(f"a variable name is a string, got {name!r}")
        if name in self._index:
            return name
        if name.startswith("%"):
            hits = [n for n, v in self._vars.items() if v["address"].upper() == name.upper()]
            if hits:
                return str(hits[0])
        try:
            return self._index.resolve(name)
        except NameLookupError as e:
            raise UnknownName(str(e)) from None

    def read(self, name: str) -> Any:
        """A variable's value at the end of the last cycle."""
        full = self.resolve(name)
        if self._reads is not None:
            self._reads.add(full)
        return self._native.read(full)

    def __getitem__(self, name: str) -> Any:
        return self.read(name)

    def values(self, *names: str) -> dict[str, Any]:
        """``{full name: value}`` of the named variables (all when none is named)."""
        full = [self.resolve(n) for n in names] if names else list(self._vars)
        return {n: self._engine.read(n) for n in full}

    def _pairs(
        self, values: Mapping[str, Any] | None, kw: Mapping[str, Any]
    ) -> list[tuple[str, Any]]:
        items = list((values or {}).items()) + list(kw.items())
        if not items:
            raise ConfigError("name at least one variable and its value")
        return [(self.resolve(n), v) for n, v in items]

    def set(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> None:
        """Writes inputs and memory variables (setpoints); the values land at the start
        of the next cycle, and an input no driver or plant writes keeps its value.
        Names with dots go in a dict: ``bench.set({"tank.level": 30.0})``.

        Outputs are refused: the programs write them every cycle (use :meth:`force`).
        """
        pairs = self._pairs(values, kw)
        for full, _ in pairs:
            area = self._vars[full]["area"]
            if area not in DRIVABLE_AREAS:
                raise ConfigError(
                    f"{full} is an {area} variable, written by the programs every cycle; "
                    "set() writes inputs and memory (force() holds an output)"
                )
        for full, value in pairs:
            self._engine.write(full, value)

    def force(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> None:
        """Forces variables (outputs too): held before and after the programs until
        :meth:`unforce`."""
        for full, value in self._pairs(values, kw):
            self._engine.force(full, value)

    def unforce(self, *names: str) -> None:
        """Releases the named forces, or all of them when no name is given."""
        if not names:
            self._engine.unforce()
            return
        for n in names:
            self._engine.unforce(self.resolve(n))

    @property
    def forced(self) -> dict[str, Any]:
        """The forced variables and their values."""
        return self._engine.forced

    # -- time -----------------------------------------------------------------------------

    @property
    def time_ns(self) -> int:
        """Virtual time: the start of the next cycle (0 before the first)."""
        t = self._engine.native.virtual_now()
        return int(t) if t is not None else 0

    @property
    def cycle(self) -> int:
        """Cycles of the first task run so far."""
        return int(self._engine.stats()[0]["cycles"])

    @property
    def state(self) -> str:
        """``RUN``, ``STOP`` or ``FAULT``."""
        return self._engine.state

    @property
    def fault(self) -> dict[str, Any] | None:
        """The engine's fault (see :attr:`softplc.Engine.fault`), or None."""
        return self._engine.fault

    # -- running ----------------------------------------------------------------------------

    def _start_segment(self) -> None:
        k = len(self._segments) + 1
        path = self._dir / (f"{self._name}.trace" if k == 1 else f"{self._name}.{k}.trace")
        self._recorder = self._engine.start_trace(
            path, signals=self._signals, program_path=self._program_path
        )
        self._segments.append(str(path))

    def _before_run(self) -> None:
        if self._closed:
            raise StateError("the bench is closed")
        if self._record and self._recorder is None:
            self._start_segment()

    def _check_fault(self, during: Callable[[], str], expect: bool) -> dict[str, Any] | None:
        """The new fault, if any: acknowledged when expected, raised otherwise."""
        __tracebackhide__ = True  # pytest shows the caller's line
        if self._native.state != "FAULT":  # cheap, and the common case
            return None
        f = self._engine.fault
        if f is None or _fault_key(f) == self._acknowledged:
            return None
        self._acknowledged = _fault_key(f)
        if expect or self._expecting:
            for c in self._expecting:
                c.fault = f
            return f
        self._kept = True
        err = RuntimeFaulted(
            f"{during()}: the engine entered FAULT at cycle {f['cycle']} "
            f"(t = {_seconds(int(f['t_ns']))}): {f['summary']}{self._trace_note()}"
        )
        # The fault's parts as attributes, for tests that catch it.
        err.fault = dict(f)  # type: ignore[attr-defined]
        err.kind = f["kind"]  # type: ignore[attr-defined]
        err.cause = f["message"]  # type: ignore[attr-defined]
        err.program = f["source"]  # type: ignore[attr-defined]
        err.task = f["task"]  # type: ignore[attr-defined]
        err.cycle = f["cycle"]  # type: ignore[attr-defined]
        err.t_ns = f["t_ns"]  # type: ignore[attr-defined]
        raise err

    def _after_run(self, during: Callable[[], str], expect: bool) -> None:
        """Reports a fault of the run that just ended. ``during`` names the call; it
        is only formatted for a message (a test may step a million single cycles)."""
        __tracebackhide__ = True  # pytest shows the caller's line
        f = self._check_fault(during, expect)
        if expect and f is None:
            raise FaultNotRaised(
                f"{during()}: expected the engine to enter FAULT, but it is in "
                f"{self._engine.state} at cycle {self.cycle} (t = {_seconds(self.time_ns)})"
            )

    def _faulted(self) -> bool:
        if self._native.state != "FAULT":
            return False
        f = self._engine.fault
        return f is not None and _fault_key(f) != self._acknowledged

    def _run_ns(self, duration_ns: int) -> None:
        """Runs in slices, so that a fault ends the run soon after it happens."""
        end = self.time_ns + duration_ns
        slice_ns = 100 * self._period_ns
        while self.time_ns < end:
            self._engine.run_for(min(end - self.time_ns, slice_ns))
            if self._faulted():
                return

    def run_for(self, duration: Duration, *, expect_fault: bool = False) -> None:
        """Runs every cycle that starts within ``duration`` (``"2s"``, int ns, or a
        ``timedelta``) of virtual time. Raises :class:`softplc.RuntimeFaulted` at a
        fault (which ends the run), unless ``expect_fault``, which then requires one
        (:class:`FaultNotRaised` otherwise)."""
        __tracebackhide__ = True  # pytest shows the caller's line
        d = parse_duration(duration, what="run_for duration")
        if d < 0:
            raise ConfigError(f"run_for: the duration must not be negative (got {duration!r})")
        self._before_run()
        self._run_ns(d)
        self._after_run(lambda: f"run_for({_duration_text(duration)})", expect_fault)

    def run_cycles(self, n: int, *, expect_fault: bool = False) -> None:
        """Runs ``n`` cycles of the first task (faults as :meth:`run_for`)."""
        __tracebackhide__ = True  # pytest shows the caller's line
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"run_cycles: n must be an integer >= 0 (got {n!r})")
        self._before_run()
        left = n
        while left > 0 and not self._faulted():
            k = min(left, 100)
            self._native.run_cycles(k)
            left -= k
        self._after_run(lambda: f"run_cycles({n})", expect_fault)

    def step(self) -> None:
        """Runs one cycle of the first task."""
        __tracebackhide__ = True  # pytest shows the caller's line
        self.run_cycles(1)

    def _condition(
        self, condition: Condition
    ) -> tuple[str, Callable[[], bool], Callable[[], list[str]]]:
        """(text, check, names involved) for a condition."""
        if isinstance(condition, str):
            expr = Expr.parse(condition)
            full = {n: self.resolve(n) for n in expr.names}
            monitor = ScalarMonitor(expr)

            def check() -> bool:
                return bool(monitor.step({n: self._engine.read(f) for n, f in full.items()}))

            return condition, check, lambda: list(dict.fromkeys(full.values()))
        if callable(condition):
            reads: set[str] = set()

            def check_callable() -> bool:
                self._reads = reads
                try:
                    return bool(condition(self))
                finally:
                    self._reads = None

            text = getattr(condition, "__name__", repr(condition))
            return text, check_callable, lambda: sorted(reads)
        raise ConfigError(
            f"a condition is a string such as 'pump and level > 50', or a callable taking "
            f"the bench (got {condition!r})"
        )

    def run_until(
        self, condition: Condition, *, timeout: Duration = "5s", expect_fault: bool = False
    ) -> int:
        """Runs cycle by cycle until ``condition`` holds after a cycle; returns the
        virtual time it took (ns; 0 when it held already).

        ``condition`` is a string over variable names (``"pump and level > 50"``,
        ``"rose(alarm)"``: see :mod:`softplc.testing` for the language) or a callable
        taking the bench (``lambda b: b["level"] > 50``). At ``timeout`` it raises
        :class:`BenchTimeout` with the time, the cycle and the values of the variables
        the condition reads. A fault raises :class:`softplc.RuntimeFaulted` unless
        ``expect_fault``, which instead ends the wait at the fault.
        """
        __tracebackhide__ = True  # pytest shows the caller's line
        limit = parse_duration(timeout, what="run_until timeout")
        if limit < 0:
            raise ConfigError(f"run_until: the timeout must not be negative (got {timeout!r})")
        text, check, involved = self._condition(condition)
        during = f"run_until({text!r}, timeout={_duration_text(timeout)})"

        def call() -> str:
            return during

        self._before_run()
        start = self.time_ns
        if check():
            return 0
        while self.time_ns - start < limit:
            self._engine.run_cycles(1)
            if self._faulted():
                self._after_run(call, expect_fault)
                return self.time_ns - start
            if check():
                self._after_run(call, expect_fault)
                return self.time_ns - start
        names = involved() or [n for n, v in self._vars.items() if v["area"] == "output"][:12]
        values = {n: self._engine.read(n) for n in names}
        self._kept = True
        shown = "\n".join(f"  {n} = {v!r}" for n, v in values.items())
        raise BenchTimeout(
            f"{during} timed out: still false at cycle {self.cycle} "
            f"(t = {_seconds(self.time_ns)}, {format_duration(self.time_ns - start)} after "
            f"the call):\n{shown}{self._trace_note()}",
            condition=text,
            values=values,
            cycle=self.cycle,
            t_ns=self.time_ns,
        )

    def pulse(
        self, name: str, width: Duration = "100ms", *, value: Any = True, expect_fault: bool = False
    ) -> None:
        """Sets ``name`` to ``value`` (TRUE by default), runs ``width`` of virtual time,
        then writes the value it had back (landing at the next cycle).

        Example:
            >>> with Bench.from_file("programs/traffic_light.py", record=False) as b:
            ...     b.run_for("7s")
            ...     b.pulse("request", "100ms")
            ...     b.read("request")
            True
        """
        __tracebackhide__ = True  # pytest shows the caller's line
        full = self.resolve(name)
        before = self._engine.read(full)
        if self._vars[full]["type"] != "BOOL" and value is True:
            raise ConfigError(f"pulse({name!r}): {full} is not a BOOL; give value=...")
        d = parse_duration(width, what="pulse width")
        if d <= 0:
            raise ConfigError(f"pulse({name!r}): the width must be positive (got {width!r})")
        self.set({full: value})
        self._before_run()
        self._run_ns(d)
        self._after_run(lambda: f"pulse({name!r}, {_duration_text(width)})", expect_fault)
        self.set({full: before})

    def play(
        self,
        stimulus: str | Path | Stimulus | Timeline | Schedule,
        *,
        duration: Duration | None = None,
        expect_fault: bool = False,
    ) -> None:
        """Plays a stimulus from now: a CSV file (the timed or the dense form of
        :mod:`softplc.stimulus`), a :class:`Timeline` from the Hypothesis strategies,
        or a :class:`softplc.stimulus.Schedule`. Runs until it ends (its last row has
        had its cycle), or for ``duration``. Faults as :meth:`run_for`."""
        __tracebackhide__ = True  # pytest shows the caller's line
        if isinstance(stimulus, (str, Path)):
            stimulus = load_stimulus(stimulus)
        if isinstance(stimulus, Stimulus):
            stimulus.bind(self._engine)
            schedule = stimulus.schedule(self._period_ns)
            what = stimulus.path
        elif isinstance(stimulus, Timeline):
            schedule = stimulus.schedule(self._period_ns, resolve=self.resolve)
            what = "timeline"
        elif isinstance(stimulus, Schedule):
            schedule = stimulus
            what = "schedule"
        else:
            raise ConfigError(
                f"play() takes a stimulus file, a Stimulus, a Timeline or a Schedule "
                f"(got {type(stimulus).__name__})"
            )
        for n in schedule.names:
            full = self.resolve(n)
            if self._vars[full]["area"] not in DRIVABLE_AREAS:
                raise ConfigError(
                    f"play({what}): {full} is an output; a stimulus drives inputs and memory"
                )
        self._before_run()
        from softplc.stimulus import Player

        player = Player(self._engine, schedule, should_stop=self._faulted)
        d = schedule.end_ns if duration is None else parse_duration(duration, what="play duration")
        player.advance(max(d, 0))
        self._after_run(lambda: f"play({what})", expect_fault)

    @contextlib.contextmanager
    def expect_fault(self) -> Iterator[CaughtFault]:
        """A block in which a fault is expected: runs inside it do not raise at the
        fault, and the block fails (:class:`FaultNotRaised`) when none happened.

        Example:
            >>> from softplc import INT, Input, Output, program
            >>> @program
            ... class Div:
            ...     d = Input(INT, initial=1)
            ...     q = Output(INT)
            ...     def scan(self):
            ...         self.q = 100 // self.d
            >>> with Bench.from_programs(Div(), mode="reference", record=False) as b:
            ...     b.run_for("1s")
            ...     b.set(d=0)
            ...     with b.expect_fault() as caught:
            ...         b.run_for("1s")
            ...     caught.fault["kind"], caught.fault["cycle"]
            ('program', 100)
        """
        __tracebackhide__ = True  # pytest shows the caller's line
        caught = CaughtFault()
        self._expecting.append(caught)
        try:
            yield caught
            # A fault the runs inside did not look at (the test called the engine).
            self._check_fault(lambda: "expect_fault()", expect=True)
        finally:
            self._expecting.remove(caught)
        if caught.fault is None:
            raise FaultNotRaised(
                f"expect_fault(): the block ran without a fault (state {self._engine.state} at "
                f"cycle {self.cycle}, t = {_seconds(self.time_ns)})"
            )

    def check_no_fault(self) -> None:
        """Raises :class:`softplc.RuntimeFaulted` for a fault no run call reported (the
        test drove the engine directly). The pytest fixture calls it at the end."""
        __tracebackhide__ = True  # pytest shows the caller's line
        self._check_fault(lambda: "at the end of the test", expect=False)

    # -- the recording ------------------------------------------------------------------

    def stop_recording(self) -> None:
        """Closes the current trace file (the next run call starts another)."""
        if self._recorder is not None:
            rec, self._recorder = self._recorder, None
            rec.stop()

    def recorded(self) -> Recording:
        """The run so far, as recorded (every cycle since the bench was made), for the
        temporal assertions or for reading columns."""
        if not self._record:
            raise StateError("this bench does not record (record=False)")
        self.stop_recording()
        return Recording([st.load(p) for p in self._segments])

    @property
    def trace_paths(self) -> list[str]:
        """The trace files recorded so far."""
        return list(self._segments)

    @property
    def kept(self) -> bool:
        """True when the traces are kept after the bench closes."""
        return self._kept

    def keep_traces(self) -> list[str]:
        """Keeps the trace files after the bench closes; returns their paths. Failing
        assertions and faults do this by themselves."""
        self._kept = True
        return self.trace_paths

    def _trace_note(self) -> str:
        if not self._segments:
            return ""
        return "\ntrace: " + ", ".join(self._segments)

    # -- life cycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stops the recording and closes the engine (when the bench owns it).
        Idempotent. Outside pytest, the trace files are deleted unless kept."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop_recording()
        finally:
            if self._own_engine:
                self._engine.close()
            if self._scope is not None:
                self._scope.closed_bench(self)
            elif self._own_dir and not self._kept:
                shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Bench {self._name}: {self._engine.state}, cycle {self.cycle}, "
            f"t = {_seconds(self.time_ns)}>"
        )


def bench_from(
    *sources: Any,
    base: Sequence[Path] = (),
    **options: Any,
) -> Bench:
    """A bench from what a test names: one program file path (looked up as given, then
    in each folder of ``base``), or program instances/classes (``plant=`` then gives
    the plant). Options as :meth:`Bench.from_file` / :meth:`Bench.from_programs`."""
    if len(sources) == 1 and isinstance(sources[0], (str, Path)):
        given = Path(sources[0])
        tried = [given] + [b / given for b in base if not given.is_absolute()]
        for p in tried:
            if p.is_file():
                return Bench.from_file(p, **options)
        folders = dict.fromkeys(str(p.parent.resolve()) for p in tried)
        raise ConfigError(
            f"program file {str(sources[0])!r} not found (looked in: {', '.join(folders)})"
        )
    if any(isinstance(s, (str, Path)) for s in sources):
        raise ConfigError("give one program file, or program instances (not both)")
    if not sources:
        raise ConfigError("name a program file or give program instances")
    if options.get("plant") is FILE_PLANT:
        options["plant"] = None
    return Bench.from_programs(*sources, **options)
