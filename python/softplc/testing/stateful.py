"""Stateful testing of a bench with Hypothesis: :class:`BenchMachine` is a
``RuleBasedStateMachine`` that owns a test bench, made fresh for every run of the
machine and closed after it.

Example:
    >>> from hypothesis import settings
    >>> from hypothesis.stateful import invariant, rule
    >>> from hypothesis import strategies as st
    >>> class TankMachine(BenchMachine):
    ...     program = "programs/tank.py"
    ...
    ...     @rule(low=st.floats(10, 50))
    ...     def change_the_low_limit(self, low):
    ...         self.bench.set(low_limit=low, high_limit=low + 20)
    ...
    ...     @rule()
    ...     def let_it_run(self):
    ...         self.bench.run_for("5s")
    ...
    ...     @invariant()
    ...     def the_level_stays_in_the_tank(self):
    ...         assert 0.0 <= self.bench["level"] <= 100.0
    >>> TankMachine.TestCase.settings = settings(max_examples=3, stateful_step_count=5,
    ...                                          deadline=None)
    >>> TankMachine.TestCase().runTest()
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar

from hypothesis.stateful import RuleBasedStateMachine

from softplc.engine import Duration, Mode
from softplc.errors import ConfigError
from softplc.testing._bench import FILE_PLANT, Bench

__all__ = ["BenchMachine"]


class BenchMachine(RuleBasedStateMachine):
    """A state machine whose rules drive ``self.bench``.

    Set the class attributes ``program`` (a program file, relative to the working
    folder or to the file that defines the machine), and optionally ``cycle``,
    ``mode`` and ``record``; or override :meth:`make_bench`. The bench is made in
    ``__init__`` (a fresh one for each run of the machine) and closed in
    :meth:`teardown`. A fault during a rule's run raises
    :class:`softplc.RuntimeFaulted`, which Hypothesis reports and shrinks like any
    failure.
    """

    program: ClassVar[str | Path | None] = None
    cycle: ClassVar[Duration] = "10ms"
    mode: ClassVar[Mode] = "auto"
    record: ClassVar[bool] = True
    plant: ClassVar[Any] = FILE_PLANT

    def __init__(self) -> None:
        super().__init__()
        self.bench: Bench = self.make_bench()

    def make_bench(self) -> Bench:
        """The bench for one run of the machine (from ``program``, ``cycle``,
        ``mode``, ``record`` and ``plant``)."""
        if self.program is None:
            raise ConfigError(
                f"{type(self).__name__}: set program = 'path/to/program.py' or override "
                "make_bench()"
            )
        path = Path(self.program)
        if not path.is_absolute() and not path.is_file():
            try:
                candidate = Path(inspect.getfile(type(self))).parent / path
            except (TypeError, OSError):  # defined interactively: no file to look beside
                candidate = path
            if candidate.is_file():
                path = candidate
        return Bench.from_file(
            path, cycle=self.cycle, mode=self.mode, record=self.record, plant=self.plant
        )

    def teardown(self) -> None:
        """Closes the bench."""
        self.bench.close()
