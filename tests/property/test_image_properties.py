"""Hypothesis: the process image stores what is written and never aliases variables
unless they were declared at the same input address."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from softplc import ConfigError, Engine
from softplc.types import ALL_TYPES, IecType, type_from_name

NONBOOL = [t for t in ALL_TYPES if t.name != "BOOL"]


def value_for(t: IecType) -> st.SearchStrategy:
    if t.name == "BOOL":
        return st.booleans()
    if t.name == "REAL":
        return st.floats(width=32, allow_nan=False)
    if t.name == "LREAL":
        return st.floats(allow_nan=False)
    return st.integers(t.min, t.max)


@st.composite
def declarations(draw):
    """Up to 12 variables: some with random direct addresses, some auto-assigned."""
    n = draw(st.integers(1, 12))
    out = []
    for i in range(n):
        t = draw(st.sampled_from(ALL_TYPES))
        area = draw(st.sampled_from(["input", "output", "memory"]))
        addr = None
        if draw(st.booleans()):
            letter = {"input": "I", "output": "Q", "memory": "M"}[area]
            size = {0: "X", 1: "B", 2: "W", 4: "D", 8: "L"}[t.size]
            idx = draw(st.integers(0, 6))
            addr = f"%{letter}{size}{idx}" + (f".{draw(st.integers(0, 7))}" if size == "X" else "")
        out.append((f"v{i}", area, t, addr))
    return out


def build(decls):
    e = Engine(clock="virtual", cycle="1ms")
    kept = []
    for name, area, t, addr in decls:
        try:
            e.declare(name, area, t, addr)
            kept.append((name, area, t, addr))
        except ConfigError as err:
            assert "overlaps" in str(err)
    e.add_program(lambda io: None, name="noop")
    e.start()
    return e, kept


def bits(v):
    return v["area"], v["offset"], v["bit"], v["type"]


def covered(v):
    """The set of (area, bit index) a variable occupies."""
    if v["type"] == "BOOL":
        return {(v["area"], v["offset"] * 8 + v["bit"])}
    nbytes = type_from_name(v["type"]).size
    return {(v["area"], (v["offset"]) * 8 + b) for b in range(nbytes * 8)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declarations(), st.data())
def test_any_sequence_of_writes_reads_back_and_never_disturbs_other_variables(decls, data):
    e, kept = build(decls)
    try:
        variables = {v["name"]: v for v in e.variables}
        # Which variables share storage: only identical input declarations may.
        for a in kept:
            for b in kept:
                if a[0] >= b[0]:
                    continue
                va, vb = variables[a[0]], variables[b[0]]
                if covered(va) & covered(vb):
                    assert va["area"] == "input" and bits(va) == bits(vb), (va, vb)
        expected = {name: e.read(name) for name, *_ in kept}
        for _ in range(data.draw(st.integers(1, 20))):
            name, _area, t, _addr = data.draw(st.sampled_from(kept))
            value = data.draw(value_for(t))
            e.write(name, value)
            if t.name == "REAL":
                value = struct.unpack("<f", struct.pack("<f", value))[0]
            for other, *_ in kept:
                if bits(variables[other]) == bits(variables[name]):
                    expected[other] = value
            if data.draw(st.booleans()):
                e.run_cycles(1)
                assert {n: e.read(n) for n in expected} == expected
        e.run_cycles(1)
        assert {n: e.read(n) for n in expected} == expected
    finally:
        e.close()


@settings(max_examples=40, deadline=None)
@given(declarations())
def test_declared_addresses_are_kept_and_assigned_ones_never_overlap(decls):
    e, kept = build(decls)
    try:
        variables = e.variables
        given_addr = {name: addr for name, _, _, addr in kept if addr}
        for v in variables:
            if v["name"] in given_addr:
                assert v["address"] == given_addr[v["name"]].upper()
                assert v["explicit"]
        autos = [v for v in variables if not v["explicit"]]
        for v in autos:
            for w in variables:
                if w is not v:
                    assert not (covered(v) & covered(w)), (v, w)
    finally:
        e.close()
