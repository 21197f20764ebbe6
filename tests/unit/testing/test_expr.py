"""Conditions as text: the language, and the two evaluators (per cycle and on whole
columns) agreeing with each other."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from softplc import ConfigError
from softplc.testing._expr import Expr, ScalarMonitor, evaluate_columns

CONDITIONS = [
    "a and not b",
    "a or b and x > 2.5",
    "0 <= x < 3",
    "x + n * 2 >= 7",
    "n // 2 == 1 or n % 3 == 2",
    "abs(x - 2) <= 1",
    "rose(a) or fell(b)",
    "changed(n)",
    "rose(x > 2)",
    "fell(a and b)",
    "a + b == 1",
    "x / n > 1",
    "-x < -2",
]

columns = hs.integers(1, 30).flatmap(
    lambda n: hs.fixed_dictionaries(
        {
            "a": hs.lists(hs.booleans(), min_size=n, max_size=n),
            "b": hs.lists(hs.booleans(), min_size=n, max_size=n),
            "x": hs.lists(hs.floats(-5, 5, width=32), min_size=n, max_size=n),
            "n": hs.lists(hs.integers(-3, 3), min_size=n, max_size=n),
        }
    )
)


@settings(max_examples=60, deadline=None)
@given(columns, hs.sampled_from(CONDITIONS))
def test_evaluating_per_cycle_and_on_columns_agree(cols, text):
    expr = Expr.parse(text)
    arrays = {
        "a": np.array(cols["a"], dtype=bool),
        "b": np.array(cols["b"], dtype=bool),
        "x": np.array(cols["x"], dtype=np.float32),
        "n": np.array(cols["n"], dtype=np.int16),
    }
    vectorised = evaluate_columns(expr, {k: arrays[k] for k in expr.names})
    monitor = ScalarMonitor(expr)
    # The scalar monitor starts with a FALSE cycle, as the engine did before row 0.
    monitor.step({"a": False, "b": False, "x": 0.0, "n": 0})
    scalar = []
    for i in range(len(cols["a"])):
        values = {
            "a": cols["a"][i],
            "b": cols["b"][i],
            "x": float(arrays["x"][i]),
            "n": cols["n"][i],
        }
        scalar.append(monitor.step(values))
    if text == "changed(n)":  # changed() has no edge on the first row either way
        scalar[0] = False
    assert [bool(v) for v in vectorised] == [bool(v) for v in scalar]


def test_names_are_found_with_dots_and_array_indices():
    assert Expr.parse("tank.level > 3 and pending[2] or a.b.c").names == [
        "tank.level",
        "pending[2]",
        "a.b.c",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty"),
        ("a >", "syntax error"),
        ("a if b else c", "IfExp"),
        ("f(a)", "the call f(a)"),
        ("rose(a, b)", "the call rose(a, b)"),
        ("'on'", "the constant 'on'"),
        ("a[b]", "Subscript"),
        ("a ** 2", "the operator Pow"),
        ("a is b", "the comparison Is"),
        ("~a", "Invert"),
    ],
)
def test_what_is_not_in_the_language_is_named(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Expr.parse(text)


def test_division_by_zero_in_a_condition_is_infinite_not_an_error():
    expr = Expr.parse("x / n > 1")
    assert evaluate_columns(expr, {"x": np.array([1.0]), "n": np.array([0])}).tolist() == [True]
    assert ScalarMonitor(expr).step({"x": 1.0, "n": 0}) is True
