"""The examples in softplc.io's docstrings run and give what they show."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import softplc.io
import softplc.io.driver
import softplc.io.opcua

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("module", [softplc.io, softplc.io.driver, softplc.io.opcua])
def test_docstring_examples(monkeypatch, module):
    monkeypatch.chdir(ROOT)  # the examples name files under programs/
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
