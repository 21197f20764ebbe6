"""Hostile, damaged and malformed trace files: every command returns promptly, within a
memory limit, and either reads the file or names what is wrong with it in one line.

The crafted files are built here from a real recording (``crafted.py``). The resource
bound is checked the way a user meets it: the real CLI in a child process under an
address-space limit (``RLIMIT_AS``) and a time-out.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import softplc.trace as st
from softplc.cli import main

from tests.unit.trace import crafted

#: Address space a command may use: the interpreter with NumPy and pyarrow loaded takes
#: about 300 MiB of it; the crafted files are at most 15 MB.
MEMORY_LIMIT = 512 << 20
#: Seconds for all the commands of one test together (each takes well under a second
#: on these files; before the reader was bounded some took minutes).
TIME_LIMIT = 60

#: Runs ``softplc`` command lines one after the other in one process (the imports are
#: paid once) and prints, per command, its exit status and what it wrote to stderr.
_DRIVER = """
import contextlib, io, json, sys
from softplc.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(argv)
    results.append({"argv": argv, "code": code, "stderr": err.getvalue(),
                    "stdout": out.getvalue()[:20000]})
print(json.dumps(results))
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(*commands: list[str]) -> list[dict]:
    """The results of ``softplc`` command lines run in a child process with at most
    ``MEMORY_LIMIT`` bytes of address space, all within ``TIME_LIMIT`` seconds."""
    r = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps([[str(a) for a in c] for c in commands])],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        preexec_fn=_limit_memory,
        check=False,
    )
    assert r.returncode == 0, f"the child died ({r.returncode}): {r.stderr[-3000:]}"
    results: list[dict] = json.loads(r.stdout)
    return results


def every_command(p: Path, out: Path, signal: str = "count") -> list[list[str]]:
    """Every ``softplc trace`` command that reads a file, on ``p``."""
    return [
        ["trace", "info", str(p)],
        ["trace", "info", str(p), "--no-verify"],
        ["trace", "show", str(p), "-s", signal],
        ["trace", "stats", str(p)],
        ["trace", "events", str(p)],
        ["trace", "plot", str(p), "-s", signal, "--json"],
        ["trace", "export", str(p), "-o", str(out / "o.csv")],
        ["trace", "export", str(p), "-o", str(out / "o.vcd")],
        ["trace", "export", str(p), "-o", str(out / "o.parquet")],
        ["trace", "diff", str(p), str(p)],
    ]


def assert_refused(results: list[dict], *fragments: str) -> None:
    """Every command failed with exit 2 and one line naming the culprit."""
    for r in results:
        err = r["stderr"]
        assert r["code"] == 2, r
        assert err.startswith("softplc: error: ") and err.count("\n") == 1, r
        assert "unexpectedly" not in err and "Traceback" not in err, r
        for text in fragments:
            assert text in err, (text, r)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return crafted.recorded(tmp_path / "src.trace")


# -- the campaign's findings -------------------------------------------------------------


def test_a_block_claiming_2_64_rows_is_refused_by_every_command(source, tmp_path):
    p = crafted.huge_row_count(source, tmp_path / "huge.trace")
    results = run_limited(*every_command(p, tmp_path))
    assert_refused(results, str(p), "(block 0 at byte", "'rows' is 18446744073709551615")
    # The message says what the frame could hold.
    assert "holds from 1 to" in results[0]["stderr"]


def test_an_index_listing_one_block_100000_times_is_refused_by_every_command(tmp_path):
    # Blocks of 2000 rows with the timing columns: reading the index as it claims
    # would gather 200 million rows.
    src = crafted.recorded(tmp_path / "src.trace", rows=4000, block_rows=2000)
    p = crafted.repeated_index_entries(src, tmp_path / "rep.trace")
    results = run_limited(*every_command(p, tmp_path))
    assert_refused(results, str(p), "index entry 1 of 'blocks' lists the block at byte", "again")


def test_200000_signals_without_rows_are_read_in_bounded_time_and_memory(source, tmp_path):
    p = crafted.many_empty_signals(source, tmp_path / "wide.trace")
    info, stats, stats_json, csv, parquet = run_limited(
        ["trace", "info", str(p)],
        ["trace", "stats", str(p)],
        ["trace", "stats", str(p), "--json"],
        ["trace", "export", str(p), "-o", str(tmp_path / "wide.csv")],
        ["trace", "export", str(p), "-o", str(tmp_path / "wide.parquet")],
    )
    for r in (info, stats, csv):
        assert r["code"] == 0 and r["stderr"] == "", r
    assert "rows:      0 in 0 blocks" in info["stdout"]
    assert "200000 signals:" in info["stdout"] and "... 199960 more" in info["stdout"]
    assert stats_json["code"] == 0 and stats_json["stderr"] == ""
    assert stats["stdout"].splitlines()[1].split() == ["plant.s0", "BOOL", "-", "-", "-", "-", "0"]
    assert (tmp_path / "wide.csv").read_text().startswith("cycle,t,plant.s0,plant.s1,")
    # Parquet keeps kilobytes per column: a clear refusal, not an abort.
    assert_refused([parquet], "a Parquet export takes at most 10000 signals, 200000 are selected")


@pytest.mark.parametrize("delta", [-4, 4])
def test_a_column_longer_or_shorter_than_its_rows_is_named(source, tmp_path, delta):
    p = crafted.lying_column(source, tmp_path / "lying.trace", delta)
    results = run_limited(*every_command(p, tmp_path))
    # Verification checks every block's columns when the file is opened; without it the
    # columns are checked when read (here by every command except info --no-verify and
    # events, which read no column).
    results = [
        r for r in results if r["argv"][1] not in ("events",) and "--no-verify" not in r["argv"]
    ]
    got = 80 + delta
    assert_refused(
        results,
        str(p),
        "block 1 at byte",
        f"column 2 ('task:main.scheduled_ns') holds {got} bytes, expected 80 (10 rows of 8 bytes)",
    )


def test_a_flipped_bit_in_a_data_column_is_caught_by_default_and_read_with_no_verify(
    source, tmp_path
):
    p, block = crafted.flipped_bit(source, tmp_path / "flip.trace")
    results = run_limited(*every_command(p, tmp_path, "tank.level"))
    checked = [r for r in results if "--no-verify" not in r["argv"]]
    assert_refused(checked, str(p), f"at byte {block} is damaged (checksum mismatch)")
    # --no-verify trusts the data: the damaged value is read as the campaign saw it.
    (show,) = run_limited(
        [
            "trace",
            "show",
            str(p),
            "-s",
            "tank.level",
            "--from",
            "17ms",
            "--to",
            "17ms",
            "--no-verify",
            "--json",
        ]
    )
    assert show["code"] == 0, show
    (row,) = json.loads(show["stdout"])["rows"]
    assert row["values"]["tank.level"] == pytest.approx(float(crafted.FLIPPED))
    assert abs(row["values"]["tank.level"]) < 1e-36
    # And the library, the same way.
    with pytest.raises(st.TraceError, match=f"at byte {block} is damaged"):
        st.load(p)
    assert st.load(p, verify=False)["tank.level"][17] == crafted.FLIPPED


def test_a_million_gaps_export_in_time_proportional_to_the_rows(tmp_path):
    """Every row follows a gap: the exports mark each one without work per gap that
    grows with the rows (a CSV table per run of rows, a list popped from the front)."""
    p = crafted.every_row_after_a_gap(tmp_path / "gaps.trace", 1_000_000)
    csv, vcd = run_limited(
        ["trace", "export", str(p), "-o", str(tmp_path / "g.csv")],
        ["trace", "export", str(p), "-o", str(tmp_path / "g.vcd")],
    )
    assert csv["code"] == 0 and vcd["code"] == 0, (csv, vcd)
    with open(tmp_path / "g.csv") as f:
        head = [next(f) for _ in range(5)]
    assert head == ["cycle,t,x\n", "0,0,0\n", "\n", "2,0.001,1\n", "\n"]


# -- damage to the other frames of a closed file -------------------------------------------


@pytest.mark.parametrize(
    ("kind", "named"),
    [
        ("events", "the events frame at byte {at} is damaged (checksum mismatch)"),
        ("index", "the index frame at byte {at} is damaged (checksum mismatch)"),
        ("block", "block 0 at byte {at} is damaged (checksum mismatch)"),
    ],
)
def test_damage_to_any_frame_of_a_closed_trace_is_named(source, tmp_path, capsys, kind, named):
    p, at = crafted.damaged_frame(source, tmp_path / "dmg.trace", kind)
    for argv in every_command(p, tmp_path):
        if "--no-verify" in argv:
            continue
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err == f"softplc: error: {p}: {named.format(at=at)}\n", argv


def test_a_damaged_end_frame_of_a_closed_trace_is_an_error_not_a_cut(source, tmp_path):
    data = bytearray(source.read_bytes())
    data[-1] ^= 0x01
    p = tmp_path / "end.trace"
    p.write_bytes(bytes(data))
    with pytest.raises(st.TraceError, match=rf"frame at byte {len(data) - 33} is damaged"):
        st.load(p)
    # Unchecked, it reads as a file cut short: every block, with a warning.
    with pytest.warns(st.TraceWarning, match="damaged"):
        assert st.load(p, verify=False).rows == 50


def test_a_file_cut_short_while_recording_still_reads_to_its_last_whole_block(
    source, tmp_path, capsys
):
    data = source.read_bytes()
    cut = tmp_path / "cut.trace"
    third = crafted.frame_offset(source, "block", 2)
    cut.write_bytes(data[: third + 100])
    code = main(["trace", "info", str(cut), "--json"])
    out = capsys.readouterr()
    assert code == 0 and "softplc: warning:" in out.err and "incomplete" in out.err
    assert json.loads(out.out)["rows"] == 20


# -- malformed files whose checksums are right ---------------------------------------------


def _set(key, value):
    def change(rec):
        rec[key] = value

    return change


def _first_signal(key, value):
    def change(rec):
        rec["signals"][4][key] = value

    return change


def _first_event(key, value):
    def change(rec):
        rec["events"][0][key] = value

    return change


def _index_blocks(edit):
    def change(rec):
        rec["blocks"] = edit(rec["blocks"])

    return change


MALFORMED = [
    # (frame type, change, rebuild the index, what the message says)
    ("header", _set("version", "1.1"), True, "header: 'version' must be [major, minor], got '1.1'"),
    ("header", _set("signals", {"a": 1}), True, "header: 'signals' must be an array"),
    ("header", _set("columns", []), True, "header: 'columns' must be cycle <u8 and t_ns <u8"),
    ("header", _set("decimate", 0), True, "header: 'decimate' must be an integer from 1 to"),
    (
        "header",
        _set("created_unix_ns", 2**63),
        True,
        "header: 'created_unix_ns' must be an integer",
    ),
    (
        "header",
        _set("clock_ref", {"engine_ns": -1}),
        True,
        "header: clock_ref: 'engine_ns' must be",
    ),
    ("header", _set("meta", [1, 2]), True, "header: 'meta' must be a map or nil"),
    (
        "header",
        _first_signal("dtype", "<f8"),
        True,
        "header: signal 4 ('tank.level'): dtype '<f8' does not match type REAL ('<f4')",
    ),
    (
        "header",
        _first_signal("type", "STRING"),
        True,
        "header: signal 4 ('tank.level'): unknown type 'STRING'",
    ),
    ("header", _first_signal("name", 7), True, "header: signal 4: 'name' must be a string, got 7"),
    (
        "header",
        lambda rec: rec["signals"][2].update(type="BOOL", dtype="|b1"),
        True,
        "header: signal 2 ('task:main.exec_time'): a task's exec_time signal must be TIME",
    ),
    ("block", _set("rows", 0), True, "'rows' is 0, but its frame of"),
    ("block", _set("seq", -1), True, "'seq' must be an integer from 0 to"),
    ("block", _set("t_last_ns", "soon"), True, "'t_last_ns' must be an integer, got 'soon'"),
    ("block", lambda rec: rec["columns"].pop(), True, "'columns' holds 8 columns, expected 9"),
    ("block", lambda rec: rec.pop("columns"), True, "'rows' is 10, but its frame of 84 bytes"),
    ("block", lambda rec: rec.__setitem__("colums", rec.pop("columns")), True, "has no 'columns'"),
    (
        "block",
        lambda rec: rec["columns"].__setitem__(3, "text"),
        True,
        "column 3 ('task:main.start_ns') is not a byte string",
    ),
    (
        "events",
        _first_event("t_ns", "noon"),
        True,
        "event 0: 't_ns' must be an integer, got 'noon'",
    ),
    ("events", _first_event("task", 2**63), True, "event 0: 'task' must be an integer from"),
    ("events", _set("events", "none"), True, "'events' must be an array, got 'none'"),
    ("events", _set("lost", -3), True, "'lost' must be an integer from 0 to"),
    (
        "index",
        _set("blocks", [[1, 2, 3]]),
        True,
        "index entry 0 of 'blocks' must be [offset, seq, rows",
    ),
    (
        "index",
        _index_blocks(lambda b: [b[1], b[0], *b[2:]]),
        True,
        "before the end of the frame listed before it",
    ),
    (
        "index",
        _index_blocks(lambda b: [[b[0][0] + 3, *b[0][1:]], *b[1:]]),
        True,
        "index entry 0 of 'blocks' points at byte",
    ),
    (
        "index",
        _index_blocks(lambda b: [[*b[0][:2], 5, *b[0][3:]], *b[1:]]),
        True,
        "the index says rows=5, the block says rows=10",
    ),
    (
        "index",
        _index_blocks(lambda b: b[:-1]),
        True,
        "the index does not list the block frame at byte",
    ),
    ("index", lambda rec: rec["records"].append(rec["records"][0]), True, "overlapping frames"),
    (
        "index",
        lambda rec: rec["records"][0].__setitem__(1, "gap"),
        True,
        "the index says 'gap', the frame holds 'events'",
    ),
    (
        "index",
        _set("summary", {"events_lost": "many"}),
        True,
        "the index summary: 'events_lost' must be an integer",
    ),
    ("index", _set("type", "indx"), True, "its type is 'indx', expected 'index'"),
    # The index of the unchanged file, now pointing into frames that grew.
    (
        "header",
        _set("writer", "a much longer writer name than before"),
        False,
        "index entry 0 of 'blocks'",
    ),
]


@pytest.mark.parametrize(
    ("kind", "change", "rebuild", "message"),
    MALFORMED,
    ids=[f"{k}-{i}" for i, (k, *_rest) in enumerate(MALFORMED)],
)
def test_a_malformed_file_with_right_checksums_gives_one_line_naming_the_field(
    source, tmp_path, capsys, kind, change, rebuild, message
):
    p = crafted.edited(source, tmp_path / "bad.trace", kind, change, index=rebuild)
    # Without verification a file is read as far as each command needs (its header and
    # index always): the fuzz test holds those commands to fail only with a TraceError.
    for argv in every_command(p, tmp_path, "count"):
        if "--no-verify" in argv:
            continue
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert err.startswith(f"softplc: error: {p}: ") and err.count("\n") == 1, (argv, err)
        assert "unexpectedly" not in err
        assert message in err, (argv, err)
    with pytest.raises(st.TraceError, match=str(p)):
        st.load(p)


def test_every_value_read_from_a_damaged_file_is_checked_before_numpy_sees_it(source, tmp_path):
    """A block whose metadata is right but whose rows run past its frame would make
    NumPy read beyond the block: the row count is checked against the frame first."""

    def more_rows(rec):
        if rec["seq"] == 4:
            rec["rows"] = 11
            rec["last_cycle"] += 1

    p = crafted.edited(source, tmp_path / "rows.trace", "block", more_rows)
    for verify in (True, False):
        with pytest.raises(st.TraceError, match=r"column 0 .'cycle'. holds 80 bytes, expected 88"):
            tr = st.load(p, verify=verify)
            np.asarray(tr["count"])
