"""Loading a program file: the module that ``softplc run PROGRAM.py`` executes, and
the engine that runs it.

What a program file may define:

* ``@program`` classes: each becomes one program instance in the default task, in the
  order the classes are defined (unless ``PROGRAMS`` or ``TASKS`` says otherwise);
* ``PROGRAMS = [...]``: program instances, classes or plain callables ``f(io)``;
* ``TASKS = [Task("fast", period="1ms", programs=[...]), ...]`` for several tasks;
* a module-level function ``scan(io)``, when the file declares none of the above: the
  file's one program, run as Python;
* module-level ``Input``/``Output``/``Memory`` objects: global variables named after
  the module attribute (for plain-callable programs);
* ``PLANT``: a plant model (an object with ``step(io, dt)``, or its class) for the
  simulation driver.

Example:
    >>> pf = load_program_file("programs/tank.py")
    >>> with pf.build_engine(clock="virtual", cycle="10ms") as plc:
    ...     plc.start()
    ...     _ = plc.run_cycles(100)
    ...     plc.state
    'RUN'
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any, Literal

from softplc import authoring
from softplc.engine import Duration, Engine, Mode, Task
from softplc.errors import ConfigError, ProgramError
from softplc.types import IecType

__all__ = ["ProgramFile", "load_program_file"]


@dataclass
class ProgramFile:
    """What a program file declares, and how to build the engine that runs it."""

    path: Path
    module: ModuleType
    programs: list[Any] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    globals: dict[str, authoring.Var] = field(default_factory=dict)
    plant: Any = None

    def build_engine(
        self,
        *,
        clock: Literal["real", "virtual"] = "real",
        cycle: Duration = "10ms",
        priority: int | None = None,
        watchdog: Duration | None = None,
        watchdog_tolerance: int = 0,
        overrun: str = "skip",
        mode: Mode = "auto",
        drivers: Iterable[Any] = (),
    ) -> Engine:
        """Builds (does not start) an engine that runs this file: its global variables,
        its tasks (or the task ``main`` with period ``cycle``) with their programs, its
        plant model, and ``drivers`` (from :mod:`softplc.io`).

        ``watchdog``, ``watchdog_tolerance`` and ``overrun`` apply to the task ``main``,
        and to each task of ``TASKS`` that leaves its own at the default. ``mode``
        applies to every ``@program`` (``"reference"`` runs them as Python). On error
        nothing is left open.

        Args:
            clock: ``"real"`` or ``"virtual"`` (see :class:`softplc.Engine`).
            cycle: period of the task ``main`` when the file declares no ``TASKS``.
            priority: SCHED_FIFO priority of the scan thread (1-99), None for the
                normal scheduler.
            watchdog: execution-time limit per cycle.
            watchdog_tolerance: consecutive watchdog breaches tolerated.
            overrun: ``skip``, ``catch-up`` or ``fault``.
            mode: ``auto``, ``compiled`` or ``reference``.
            drivers: I/O drivers to attach, in order.

        Example:
            >>> pf = load_program_file("programs/blink.py")
            >>> plc = pf.build_engine(clock="virtual", cycle="1ms", mode="reference")
            >>> plc.start()
            >>> _ = plc.run_cycles(600)  # the lamp is on from 500 ms to 1 s
            >>> plc.read("blink.lamp")
            True
            >>> plc.close()
        """
        engine = Engine(clock=clock, cycle=cycle, priority=priority)
        try:
            for name, var in self.globals.items():
                if isinstance(var, authoring.Global):
                    engine.add_global(var)
                    continue
                if not isinstance(var.type, IecType):
                    # The check Engine.declare makes, here so that the type is narrowed.
                    raise ConfigError(f"variable {name!r}: {var.type!r} is not an IEC type")
                var.spec(name).declare(engine.native, name)
            if self.tasks:
                for t in self.tasks:
                    engine.add_task(
                        t.name,
                        period=t.period,
                        priority=t.priority,
                        watchdog=t.watchdog if t.watchdog is not None else watchdog,
                        watchdog_tolerance=t.watchdog_tolerance or watchdog_tolerance,
                        overrun=t.overrun if t.overrun != "skip" else overrun,
                    )
                    for p in t.programs:
                        engine.add_program(p, task=t.name, mode=mode)
            else:
                engine.add_task(
                    "main",
                    period=cycle,
                    watchdog=watchdog,
                    watchdog_tolerance=watchdog_tolerance,
                    overrun=overrun,
                )
                for p in self.programs:
                    engine.add_program(p, task="main", mode=mode)
            if self.plant is not None:
                engine.set_plant(self.plant)
            for d in drivers:
                engine.add_driver(d)
        except BaseException:
            engine.close()
            raise
        return engine


def _import(path: Path) -> ModuleType:
    name = f"softplc_user_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # As when running a script: modules next to the program file can be imported.
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(name, None)
        raise ProgramError(f"{path}:{e.lineno}:{e.offset or 0}: syntax error: {e.msg}") from None
    except KeyboardInterrupt:
        sys.modules.pop(name, None)
        raise
    except BaseException as e:  # the user's module raised (or exited) while loading
        # SystemExit and other BaseExceptions too: sys.exit() in a program file would
        # otherwise end the whole process silently, with the file's exit code.
        sys.modules.pop(name, None)
        tb = traceback.extract_tb(e.__traceback__)
        here = [f for f in tb if Path(f.filename).resolve() == path.resolve()]
        where = f"{path}:{here[-1].lineno}" if here else str(path)
        if isinstance(e, SystemExit):
            raise ProgramError(
                f"{where}: SystemExit: the file exits while loading (exit code {e.code!r}); "
                "a program file only defines programs (hint: put script code under "
                "if __name__ == '__main__':)"
            ) from None
        raise ProgramError(f"{where}: {type(e).__name__}: {e}") from e
    return module


def load_program_file(path: str | Path) -> ProgramFile:
    """Imports a program file and collects its programs, tasks, globals and plant.

    Raises :class:`ConfigError` for a missing file or one that defines no program, and
    :class:`ProgramError` when the file fails to import.

    Example:
        >>> pf = load_program_file("programs/tank.py")
        >>> [cls.__name__ for cls in pf.programs], type(pf.plant).__name__
        (['Tank'], 'TankPlant')
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"program file {str(path)!r} does not exist")
    if not p.is_file():
        raise ConfigError(f"program file {str(path)!r} is not a file")
    module = _import(p)
    pf = ProgramFile(path=p, module=module)
    for k, v in vars(module).items():
        if isinstance(v, authoring.Var) and not k.startswith("_"):
            pf.globals[k] = v
    tasks = getattr(module, "TASKS", None)
    programs = getattr(module, "PROGRAMS", None)
    if tasks is not None:
        if not isinstance(tasks, (list, tuple)) or not all(isinstance(t, Task) for t in tasks):
            raise ConfigError(f"{p}: TASKS must be a list of softplc.Task")
        pf.tasks = list(tasks)
    elif programs is not None:
        if not isinstance(programs, (list, tuple)):
            raise ConfigError(f"{p}: PROGRAMS must be a list")
        pf.programs = list(programs)
    else:
        pf.programs = [
            v
            for v in vars(module).values()
            if isinstance(v, type) and authoring.is_program(v) and v.__module__ == module.__name__
        ]
        scan = _module_scan(p, module)
        if scan is not None:
            if pf.programs:
                names = ", ".join(c.__name__ for c in pf.programs)
                raise ConfigError(
                    f"{p}:{scan.__code__.co_firstlineno}: the file defines @program classes "
                    f"({names}) and a module-level scan(io): say which run with "
                    "PROGRAMS = [...]"
                )
            pf.programs = [scan]
    if not pf.tasks and not pf.programs:
        raise ConfigError(
            f"{p} defines no program (declare a @program class, a module-level "
            "def scan(io), PROGRAMS = [...] or TASKS = [...])"
        )
    plant = getattr(module, "PLANT", None)
    if isinstance(plant, type):
        plant = plant()
    pf.plant = plant
    return pf


def _module_scan(path: Path, module: ModuleType) -> FunctionType | None:
    """The file's own module-level ``scan`` function, checked to take one argument (the
    cycle's ``io``); None when it has none. (A ``scan`` imported from elsewhere does
    not count.)"""
    scan = vars(module).get("scan")
    if not isinstance(scan, FunctionType) or scan.__module__ != module.__name__:
        return None
    try:
        inspect.signature(scan).bind(None)
    except TypeError:
        raise ConfigError(
            f"{path}:{scan.__code__.co_firstlineno}: the module-level scan must take one "
            "argument, the cycle's io (def scan(io):), and read and write the file's "
            "variables through it (io.level)"
        ) from None
    return scan
