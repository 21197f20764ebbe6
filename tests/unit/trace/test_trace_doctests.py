"""The examples in the trace modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "softplc.trace",
    "softplc.trace._reader",
    "softplc.trace._record",
    "softplc.trace._analysis",
    "softplc.trace._export",
    "softplc.trace._plot",
    "softplc.trace._schema",
    "softplc.trace._diff",
    "softplc.cli.trace",
    "softplc.cli.trace._table",
    "softplc.cli.trace.record",
    "softplc.cli.trace.trigger",
]


@pytest.mark.parametrize("name", MODULES)
def test_trace_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no examples"
