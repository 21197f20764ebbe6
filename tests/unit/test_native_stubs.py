"""The hand-written stubs of ``softplc._native`` (python/softplc/_native.pyi).

``mypy.stubtest`` checks names, signatures and class shapes against the built module.
It cannot check what functions return, so the dictionaries the engine returns are
compared here with the private ``TypedDict`` classes of the stub: the same keys, and
for fields typed with a ``Literal`` alias, values among the listed ones.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import softplc
from softplc import _native

STUB = Path(softplc.__file__).resolve().parent / "_native.pyi"


def _stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text(encoding="utf-8"), filename=str(STUB))


def _literal_aliases(tree: ast.Module) -> dict[str, set[str]]:
    """``_Name: TypeAlias = Literal[...]`` aliases of the stub, with their strings."""
    out: dict[str, set[str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        value = node.value
        if not (isinstance(value, ast.Subscript) and ast.unparse(value.value) == "Literal"):
            continue
        elts = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
        out[node.target.id] = {e.value for e in elts if isinstance(e, ast.Constant)}
    return out


def _typed_dicts(tree: ast.Module) -> dict[str, dict[str, str]]:
    """The stub's TypedDict classes: {class: {key: annotation text}}."""
    out: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
            ast.unparse(b) == "TypedDict" for b in node.bases
        ):
            out[node.name] = {
                stmt.target.id: ast.unparse(stmt.annotation)
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            }
    return out


def _check(td: str, value: dict[str, Any]) -> None:
    """Asserts that ``value`` has exactly the keys of TypedDict ``td``, that nested
    TypedDicts match too, and that Literal-typed fields hold a listed value."""
    tree = _stub_tree()
    dicts = _typed_dicts(tree)
    literals = _literal_aliases(tree)
    fields = dicts[td]
    assert set(value) == set(fields), f"{td}: runtime keys differ from the stub"
    for key, annotation in fields.items():
        if annotation in dicts:
            _check(annotation, value[key])
        elif annotation in literals:
            assert value[key] in literals[annotation], f"{td}.{key} = {value[key]!r}"


@pytest.fixture
def faulted_engine() -> Any:
    """A started virtual engine with two variables whose Python program faulted."""

    def boom(io: Any) -> None:
        if io.cycle >= 1:
            raise RuntimeError("deliberate")
        io.n = io.n + 1

    eng = _native.Engine(clock="virtual")
    eng.declare("n", "memory", "DINT")
    eng.declare("lamp", "output", "BOOL", "%QX0.0", True, False, "on")
    eng.add_task("main", 1_000_000)
    eng.add_python_program("main", "boom", boom)
    eng.start()
    eng.run_cycles(3)
    yield eng
    eng.close()


def test_stubtest_finds_no_difference_between_stub_and_module(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--strict-type-check-only", "softplc._native"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_engine_dicts_have_the_keys_the_stub_declares(faulted_engine: Any) -> None:
    eng = faulted_engine
    assert eng.state == "FAULT"
    fault = eng.fault()
    assert fault is not None
    _check("_Fault", fault)
    stats = eng.stats()
    assert len(stats) == 1
    _check("_TaskStats", stats[0])
    assert stats[0]["programs"] == [("boom", "python")]
    events, _ = eng.events()
    assert {e["kind"] for e in events} >= {"state", "fault"}
    for e in events:
        _check("_Event", e)
    variables = eng.variables()
    assert [v["name"] for v in variables] == ["n", "lamp"]
    for v in variables:
        _check("_Variable", v)
    _check("_Snapshot", eng.snapshot())


def test_layout_preview_rows_match_the_variable_dict() -> None:
    eng = _native.Engine(clock="virtual")
    eng.declare("t", "input", "TIME")
    rows = eng.layout_preview()
    eng.close()
    assert len(rows) == 1
    _check("_Variable", rows[0])


def test_rt_status_of_a_real_time_engine_matches_the_stub() -> None:
    eng = _native.Engine(clock="real")
    eng.declare("x", "memory", "INT")
    eng.add_task("main", 5_000_000)
    try:
        eng.start(False)
        status = eng.rt_status()
    finally:
        eng.close()
    assert status is not None
    _check("_RtStatus", status)


def test_snapshot_arrays_have_the_declared_dtypes(faulted_engine: Any) -> None:
    snap = faulted_engine.snapshot()
    for key in ("input", "output", "memory", "quality"):
        assert str(snap[key].dtype) == "uint8", key
    assert str(snap["stamp_ns"].dtype) == "uint64"


def test_trace_counters_are_a_dict_of_ints(tmp_path: Path) -> None:
    stats = _native.trace_record(
        tmp_path / "a.trace", [("x", "BOOL", "memory", "", None)], [b"\x00\x01"], 2
    )
    assert stats["rows_written"] == 2
    assert all(type(v) is int for v in stats.values())
