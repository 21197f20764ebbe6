"""Reading trace files: values, views, names, and clear errors for bad files."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import msgpack
import numpy as np
import pytest
import softplc
import softplc.trace as st
from softplc.trace._format import END_FRAME_BYTES, MAGIC

from tests.unit.trace.tracedata import N, plant_arrays


def test_values_types_units_and_addresses_come_back(make_trace):
    tr = st.load(make_trace())
    src = plant_arrays()
    assert tr.rows == N
    assert tr.complete and tr.warnings == []
    np.testing.assert_array_equal(tr["tank.level"], src["tank.level"]["values"])
    assert tr["tank.level"].dtype == np.dtype("<f4")
    assert tr["tank.pump"].dtype == np.bool_
    np.testing.assert_array_equal(tr["count"], np.arange(N, dtype=np.int32))
    np.testing.assert_array_equal(tr["speed"], (np.arange(N) % 200 - 100).astype(np.int16))
    np.testing.assert_array_equal(tr["delay"], np.arange(N) * 1000)
    lvl = tr.signal("tank.level")
    assert (lvl.type, lvl.unit, lvl.kind, lvl.address) == ("REAL", "%", "input", "%ID0")
    assert tr.signal("tank.pump").kind == "output"
    np.testing.assert_array_equal(tr.cycle, np.arange(N, dtype=np.uint64))
    assert tr.t[1] == pytest.approx(0.001)
    assert tr.duration_ns == (N - 1) * 1_000_000
    assert tr.header["engine_version"] == softplc.__version__


def test_timing_columns_hold_the_given_execution_time_and_overrun(make_trace):
    tr = st.load(make_trace())
    np.testing.assert_array_equal(tr["task:main.exec_time"], 10_000 + (np.arange(N) % 7) * 1_000)
    assert np.flatnonzero(tr["task:main.overrun"]).tolist() == [1500]
    np.testing.assert_array_equal(tr["task:main.scheduled_ns"], tr.t_ns)


def test_events_are_loaded_in_time_order(make_trace):
    tr = st.load(make_trace())
    assert [e["kind"] for e in tr.events] == ["overrun", "fault"]
    assert tr.events[1]["text"] == "division by zero"
    assert tr.events[0]["b"] == 1_200_000


def test_a_column_in_one_block_is_a_read_only_view_of_the_file(make_trace):
    tr = st.load(make_trace(block_rows=N))
    a = tr["tank.level"]
    assert len(tr.blocks) == 1
    assert not a.flags.owndata and not a.flags.writeable
    # Several blocks: one concatenation, same values.
    tr2 = st.load(make_trace("multi.trace", block_rows=100))
    assert len(tr2.blocks) == 30
    np.testing.assert_array_equal(tr2["tank.level"], a)
    assert tr2["tank.level"] is tr2["tank.level"]  # cached, not re-read


def test_names_resolve_by_full_name_address_and_unique_last_part(make_trace):
    tr = st.load(make_trace())
    assert tr.signal("level").name == "tank.level"
    assert tr.signal("%ID0").name == "tank.level"
    assert "pump" in tr and "nope" not in tr
    with pytest.raises(st.TraceError, match=r"did you mean tank\.level"):
        tr.signal("tank.levl")
    names = [s.name for s in tr.select("tank.*,count")]
    assert names == ["tank.level", "tank.pump", "count"]
    assert tr.select(["task:*"])[0].name == "task:main.scheduled_ns"
    with pytest.raises(st.TraceError, match="matches nothing"):
        tr.select("valve.*")
    assert all(s.kind != "timing" for s in tr.select(None, timing=False))


def test_window_selects_rows_by_time_from_the_start(make_trace):
    tr = st.load(make_trace())
    sl = tr.window(1_000_000_000, 1_002_000_000)
    assert tr.cycle[sl].tolist() == [1000, 1001, 1002]
    assert tr.window(None, -1) == slice(0, 0)


# -- bad files ---------------------------------------------------------------------------


def test_trace_error_is_a_softplc_error():
    assert issubclass(st.TraceError, softplc.SoftPlcError)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"PK\x03\x04 zip archive", "not a softplc trace file"),
        (MAGIC[:5], "truncated before the end of its header"),
        (MAGIC + b"\x10\x00", "truncated before the end of its header"),
    ],
)
def test_a_bad_file_gives_a_clear_error(tmp_path, content, message):
    p = tmp_path / "x.trace"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(st.TraceError, match=message):
        st.load(p)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(st.TraceError, match="is a directory"):
        st.load(tmp_path)


def frame(obj: object) -> bytes:
    payload = msgpack.packb(obj, use_bin_type=True)
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def test_a_newer_major_version_and_a_foreign_header_are_refused(tmp_path):
    p = tmp_path / "v2.trace"
    p.write_bytes(MAGIC + frame({"type": "header", "format": "softplc-trace", "version": [2, 0]}))
    with pytest.raises(st.TraceError, match=r"version 2\.0 is newer"):
        st.load(p)
    p.write_bytes(MAGIC + frame({"type": "header", "format": "other"}))
    with pytest.raises(st.TraceError, match="no softplc-trace header"):
        st.load(p)


def test_a_damaged_header_is_reported(make_trace):
    p = make_trace()
    data = bytearray(p.read_bytes())
    data[20] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(st.TraceError, match="header is damaged"):
        st.load(p)


def whole_blocks_before(data: bytes, cut: int) -> int:
    """Rows in the block frames that end at or before ``cut`` (walking the frames)."""
    pos, rows = len(MAGIC), 0
    while pos + 8 <= len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        end = pos + 8 + n
        if end > cut:
            break
        rec = msgpack.unpackb(data[pos + 8 : end], raw=False)
        if rec["type"] == "block":
            rows += rec["rows"]
        pos = end
    return rows


def test_a_trace_cut_at_every_byte_loads_its_whole_blocks(make_trace):
    small = {k: v for k, v in plant_arrays(40).items() if k in ("count", "tank.pump", "tank.level")}
    p = make_trace(
        "small.trace",
        small,
        block_rows=6,
        events=[{"t_ns": 5_000_000, "kind": "info", "text": "x"}],
    )
    data = p.read_bytes()
    full = st.load(p)
    ref = {n: full[n].copy() for n in ("count", "tank.pump", "tank.level")}
    cut_path = p.with_name("cut.trace")
    header_end = len(MAGIC) + 8 + struct.unpack_from("<I", data, len(MAGIC))[0]
    for cut in range(len(data)):
        cut_path.write_bytes(data[:cut])
        if cut < header_end:
            with pytest.raises(st.TraceError):
                st.load(cut_path)
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tr = st.load(cut_path)
        expected = whole_blocks_before(data, cut)
        assert tr.rows == expected, cut
        assert not tr.complete
        assert [w.category for w in caught] == [st.TraceWarning], cut
        for name, values in ref.items():
            np.testing.assert_array_equal(tr[name], values[:expected])
        tr.close()


def test_a_zero_filled_tail_after_a_power_loss_keeps_the_blocks_before_it(make_trace):
    p = make_trace()
    data = p.read_bytes()
    full = st.load(p)
    second = full.blocks[2].offset
    p.write_bytes(data[:second] + bytes(4096))
    with pytest.warns(st.TraceWarning, match="incomplete"):
        tr = st.load(p)
    assert tr.rows == full.blocks[0].rows + full.blocks[1].rows


def test_a_damaged_block_is_an_error_by_default_and_read_without_verification(make_trace):
    p = make_trace()
    data = bytearray(p.read_bytes())
    blocks = st.load(p).blocks
    data[blocks[1].payload + 100] ^= 0x01
    p.write_bytes(bytes(data))
    # Closed file: verified by default, the damaged block is named.
    with pytest.raises(
        st.TraceError, match=rf"block 1 at byte {blocks[1].offset} is damaged \(checksum"
    ):
        st.load(p)
    # Without verification the index is trusted; verify() checks later.
    tr = st.load(p, verify=False)
    assert tr.rows == N and not tr.verified
    with pytest.raises(st.TraceError, match=r"block 1 .* damaged"):
        tr.verify()
    # Without the end frame: a damaged frame followed by whole, valid frames is damage,
    # not a torn tail. Verification says so; without it the walk stops with a warning.
    p.write_bytes(bytes(data[:-END_FRAME_BYTES]))
    with pytest.raises(st.TraceError, match=f"frame at byte {blocks[1].offset} is damaged"):
        st.load(p)
    with pytest.warns(st.TraceWarning, match="damaged"):
        tr = st.load(p, verify=False)
    assert tr.rows == blocks[0].rows


def test_a_file_written_from_the_spec_by_another_writer_is_read(tmp_path: Path):
    """A writer that follows docs/trace-format.md but encodes differently: smallest bin
    sizes, ``columns`` not last, no index. The reader must not depend on softplc's own
    encoding choices."""
    header = {
        "type": "header",
        "format": "softplc-trace",
        "version": [1, 0],
        "mode": "continuous",
        "decimate": 1,
        "trace_task": "t",
        "tasks": [{"name": "t", "period_ns": 10}],
        "cycle_period_ns": 10,
        "sample_period_ns": 10,
        "columns": [{"name": "cycle", "dtype": "<u8"}, {"name": "t_ns", "dtype": "<u8"}],
        "signals": [
            {
                "name": "x",
                "type": "INT",
                "dtype": "<i2",
                "unit": "",
                "address": None,
                "kind": "memory",
                "task": None,
            },
        ],
    }
    out = MAGIC + frame(header)
    for b in range(2):
        cyc = np.arange(b * 3, b * 3 + 3, dtype="<u8")
        out += frame(
            {
                "columns": [
                    cyc.tobytes(),
                    (cyc * 10).tobytes(),
                    (cyc.astype("<i2") * -2).tobytes(),
                ],
                "type": "block",
                "seq": b,
                "rows": 3,
                "first_cycle": int(cyc[0]),
                "last_cycle": int(cyc[-1]),
                "t_first_ns": int(cyc[0] * 10),
                "t_last_ns": int(cyc[-1] * 10),
                "capture": None,
            }
        )
    p = tmp_path / "other.trace"
    p.write_bytes(out)
    with pytest.warns(st.TraceWarning, match="no index"):
        tr = st.load(p)
    assert tr["x"].tolist() == [0, -2, -4, -6, -8, -10]
    assert tr.t.tolist() == pytest.approx([0, 1e-8, 2e-8, 3e-8, 4e-8, 5e-8])


def test_the_reader_in_the_format_document_reads_a_softplc_trace(make_trace):
    """docs/trace-format.md ends with a reader written from the spec alone."""
    doc = (Path(__file__).resolve().parents[3] / "docs" / "trace-format.md").read_text()
    code = doc.split("## 8. A reader without softplc")[1].split("```python")[1].split("```")[0]
    ns: dict = {}
    exec(compile(code, "trace-format.md", "exec"), ns)
    p = make_trace()
    header, cols, events = ns["read_trace"](str(p))
    tr = st.load(p)
    assert header["signals"][4]["name"] == "tank.level"
    np.testing.assert_array_equal(cols["cycle"], tr.cycle)
    for name in tr.names:
        np.testing.assert_array_equal(cols[name], tr[name])
    assert [e["kind"] for e in events] == [e["kind"] for e in tr.events]


# -- windows through the index, gaps, clocks, older files ----------------------------------


def _touched_blocks(monkeypatch) -> list[int]:
    """Records the blocks whose columns the reader locates."""
    from softplc.trace import _reader

    seen: list[int] = []
    real = _reader.column_positions

    def spy(buf, block, layout):
        seen.append(block.seq)
        return real(buf, block, layout)

    monkeypatch.setattr(_reader, "column_positions", spy)
    return seen


def test_a_window_is_found_and_read_through_the_index_not_whole_columns(make_trace, monkeypatch):
    tr = st.load(make_trace(block_rows=100))  # 30 blocks of 100 rows
    seen = _touched_blocks(monkeypatch)
    sl = tr.window(1_234_000_000, 1_456_000_000)
    assert sl == slice(1234, 1457)
    # Only the time columns of the blocks at the two ends of the window were read.
    assert sorted(set(seen)) == [12, 14]
    seen.clear()
    assert tr.read("count", sl).tolist() == list(range(1234, 1457))
    assert tr.cycles(sl)[[0, -1]].tolist() == [1234, 1456]
    assert sorted(set(seen)) == [12, 13, 14]
    # Edges: before the start, past the end, an empty window, one block.
    assert tr.window(None, 5_000_000) == slice(0, 6)
    assert tr.window(2_999_000_000, 10**12) == slice(2999, 3000)
    assert tr.window(10**12, None) == slice(3000, 3000)
    assert tr.window(1_000_000_500, 1_000_000_600) == slice(1001, 1001)
    # A window within one block is a view of the file, not a copy.
    part = tr.read("count", slice(210, 220))
    assert not part.flags.writeable and not part.flags.owndata


def test_window_matches_a_search_over_the_whole_time_column(make_trace):
    tr = st.load(make_trace(block_rows=37, decimate=3))
    rel = (tr.t_ns - np.uint64(tr.t0_ns)).astype(np.int64)
    for lo, hi in [(0, 0), (1, 2), (2_999_999, 3_000_000), (500_000_000, 501_000_000)]:
        for a, b in [(lo, hi), (None, hi), (lo, None)]:
            exp_lo = 0 if a is None else int(np.searchsorted(rel, a, "left"))
            exp_hi = len(rel) if b is None else int(np.searchsorted(rel, b, "right"))
            assert tr.window(a, b) == slice(exp_lo, max(exp_lo, exp_hi)), (a, b)


def test_gap_before_marks_rows_after_lost_rows_and_between_captures(tmp_path):
    p = tmp_path / "caps.trace"
    on = np.zeros(60, dtype=bool)
    on[[10, 40]] = True
    st.record_arrays(p, {"on": ("BOOL", on)}, trigger="rising:on", pre=2, post=2, captures=2)
    tr = st.load(p)
    assert tr.cycle.tolist() == [8, 9, 10, 11, 12, 38, 39, 40, 41, 42]
    assert np.flatnonzero(tr.gap_before()).tolist() == [5]
    assert tr.gap_before(slice(5, 8)).tolist() == [True, False, False]
    assert tr.gap_before(slice(6, 6)).tolist() == []
    # Decimated rows are not gaps.
    p = tmp_path / "dec.trace"
    st.record_arrays(p, {"x": ("INT", np.arange(50))}, decimate=4)
    assert not st.load(p).gap_before().any()


def test_row_times_convert_to_wall_clock_times(make_trace):
    import time

    before = time.time_ns()
    tr = st.load(make_trace())
    ref = tr.clock_ref
    assert ref is not None and ref["clock"] == "virtual" and ref["engine_ns"] == 0
    assert abs(ref["unix_ns"] - before) < 60e9
    w = tr.unix_ns()
    assert w.dtype == np.int64 and len(w) == N
    assert (w - w[0]).tolist()[:3] == [0, 1_000_000, 2_000_000]
    assert tr.engine_state == "RUN"


def test_a_format_1_0_file_still_reads_and_keeps_its_timing_rules(make_trace, tmp_path):
    """A 1.0 file: no clock reference, no engine state, timing fields of a task before
    its first cycle all zero (1.1 writes exec_time -1 there)."""
    from softplc.trace import _analysis as an

    from tests.unit.trace.framing import rewrite

    src = make_trace("new.trace", {"x": ("INT", np.arange(20))})
    old = tmp_path / "old.trace"

    def as_1_0(rec):
        if rec["type"] == "header":
            rec["version"] = [1, 0]
            del rec["clock_ref"], rec["engine_state"]
        if rec["type"] == "events":
            rec.pop("lost", None)
        if rec["type"] == "index":
            rec["summary"].pop("events_lost")
        return rec

    rewrite(src, old, as_1_0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = st.load(old)
    assert tr.version == (1, 0) and tr.complete
    assert tr["x"].tolist() == list(range(20))
    assert tr.clock_ref is None and tr.engine_state is None and tr.events_lost is None
    with pytest.raises(st.TraceError, match="no clock reference"):
        tr.unix_ns()
    d = an.info(tr)
    assert d["format_version"] == "1.0" and d["timing"]["main"]["cycles_seen"] == 20


def test_events_lost_are_read_from_the_events_frames_of_an_unclosed_file(make_trace, tmp_path):
    from tests.unit.trace.framing import rewrite

    src = make_trace()
    cut = tmp_path / "cut.trace"

    def lossy_and_unclosed(rec):
        if rec["type"] == "events":
            rec["lost"] = 4
        return None if rec["type"] == "index" else rec

    rewrite(src, cut, lossy_and_unclosed)
    with pytest.warns(st.TraceWarning, match="no index"):
        tr = st.load(cut)
    assert tr.summary is None
    assert tr.events_lost == 4 * sum(1 for r in tr._layout.records if r["type"] == "events")
