"""The event vocabulary held together across Rust, the stubs and the trace format, and
typed I/O events from a live engine through a trace file and back; files written before
I/O events were typed (format 1.1) still read."""

from __future__ import annotations

import ast
import re
import socket
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import softplc
import softplc.io as sio
import softplc.trace as st
from softplc import INT, Engine, _native

from tests.unit.trace.framing import rewrite

ROOT = Path(__file__).resolve().parents[2]


def _stub_literal(name: str) -> set[str]:
    tree = ast.parse((Path(softplc.__file__).parent / "_native.pyi").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == name:
            assert isinstance(node.value, ast.Subscript)
            elts = node.value.slice
            items = elts.elts if isinstance(elts, ast.Tuple) else [elts]
            return {e.value for e in items if isinstance(e, ast.Constant)}
    raise AssertionError(f"{name} is not in the stub")


def _doc_io_kinds() -> set[str]:
    doc = (ROOT / "docs" / "trace-format.md").read_text(encoding="utf-8")
    section = doc[doc.index("## 10. Event kinds") :]
    return set(re.findall(r"^\| `([a-z_]+)` \| (?:link|device|driver)", section, re.M))


def test_the_event_kinds_are_the_same_in_rust_the_stubs_and_the_trace_format_doc():
    kinds, io_kinds = _native.event_kinds()
    assert set(kinds) == _stub_literal("_EventKind")
    assert set(io_kinds) == _stub_literal("_IoEventKind")
    assert set(io_kinds) == _doc_io_kinds()
    assert len(set(io_kinds)) == len(io_kinds)


def test_a_trace_records_io_events_with_their_kind_and_the_live_log_shows_them(tmp_path):
    with Engine(clock="real", cycle="5ms") as e:
        e.declare("x.n", "memory", INT, "%MW0")
        e.add_task("main", period="5ms")
        sio.attach(e, modbus_server="127.0.0.1:0")
        e.start()
        port = e.status()["drivers"]["modbus-server"]["listen"].rsplit(":", 1)[1]
        path = tmp_path / "io.trace"
        e.start_trace(path, signals="x.n")
        with socket.create_connection(("127.0.0.1", int(port)), timeout=2):
            e.wait(duration="50ms")
        e.wait(duration="50ms")
        e.stop_trace()
        live = [ev for ev in e.events()[0] if ev["kind"] == "io"]
    assert [ev["io"]["kind"] for ev in live][:2] == ["listening", "client_accepted"]
    accepted = live[1]
    assert "connection from 127.0.0.1" in accepted["text"]
    assert accepted["io"] == {
        "kind": "client_accepted",
        "link": None,
        "device": None,
        "suppressed": 0,
    }
    assert (accepted["a"], accepted["b"]) == (-1, -1)
    tr = st.load(path)
    assert tr.version == (1, 2)
    recorded = [ev for ev in tr.events if ev.get("io") == accepted["io"]]
    assert [ev["text"] for ev in recorded] == [accepted["text"]]


def test_a_format_1_1_file_with_numeric_io_codes_still_reads(tmp_path):
    src = tmp_path / "new.trace"
    st.record_arrays(
        src,
        {"x": ("INT", np.arange(5))},
        events=[
            {"t_ns": 1_000_000, "kind": "io", "a": 0, "b": 20, "text": "modbus: rewritten"},
            {"t_ns": 2_000_000, "kind": "fault", "task": 0, "text": "boom"},
        ],
    )
    old = tmp_path / "old.trace"

    def as_1_1(rec: dict[str, Any]) -> dict[str, Any]:
        if rec["type"] == "header":
            rec["version"] = [1, 1]
        if rec["type"] == "events":
            for ev in rec["events"]:
                ev.pop("io", None)
        return rec

    rewrite(src, old, as_1_1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = st.load(old)
    assert tr.version == (1, 1) and tr.complete
    io = next(ev for ev in tr.events if ev["kind"] == "io")
    assert (io["a"], io["b"], io["text"]) == (0, 20, "modbus: rewritten")
    assert "io" not in io
    # The same events recorded today carry the typed form.
    new_io = next(ev for ev in st.load(src).events if ev["kind"] == "io")
    assert new_io["io"]["kind"] == "other"
