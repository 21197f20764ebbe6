"""Loading a program file: the module that ``softplc run PROGRAM.py`` executes.

What a program file may define:

* ``@program`` classes: each becomes one program instance in the default task, in the
  order the classes are defined (unless ``PROGRAMS`` or ``TASKS`` says otherwise);
* ``PROGRAMS = [...]``: program instances, classes or plain callables ``f(io)``;
* ``TASKS = [Task("fast", period="1ms", programs=[...]), ...]`` for several tasks;
* module-level ``Input``/``Output``/``Memory`` objects: global variables named after
  the module attribute (for plain-callable programs);
* ``PLANT``: a plant model (an object with ``step(io, dt)``, or its class) for the
  simulation driver.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from softplc._modules import prog
from softplc.engine import Task
from softplc.errors import ConfigError, ProgramError

if TYPE_CHECKING:
    from softplc.program import Var

__all__ = ["ProgramFile", "load_program_file"]


@dataclass
class ProgramFile:
    """What a program file declares."""

    path: Path
    module: ModuleType
    programs: list[Any] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    globals: dict[str, Var] = field(default_factory=dict)
    plant: Any = None


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
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"program file {str(path)!r} does not exist")
    if not p.is_file():
        raise ConfigError(f"program file {str(path)!r} is not a file")
    module = _import(p)
    pf = ProgramFile(path=p, module=module)
    for k, v in vars(module).items():
        if isinstance(v, prog.Var) and not k.startswith("_"):
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
            if isinstance(v, type) and prog.is_program(v) and v.__module__ == module.__name__
        ]
    if not pf.tasks and not pf.programs:
        raise ConfigError(
            f"{p} defines no program (declare a @program class, or PROGRAMS = [...], "
            "or TASKS = [...])"
        )
    plant = getattr(module, "PLANT", None)
    if isinstance(plant, type):
        plant = plant()
    pf.plant = plant
    return pf
