"""The examples in softplc.io's docstrings run and give what they show."""

from __future__ import annotations

import doctest
from pathlib import Path

import softplc.io

ROOT = Path(__file__).resolve().parents[3]


def test_docstring_examples(monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name files under programs/
    result = doctest.testmod(softplc.io, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
