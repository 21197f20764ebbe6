"""Testing control programs: test benches in virtual time, temporal assertions over
recorded runs, Hypothesis strategies and a pytest plugin.

* :class:`Bench`: a virtual-time engine with the verbs of a test plan (``set``,
  ``pulse``, ``run_for``, ``run_until``, ``force``, ``play``); a fault during a run
  raises :class:`softplc.RuntimeFaulted` unless the test expects it.
* :func:`always`, :func:`never`, :func:`eventually`, :func:`responds`,
  :func:`stable_for`, :func:`mutually_exclusive`, :func:`rose`, :func:`fell`: temporal
  assertions over a bench's recording or any trace file.
* :mod:`softplc.testing.strategies`: input timelines for Hypothesis, derived from a
  program's inputs; :mod:`softplc.testing.stateful`: a ``RuleBasedStateMachine`` that
  owns a bench.
* The pytest plugin (:mod:`softplc.testing.plugin`, installed with softplc): the
  fixture ``plc`` and the options ``--softplc-keep-traces DIR`` and
  ``--softplc-update-golden``.

Conditions written as text (``bench.run_until("pump and level > 50")``,
``always(run, "not (red and green)")``) read variable names (full, or a unique last
part), numbers, ``and``/``or``/``not``, comparisons (chained too), ``+ - * / // %``,
and ``rose(x)``, ``fell(x)``, ``changed(x)``, ``abs(x)``.

The package loads its parts on first use, so that the pytest plugin costs nothing in a
test session that does not use them.

Example:
    >>> from softplc.testing import Bench, always
    >>> with Bench.from_file("programs/tank.py") as bench:
    ...     bench.run_for("30s")
    ...     always(bench, "30 < level < 70")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from softplc.errors import RuntimeFaulted
    from softplc.testing._bench import FILE_PLANT, Bench, CaughtFault
    from softplc.testing._errors import (
        BenchTimeout,
        FaultNotRaised,
        TemporalAssertionError,
        UnknownName,
    )
    from softplc.testing._recording import Recording
    from softplc.testing._temporal import (
        Columns,
        Edges,
        always,
        eventually,
        fell,
        mutually_exclusive,
        never,
        responds,
        rose,
        stable_for,
    )
    from softplc.testing._timeline import Change, SignalTimeline, Timeline

__all__ = [
    "FILE_PLANT",
    "Bench",
    "BenchTimeout",
    "CaughtFault",
    "Change",
    "Columns",
    "Edges",
    "FaultNotRaised",
    "Recording",
    "RuntimeFaulted",
    "SignalTimeline",
    "TemporalAssertionError",
    "Timeline",
    "UnknownName",
    "always",
    "eventually",
    "fell",
    "mutually_exclusive",
    "never",
    "responds",
    "rose",
    "stable_for",
]

_WHERE = {
    "FILE_PLANT": "softplc.testing._bench",
    "Bench": "softplc.testing._bench",
    "CaughtFault": "softplc.testing._bench",
    "BenchTimeout": "softplc.testing._errors",
    "FaultNotRaised": "softplc.testing._errors",
    "TemporalAssertionError": "softplc.testing._errors",
    "UnknownName": "softplc.testing._errors",
    "Recording": "softplc.testing._recording",
    "RuntimeFaulted": "softplc.errors",
    "Change": "softplc.testing._timeline",
    "SignalTimeline": "softplc.testing._timeline",
    "Timeline": "softplc.testing._timeline",
    "Columns": "softplc.testing._temporal",
    "Edges": "softplc.testing._temporal",
    "always": "softplc.testing._temporal",
    "eventually": "softplc.testing._temporal",
    "fell": "softplc.testing._temporal",
    "mutually_exclusive": "softplc.testing._temporal",
    "never": "softplc.testing._temporal",
    "responds": "softplc.testing._temporal",
    "rose": "softplc.testing._temporal",
    "stable_for": "softplc.testing._temporal",
}


def __getattr__(name: str) -> Any:
    # PEP 562: import the part that defines ``name`` on first use.
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'softplc.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
