"""The examples in the testing toolkit's and the stimulus module's docstrings run and
give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.conftest import ROOT

MODULES = [
    "softplc._names",
    "softplc.stimulus",
    "softplc.testing",
    "softplc.testing._bench",
    "softplc.testing._expr",
    "softplc.testing._recording",
    "softplc.testing._registry",
    "softplc.testing._temporal",
    "softplc.testing._timeline",
    "softplc.testing.stateful",
    "softplc.testing.strategies",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name programs/... from the project root
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
