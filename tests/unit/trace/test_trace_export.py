"""Exports read back by independent readers: csv module, pyarrow, vcdvcd."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow.parquet as pq
import pytest
import softplc.trace as st
import vcdvcd
from softplc.cli import main

from tests.unit.trace.tracedata import N


def run(*argv: str) -> int:
    return main(["trace", *argv])


def test_csv_has_cycle_t_and_one_column_per_signal_with_bools_as_01_and_time_in_ms(
    make_trace, tmp_path, capsys
):
    p = make_trace()
    out = tmp_path / "x.csv"
    assert run("export", str(p), "--format", "csv", "-o", str(out), "-s", "tank.*,delay,count") == 0
    assert f"wrote {N} rows of 4 signals" in capsys.readouterr().out
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["cycle", "t", "tank.level", "tank.pump", "delay", "count"]
    assert len(rows) == N + 1
    tr = st.load(p)
    for i in (0, 1, 401, N - 1):
        r = rows[i + 1]
        assert int(r[0]) == i
        assert float(r[1]) == pytest.approx(i / 1000)
        assert np.float32(r[2]) == tr["tank.level"][i]
        assert r[3] == ("1" if tr["tank.pump"][i] else "0")
        assert float(r[4]) == pytest.approx(i * 1000 / 1e6)
        assert int(r[5]) == i


def test_csv_window_exports_only_rows_in_it(make_trace, tmp_path):
    out = tmp_path / "w.csv"
    assert (
        run(
            "export",
            str(make_trace()),
            "-o",
            str(out),
            "-s",
            "count",
            "--from",
            "1s",
            "--to",
            "1.004",
        )
        == 0
    )
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert [r[0] for r in rows[1:]] == ["1000", "1001", "1002", "1003", "1004"]


def test_parquet_keeps_types_and_metadata(make_trace, tmp_path, capsys):
    p = make_trace()
    out = tmp_path / "x.parquet"
    assert run("export", str(p), "-o", str(out), "--json") == 0
    table = pq.read_table(out)
    tr = st.load(p)
    assert table.num_rows == N
    assert table.column_names[:2] == ["cycle", "t"]
    np.testing.assert_array_equal(table["tank.level"].to_numpy(), tr["tank.level"])
    assert table["tank.pump"].type == "bool"
    np.testing.assert_array_equal(table["delay"].to_numpy(), tr["delay"])
    field = table.schema.field("tank.level")
    assert field.metadata[b"unit"] == b"%" and field.metadata[b"iec_type"] == b"REAL"
    assert b"softplc.trace.header" in table.schema.metadata


def test_vcd_read_back_by_vcdvcd_matches_the_trace(make_trace, tmp_path):
    p = make_trace()
    out = tmp_path / "x.vcd"
    assert run("export", str(p), "-o", str(out)) == 0
    tr = st.load(p)
    v = vcdvcd.VCDVCD(str(out))
    assert v.timescale["unit"] == "ns"
    checks = {
        "top.tank.pump": ("tank.pump", lambda s: int(s, 2)),
        "top.count": ("count", lambda s: int(s, 2)),
        "top.speed": ("speed", lambda s: int(s, 2) - (1 << 16) * (len(s) == 16 and s[0] == "1")),
        "top.delay": ("delay", lambda s: int(s, 2)),
        "top.tank.level": ("tank.level", float),
        "top.task_main.overrun": ("task:main.overrun", lambda s: int(s, 2)),
    }
    t_rel = (tr.t_ns - np.uint64(tr.t0_ns)).astype(np.int64)
    for ref, (name, conv) in checks.items():
        sig = v[ref]
        expected = tr[name]
        # Rebuild the per-row value from the change list and compare every row.
        times = np.array([t for t, _ in sig.tv], dtype=np.int64)
        values = [conv(x) for _, x in sig.tv]
        at = np.searchsorted(times, t_rel, side="right") - 1
        got = np.array([values[i] for i in at])
        if tr.signal(name).is_float:
            np.testing.assert_array_equal(got.astype(np.float32), expected)
        else:
            np.testing.assert_array_equal(got, expected.astype(np.int64))
        # Only changes are written.
        assert len(sig.tv) == 1 + int(np.count_nonzero(np.diff(expected.astype(np.float64))))


def test_vcd_export_writes_a_gtkwave_save_file_naming_every_signal(make_trace, tmp_path, capsys):
    out = tmp_path / "y.vcd"
    assert run("export", str(make_trace()), "-o", str(out), "-s", "tank.*") == 0
    assert "GTKWave save file" in capsys.readouterr().out
    gtkw = (tmp_path / "y.gtkw").read_text()
    assert f'[dumpfile] "{out}"' in gtkw
    assert "top.tank.level" in gtkw and "top.tank.pump" in gtkw


def test_an_unknown_format_and_an_unwritable_output_are_errors(make_trace, tmp_path, capsys):
    p = str(make_trace())
    assert run("export", p, "-o", str(tmp_path / "x.xlsx")) == 2
    assert "unknown export format 'xlsx'" in capsys.readouterr().err
    assert run("export", p, "-o", str(tmp_path / "nodir" / "x.csv")) == 2
    assert "cannot write" in capsys.readouterr().err


# -- column names and gaps ---------------------------------------------------------------


def test_variables_named_like_the_fixed_columns_get_unique_column_names(tmp_path):
    p = tmp_path / "names.trace"
    st.record_arrays(
        p,
        {"t": ("INT", [5, 6, 7]), "cycle": ("DINT", [7, 8, 9]), "gap_before": ("BOOL", [1, 0, 1])},
        timing=False,
    )
    csv_out, pq_out = tmp_path / "n.csv", tmp_path / "n.parquet"
    assert run("export", str(p), "-o", str(csv_out)) == 0
    assert run("export", str(p), "-o", str(pq_out)) == 0
    with open(csv_out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["cycle", "t", "t_2", "cycle_2", "gap_before"]
    assert rows[1] == ["0", "0", "5", "7", "1"]
    table = pq.read_table(pq_out)
    assert table.column_names == ["cycle", "t", "gap_before", "t_2", "cycle_2", "gap_before_2"]
    assert table["t_2"].to_pylist() == [5, 6, 7]
    assert table["cycle"].to_pylist() == [0, 1, 2]
    assert table.schema.field("cycle_2").metadata[b"signal"] == b"cycle"


def test_csv_marks_lost_rows_with_an_empty_line(gap_trace, tmp_path):
    p = gap_trace
    out = tmp_path / "g.csv"
    assert run("export", str(p), "-o", str(out), "-s", "x") == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 90 + 1
    assert lines[29:33] == ["28,0.028,28", "29,0.029,29", "", "40,0.04,40"]
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(out)  # skips the empty line (so does pandas)
    assert table["x"].to_pylist() == [*range(30), *range(40, 100)]


def test_parquet_has_a_gap_before_column(gap_trace, tmp_path):
    p = gap_trace
    out = tmp_path / "g.parquet"
    assert run("export", str(p), "-o", str(out)) == 0
    table = pq.read_table(out)
    gaps = table["gap_before"].to_numpy()
    assert table["cycle"].to_numpy()[gaps].tolist() == [40]
    # A window starting after the gap has nothing lost before its first row.
    assert run("export", str(p), "-o", str(out), "--from", "0.040") == 0
    assert not pq.read_table(out)["gap_before"].to_numpy().any()


def test_vcd_has_a_gap_marker_high_while_rows_are_missing(gap_trace, tmp_path):
    p = gap_trace
    out = tmp_path / "g.vcd"
    assert run("export", str(p), "-o", str(out)) == 0
    v = vcdvcd.VCDVCD(str(out))
    marker = [(t, int(x, 2)) for t, x in v["top.trace_gap"].tv]
    # Low from the start, high one sample period after the last row before the gap
    # (cycle 29 at 29 ms), low again at the first row after it (cycle 40).
    assert marker == [(0, 0), (30_000_000, 1), (40_000_000, 0)]
    assert "top.trace_gap" in (tmp_path / "g.gtkw").read_text()
    # The signals themselves are unaffected.
    xs = v["top.x"].tv
    assert xs[29] == (29_000_000, bin(29)[2:]) and xs[30] == (40_000_000, bin(40)[2:])


def test_a_user_signal_named_like_the_gap_marker_is_renamed_in_the_vcd(tmp_path):
    p = tmp_path / "m.trace"
    st.record_arrays(p, {"trace_gap": ("BOOL", [1, 0, 1])}, timing=False)
    out = tmp_path / "m.vcd"
    assert run("export", str(p), "-o", str(out)) == 0
    v = vcdvcd.VCDVCD(str(out))
    assert [int(x, 2) for _, x in v["top.trace_gap_2"].tv] == [1, 0, 1]
    assert [int(x, 2) for _, x in v["top.trace_gap"].tv] == [0]


def test_plots_break_the_line_where_rows_were_lost(gap_trace):
    from softplc.trace import _plot

    p = gap_trace
    tr = st.load(p)
    x, y = _plot.series(tr, tr.signal("x"), slice(None), 1000)
    breaks = np.flatnonzero(np.isnan(y))
    assert len(breaks) == 1
    assert x[breaks[0] - 1] == pytest.approx(0.029) and x[breaks[0] + 1] == pytest.approx(0.040)
    text = _plot.terminal_plot(tr, [tr.signal("x")], slice(None), width=60, height=12, color=False)
    assert "x" in text


@pytest.mark.parametrize("fmt", ["csv", "vcd", "parquet"])
def test_an_export_in_small_chunks_is_the_same_as_in_one(gap_trace, tmp_path, monkeypatch, fmt):
    """Exports go chunk by chunk (memory bounded by the chunk); values, gaps and the gap
    marker carry across chunk boundaries, here every 7 rows, gaps included."""
    from softplc.trace import _export

    tr = st.load(gap_trace)
    sigs = tr.select(None)
    write = {
        "csv": _export.export_csv,
        "vcd": _export.export_vcd,
        "parquet": _export.export_parquet,
    }
    whole, chunked = tmp_path / f"whole.{fmt}", tmp_path / f"chunked.{fmt}"
    write[fmt](tr, sigs, str(whole), slice(3, 97))
    monkeypatch.setattr(_export, "CHUNK_ROWS", 7)
    write[fmt](tr, sigs, str(chunked), slice(3, 97))
    if fmt == "parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(chunked).equals(pq.read_table(whole))
    else:
        assert chunked.read_text() == whole.read_text()
