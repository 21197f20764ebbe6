"""The examples in the public modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "softplc",
    "softplc.engine",
    "softplc.errors",
    "softplc.authoring",
    "softplc.loader",
    "softplc.stdlib",
    "softplc.stdlib.blocks",
    "softplc.stdlib.functions",
    "softplc.stdlib.quality",
    "softplc.stdlib.time",
    "softplc.timefmt",
    "softplc.types",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
