"""The temporal assertions against an independent monitor: rtamt (signal temporal logic,
discrete time) evaluates the same formulas on random traces, and both must agree on
whether each assertion holds and where it first fails.

Time in rtamt is the row index (sampling period 1); the traces are recorded with a
1 ms period, so ``within=k`` rows is ``k`` ms.
"""

from __future__ import annotations

import itertools
import tempfile
import warnings
from pathlib import Path

import pytest
import softplc.trace as st
from hypothesis import given, settings
from hypothesis import strategies as hs
from softplc.testing import (
    TemporalAssertionError,
    always,
    eventually,
    mutually_exclusive,
    never,
    responds,
    rose,
    stable_for,
)

with warnings.catch_warnings():
    # rtamt's parser runtime (antlr4 4.7) imports typing.io, deprecated since 3.8.
    warnings.simplefilter("ignore", DeprecationWarning)
    import rtamt

P = 1_000_000  # the traces' period: 1 ms
FOLDER = Path(tempfile.mkdtemp(prefix="softplc-oracle-"))
_names = itertools.count()

signals = hs.integers(2, 40).flatmap(
    lambda n: hs.tuples(*[hs.lists(hs.booleans(), min_size=n, max_size=n) for _ in range(3)])
)


def record(a, b, c) -> Path:
    path = FOLDER / f"t{next(_names)}.trace"
    st.record_arrays(
        path, {"a": ("BOOL", a), "b": ("BOOL", b), "c": ("BOOL", c)}, period_ns=P, timing=False
    )
    return path


def stl(formula: str, **sig: list[bool]) -> list[float]:
    """rtamt's robustness of ``formula`` at every row (>= 0: holds)."""
    spec = rtamt.StlDiscreteTimeOfflineSpecification()
    for name in sig:
        spec.declare_var(name, "float")
    spec.spec = formula
    spec.parse()
    n = len(next(iter(sig.values())))
    data: dict[str, list[float]] = {"time": list(range(n))}
    data.update({k: [1.0 if x else 0.0 for x in v] for k, v in sig.items()})
    return [r for _, r in spec.evaluate(data)]


def verdict(check) -> int | None:
    """None when the assertion holds, else the row it names."""
    try:
        check()
    except TemporalAssertionError as e:
        return e.row
    return None


def first(rows) -> int | None:
    return next(iter(rows), None)


A, B, C = "(a >= 0.5)", "(b >= 0.5)", "(c >= 0.5)"
SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(signals)
def test_always_and_never_agree_with_rtamt(sig):
    a, b, c = sig
    path = record(a, b, c)
    # historically(p) is false from the first row where p is false on.
    hist = stl(f"historically({A})", a=a)
    assert verdict(lambda: always(path, "a")) == first(i for i, r in enumerate(hist) if r < 0)
    never_ = stl(f"historically(not {B})", b=b)
    assert verdict(lambda: never(path, "b")) == first(i for i, r in enumerate(never_) if r < 0)


@SETTINGS
@given(signals, hs.integers(0, 6))
def test_eventually_within_agrees_with_rtamt(sig, k):
    a, _, _ = sig
    path = record(*sig)
    holds = stl(f"eventually[0:{k}]{A}", a=a)[0] >= 0
    assert (verdict(lambda: eventually(path, "a", within=k * P)) is None) == holds


@SETTINGS
@given(signals, hs.integers(0, 6))
def test_responds_agrees_with_rtamt_where_the_deadline_is_inside_the_trace(sig, k):
    a, b, _ = sig
    path = record(*sig)
    rob = stl(f"{A} implies (eventually[0:{k}]{B})", a=a, b=b)
    n = len(a)
    expected = first(i for i in range(n) if i + k <= n - 1 and rob[i] < 0)
    assert verdict(lambda: responds(path, "a", "b", within=k * P)) == expected


@SETTINGS
@given(signals, hs.integers(0, 6))
def test_responds_to_an_edge_agrees_with_rtamt(sig, k):
    a, b, _ = sig
    path = record(*sig)
    rob = stl(f"rise{A} implies (eventually[0:{k}]{B})", a=a, b=b)
    n = len(a)
    # Both count a rise at row 0 when a holds there (FALSE before the first row).
    expected = first(i for i in range(n) if i + k <= n - 1 and rob[i] < 0)
    assert verdict(lambda: responds(path, "rose(a)", "b", within=k * P)) == expected


def next_change(a: list[bool], i: int) -> int:
    return next(j for j in range(i + 1, len(a)) if a[j] != a[i])


@SETTINGS
@given(signals, hs.integers(1, 6))
def test_stable_for_agrees_with_rtamt(sig, k):
    a, _, _ = sig
    path = record(*sig)
    # After each change the new value lasts k rows: rows i .. i+k-1 keep it.
    # stable_for counts changes between rows: rtamt's rise at row 0 is left out.
    to_true = stl(f"rise{A} implies (always[0:{k - 1}]{A})", a=a)
    to_false = stl(f"fall{A} implies (always[0:{k - 1}](not {A}))", a=a)
    n = len(a)
    bad_true = first(i for i in range(1, n) if to_true[i] < 0)
    bad_any = first(i for i in range(1, n) if to_true[i] < 0 or to_false[i] < 0)
    # The assertion names the row where the value changed again too early.
    expected_true = None if bad_true is None else next_change(a, bad_true)
    expected_any = None if bad_any is None else next_change(a, bad_any)
    assert verdict(lambda: stable_for(path, "a", k * P, value=True)) == expected_true
    assert verdict(lambda: stable_for(path, "a", k * P)) == expected_any


@SETTINGS
@given(signals)
def test_mutually_exclusive_agrees_with_rtamt(sig):
    a, b, c = sig
    path = record(a, b, c)
    rob = stl(f"not(({A} and {B}) or ({A} and {C}) or ({B} and {C}))", a=a, b=b, c=c)
    expected = first(i for i, r in enumerate(rob) if r < 0)
    assert verdict(lambda: mutually_exclusive(path, "a", "b", "c")) == expected


@SETTINGS
@given(signals)
def test_rose_finds_the_rows_rtamt_calls_rises(sig):
    a, _, _ = sig
    path = record(*sig)
    rises = stl(f"rise{A}", a=a)
    assert rose(path, "a").cycles == [i for i in range(len(a)) if rises[i] > 0]


def test_the_oracle_itself_tells_holding_from_failing():
    # rtamt sees what the formulas mean here, so the comparisons above can fail.
    assert stl(f"always{A}", a=[True, True])[0] > 0
    assert stl(f"always{A}", a=[True, False])[0] < 0
    assert stl(f"eventually[0:1]{A}", a=[False, False, True])[0] < 0


@pytest.fixture(scope="module", autouse=True)
def _clean_up():
    yield
    for p in FOLDER.glob("*.trace"):
        p.unlink()
    FOLDER.rmdir()
