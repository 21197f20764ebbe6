"""The process image from Python: declarations, addresses, reads, writes, snapshots."""

from __future__ import annotations

import numpy as np
import pytest
from softplc import (
    BOOL,
    DINT,
    INT,
    LREAL,
    REAL,
    SINT,
    TIME,
    UINT,
    ConfigError,
    Engine,
    InvalidValue,
    UnknownVariable,
    ms,
)


def make(engines, **decls):
    e = Engine(clock="virtual", cycle="1ms")
    engines.append(e)
    return e


def idle(io):
    pass


def started(e):
    e.add_program(idle, name="idle")
    e.start()
    return e


def test_variables_get_their_direct_addresses_and_auto_assigned_ones_fill_gaps(engines):
    e = make(engines)
    e.declare("start", "input", BOOL, "%IX0.0")
    e.declare("stop", "input", BOOL)
    e.declare("level", "input", REAL, "%ID1")
    e.declare("speed", "output", INT)
    e.declare("count", "memory", DINT, "%MD2")
    started(e)
    addr = {v["name"]: v["address"] for v in e.variables}
    assert addr == {
        "start": "%IX0.0",
        "stop": "%IX0.1",
        "level": "%ID1",
        "speed": "%QW0",
        "count": "%MD2",
    }


def test_writes_land_at_the_next_cycle_and_read_back_by_name_and_address(engines):
    e = make(engines)
    e.declare("level", "input", REAL, "%ID0")
    e.declare("t", "memory", TIME)
    started(e)
    e.write("level", 12.5)
    e.write("t", ms(1500))
    assert e.read("level") == 0.0  # not before the next cycle
    e.run_cycles(1)
    assert e.read("level") == 12.5
    assert e.read("%ID0") == 12.5
    assert e.read("t") == 1_500_000_000


def test_real_values_are_stored_as_f32(engines):
    e = make(engines)
    e.declare("x", "memory", REAL)
    e.declare("y", "memory", LREAL)
    started(e)
    e.write("x", 0.1)
    e.write("y", 0.1)
    e.run_cycles(1)
    assert e.read("x") == float(np.float32(0.1))
    assert e.read("y") == 0.1


@pytest.mark.parametrize(
    ("ty", "value", "why"),
    [
        (SINT, 128, "out of range"),
        (UINT, -1, "out of range"),
        (BOOL, 2, "not 0 or 1"),
        (INT, 1.5, "not an integer"),
        (INT, "7", "expected a number"),
    ],
)
def test_a_value_that_does_not_fit_the_type_is_rejected_naming_the_variable(
    engines, ty, value, why
):
    e = make(engines)
    e.declare("v", "memory", ty)
    started(e)
    with pytest.raises(InvalidValue, match=rf"^v \({ty.name}\): .*{why}"):
        e.write("v", value)


@pytest.mark.parametrize(
    ("decls", "message"),
    [
        ([("a", "input", BOOL, "%IZ0.0")], r"invalid address \"%IZ0.0\""),
        ([("a", "input", BOOL, "%IX0.9")], r"bit number"),
        ([("a", "input", REAL, "%IW0")], r"type mismatch for \"a\" \(REAL\)"),
        ([("a", "output", BOOL, "%IX0.0")], r"input area"),
        (
            [("a", "output", INT, "%QW1"), ("b", "output", BOOL, "%QX2.3")],
            r"%QX2.3 of \"b\" overlaps %QW1 of \"a\"",
        ),
        ([("a", "memory", INT, None), ("a", "memory", INT, None)], r"duplicate variable name"),
        ([("a", "memory", INT, None, {"initial": 70000})], r"initial value"),
    ],
)
def test_bad_declarations_name_the_culprit(engines, decls, message):
    e = make(engines)
    with pytest.raises(ConfigError, match=message):
        for d in decls:
            kw = d[4] if len(d) > 4 else {}
            e.declare(d[0], d[1], d[2], d[3], **kw)


def test_unknown_variable_names_suggest_close_ones(engines):
    e = make(engines)
    e.declare("tank.level", "input", REAL)
    started(e)
    with pytest.raises(ConfigError, match=r"unknown variable \"levle\""):
        e.read("levle")
    with pytest.raises(ConfigError, match=r"did you mean tank.level"):
        e.read("tank.lev")


def test_an_unknown_variable_is_one_error_from_the_engine_and_from_the_io_object(engines):
    seen: dict[str, object] = {}

    def probe(io):
        for what, get in [
            ("item", lambda: io["nope"]),
            ("index", lambda: io[99]),
            ("attribute", lambda: io.nope),
        ]:
            try:
                get()
            except BaseException as exc:  # noqa: BLE001 (the test records the class)
                seen[what] = exc
        seen["getattr"] = getattr(io, "nope", "default")
        seen["hasattr"] = hasattr(io, "nope")

    e = make(engines)
    e.declare("tank.level", "input", REAL)
    e.add_program(probe, name="probe")
    e.start()
    e.run_cycles(1)
    for call in (e.read, e.quality, lambda n: e.write(n, 1.0), lambda n: e.force(n, 1.0)):
        with pytest.raises(UnknownVariable, match=r"\"tank.lev\" \(did you mean tank.level\?\)"):
            call("tank.lev")
    with pytest.raises(UnknownVariable, match="full names"):
        e.snapshot().value("level")
    assert {k: type(v) for k, v in seen.items() if k in ("item", "index", "attribute")} == {
        "item": UnknownVariable,
        "index": UnknownVariable,
        "attribute": UnknownVariable,
    }
    assert str(seen["item"]) == 'unknown variable "nope"', "no KeyError quotes"
    assert str(seen["index"]) == "no variable with index 99"
    # Still what Python's protocols expect of a failed item or attribute lookup.
    assert isinstance(seen["item"], KeyError) and isinstance(seen["attribute"], AttributeError)
    assert isinstance(seen["item"], ConfigError)
    assert (seen["getattr"], seen["hasattr"]) == ("default", False)


def test_a_value_of_the_wrong_kind_is_invalid_value_from_every_writer(engines):
    raised: list[BaseException] = []

    def writer(io):
        for bad in ("7", 1.5):
            try:
                io.n = bad
            except BaseException as exc:  # noqa: BLE001 (the test records the class)
                raised.append(exc)

    e = make(engines)
    e.declare("n", "memory", INT)
    e.add_program(writer, name="writer")
    e.start()
    e.run_cycles(1)
    with pytest.raises(InvalidValue, match=r"^n \(INT\): expected a number, got str"):
        e.write("n", "7")
    assert [type(x) for x in raised] == [InvalidValue, InvalidValue]
    assert str(raised[0]) == "n (INT): expected an integer, got str"
    assert str(raised[1]) == "n (INT): expected an integer, got float 1.5 (convert explicitly)"
    assert e.state == "RUN"


def test_snapshot_is_a_consistent_copy_not_a_view(engines):
    e = make(engines)
    e.declare("a", "memory", DINT, "%MD0")
    e.declare("b", "output", BOOL, "%QX0.0")
    started(e)
    e.write("a", 0x01020304)
    e.write("b", True)
    e.run_cycles(1)
    snap = e.snapshot()
    assert snap.memory.dtype == np.uint8
    assert list(snap.memory[:4]) == [4, 3, 2, 1]
    assert snap.values("output") == {"b": True}
    snap.memory[:] = 0  # a copy: the engine does not see this
    e.run_cycles(1)
    assert e.read("a") == 0x01020304
    assert e.snapshot().value("a") == 0x01020304
    assert snap.cycles == 1


def test_inputs_written_from_python_keep_their_value_and_report_their_age(engines):
    e = make(engines)
    e.declare("level", "input", REAL)
    started(e)
    e.write("level", 3.0)
    e.run_cycles(5)
    assert e.read("level") == 3.0
    assert e.quality("level") == "good"
    assert e.age_ns("level") == 4 * ms(1)
