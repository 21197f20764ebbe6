"""``softplc trace`` output: info, show, stats, plot, diff, and bad files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from softplc.cli import main

from tests.unit.trace.tracedata import N, plant_arrays


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["trace", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- info ------------------------------------------------------------------------------


def test_info_shows_header_signals_duration_timing_and_events(make_trace, capsys):
    code, out, err = run(capsys, "info", str(make_trace()))
    assert code == 0 and err == ""
    assert "format 1.2" in out
    assert f"rows:      {N} in 6 blocks, cycles 0..{N - 1}, duration 2.999s" in out
    assert "dropped:   0 blocks (0 rows)" in out
    assert "events:    2 (fault 1, overrun 1)" in out
    assert "fault:     division by zero" in out
    assert "tank.level" in out and "%ID0" in out and "input" in out
    assert "cycle timing" in out and "wake p50" in out


def test_info_json_has_counts_percentiles_and_drops(make_trace, capsys):
    code, out, _ = run(capsys, "info", str(make_trace()), "--json")
    assert code == 0
    d = json.loads(out)
    assert d["rows"] == N and d["complete"] is True and d["dropped_blocks"] == 0
    assert d["cycle_period_ns"] == 1_000_000 and d["duration_ns"] == (N - 1) * 1_000_000
    main_t = d["timing"]["main"]
    assert main_t["wake_latency"]["max_ns"] == 0  # virtual time: start == scheduled
    assert main_t["exec_time"]["max_ns"] == 16_000
    assert main_t["overrun_rows"] == 1
    assert d["overrun_events"] == 1 and d["events_by_kind"] == {"fault": 1, "overrun": 1}
    assert [s["name"] for s in d["signals"]][4:] == list(plant_arrays())


# -- show ------------------------------------------------------------------------------


def test_show_prints_the_window_with_units_and_typed_values(make_trace, capsys):
    code, out, _ = run(
        capsys,
        "show",
        str(make_trace()),
        "-s",
        "level,pump",
        "-s",
        "delay",
        "--from",
        "0.399",
        "--to",
        "401ms",
    )
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["cycle", "t", "[s]", "tank.level", "[%]", "tank.pump", "delay"]
    assert [ln.split()[0] for ln in lines[1:]] == ["399", "400", "401"]
    assert lines[2].split()[3:] == ["TRUE", "T#400us"]


def test_show_changes_only_lists_the_rows_where_a_value_changes(make_trace, capsys):
    code, out, _ = run(capsys, "show", str(make_trace()), "-s", "pump", "--changes-only", "--json")
    assert code == 0
    d = json.loads(out)
    assert [r["cycle"] for r in d["rows"]] == [0, 400, 800, 1200, 1600, 2000, 2400, 2800]
    assert [r["values"]["tank.pump"] for r in d["rows"][:3]] == [False, True, False]


def test_show_limits_rows_and_says_how_many_more(make_trace, capsys):
    code, out, _ = run(capsys, "show", str(make_trace()), "-s", "count", "--limit", "5")
    assert code == 0
    assert f"... {N - 5} more rows" in out


# -- stats -----------------------------------------------------------------------------


def test_stats_json_gives_min_max_mean_toggles_and_a_histogram(make_trace, capsys):
    code, out, _ = run(capsys, "stats", str(make_trace()), "--json", "--bins", "7")
    assert code == 0
    d = json.loads(out)
    by = {s["name"]: s for s in d["signals"]}
    assert "task:main.exec_time" not in by  # timing is summarised by the histogram
    assert (by["count"]["min"], by["count"]["max"]) == (0, N - 1)
    assert by["count"]["mean"] == pytest.approx((N - 1) / 2)
    assert (by["tank.pump"]["rising"], by["tank.pump"]["falling"]) == (4, 3)
    assert by["tank.pump"]["changes"] == 7
    assert by["speed"]["min"] == -100 and by["speed"]["max"] == 99
    h = d["exec_time_histogram_ns"]["main"]
    assert sum(h["counts"]) == N and len(h["counts"]) == 7
    assert h["edges"][0] == 10_000 and h["edges"][-1] == 16_000


def test_stats_text_has_a_row_per_signal_and_the_histogram(make_trace, capsys):
    code, out, _ = run(capsys, "stats", str(make_trace()), "-s", "tank.*")
    assert code == 0
    assert "tank.level" in out and "4/3" in out
    assert f"execution time of task main ({N} cycles):" in out and "#" in out


# -- plot ------------------------------------------------------------------------------


def test_plot_draws_one_panel_per_signal_in_the_terminal(make_trace, capsys):
    code, out, _ = run(
        capsys, "plot", str(make_trace()), "-s", "pump,level", "--width", "80", "--height", "24"
    )
    assert code == 0
    assert "tank.pump" in out and "tank.level [%]" in out and "t [s]" in out
    assert "\033" not in out  # no colour codes when not on a terminal


def test_plot_json_keeps_spikes_when_downsampling(tmp_path, capsys):
    import softplc.trace as st

    y = np.zeros(100_000, dtype=np.float32)
    y[54_321] = 9.0
    p = tmp_path / "spike.trace"
    st.record_arrays(p, {"y": ("REAL", y)}, timing=False)
    code, out, _ = run(capsys, "plot", str(p), "-s", "y", "--json", "--width", "60")
    assert code == 0
    (series,) = json.loads(out)["series"]
    assert len(series["values"]) < 300
    assert max(series["values"]) == 9.0


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_out_writes_a_picture(make_trace, tmp_path, capsys, suffix):
    out = tmp_path / f"p{suffix}"
    code, text, _ = run(capsys, "plot", str(make_trace()), "-s", "pump,level", "--out", str(out))
    assert code == 0 and f"wrote {out}" in text
    head = out.read_bytes()[:200]
    assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in out.read_bytes()


def test_plot_to_an_unknown_picture_type_is_an_error(make_trace, tmp_path, capsys):
    code, _, err = run(
        capsys, "plot", str(make_trace()), "-s", "pump", "--out", str(tmp_path / "p.bmp")
    )
    assert code == 2 and "unknown picture type .bmp" in err


# -- diff ------------------------------------------------------------------------------


def test_diff_of_identical_traces_exits_0(make_trace, capsys):
    a, b = make_trace("a.trace"), make_trace("b.trace")
    code, out, _ = run(capsys, "diff", str(a), str(b))
    assert code == 0 and out.startswith("same: 5 signals")


def test_diff_reports_the_first_divergence_per_signal_and_exits_1(make_trace, capsys):
    a = make_trace("a.trace")
    changed = plant_arrays()
    lv = changed["tank.level"]["values"].copy()
    lv[1234:1240] += 0.5
    changed["tank.level"]["values"] = lv
    changed["count"] = ("DINT", np.arange(N) + (np.arange(N) >= 2000))
    b = make_trace("b.trace", changed)
    code, out, _ = run(capsys, "diff", str(a), str(b), "--json")
    assert code == 1
    d = json.loads(out)
    by = {r["name"]: r for r in d["signals"]}
    assert by["tank.level"]["first"]["cycle"] == 1234
    assert by["tank.level"]["rows_differing"] == 6
    assert by["count"]["first"] == {
        "cycle": 2000,
        "t": 2.0,
        "a": 2000,
        "b": 2001,
        "a_text": "2000",
        "b_text": "2001",
    }
    assert by["tank.pump"]["status"] == "same"
    # Within the tolerance the level is the same; a signal choice narrows the comparison.
    code, out, _ = run(capsys, "diff", str(a), str(b), "--tol", "0.6", "-s", "tank.level")
    assert code == 0, out
    code, out, _ = run(capsys, "diff", str(a), str(b), "-s", "count")
    assert code == 1
    assert "count: first at cycle 2000 (t=2.000000s): 2000 vs 2001; 1000 rows differ" in out


def test_diff_counts_missing_signals_and_different_lengths_as_differences(make_trace, capsys):
    a = make_trace("a.trace")
    short = {k: v for k, v in plant_arrays(N - 10).items() if k != "speed"}
    b = make_trace("b.trace", short)
    code, out, _ = run(capsys, "diff", str(a), str(b))
    assert code == 1
    assert "speed: missing in B" in out
    assert f"rows: A has {N}, B has {N - 10}, {N - 10} in common" in out


# -- bad files -------------------------------------------------------------------------


@pytest.mark.parametrize("content", [None, b"", b"GIF89a....", b"\x89SPLTRC\n\x05"])
def test_bad_files_give_one_line_and_exit_2_for_every_command(tmp_path, capsys, content):
    p = tmp_path / "bad.trace"
    if content is not None:
        p.write_bytes(content)
    for argv in (
        ["info", str(p)],
        ["show", str(p), "-s", "x"],
        ["stats", str(p), "--json"],
        ["plot", str(p), "-s", "x"],
        ["export", str(p), "-o", str(tmp_path / "o.csv")],
        ["diff", str(p), str(p)],
    ):
        code, _out, err = run(capsys, *argv)
        assert code == 2, argv
        assert err.startswith("softplc: error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err


def test_a_truncated_file_warns_and_shows_what_it_holds(make_trace, tmp_path, capsys):
    data = make_trace().read_bytes()
    p = tmp_path / "cut.trace"
    p.write_bytes(data[: len(data) * 2 // 3])
    code, out, err = run(capsys, "info", str(p), "--json")
    assert code == 0
    assert "softplc: warning:" in err and "incomplete" in err
    d = json.loads(out)
    assert d["complete"] is False and 0 < d["rows"] < N and d["warnings"]


def test_an_unknown_signal_names_close_matches(make_trace, capsys):
    code, _, err = run(capsys, "show", str(make_trace()), "-s", "tank.levle")
    assert code == 2 and "did you mean tank.level" in err


def test_the_real_command_never_prints_a_traceback(tmp_path):
    p = tmp_path / "empty.trace"
    p.write_bytes(b"")
    r = subprocess.run(
        [sys.executable, "-m", "softplc.cli", "trace", "info", str(p)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert r.stderr == f"softplc: error: {p}: the file is empty (the trace recorded nothing)\n"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_trigger_sends_sigusr1_to_the_recording_process(capsys):
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import signal, sys, time\n"
                "signal.signal(signal.SIGUSR1, lambda *a: (print('triggered'), sys.exit(0)))\n"
                "print('ready', flush=True)\n"
                "time.sleep(30)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        # Not softplc run: refused unless forced.
        code, _, err = run(capsys, "trigger", str(child.pid))
        assert code == 2 and "it is not softplc run" in err and "--force" in err
        assert child.poll() is None
        code, out, _ = run(capsys, "trigger", str(child.pid), "--force")
        assert code == 0 and f"trigger sent to process {child.pid}" in out
        assert child.wait(timeout=10) == 0
        assert child.stdout.read() == "triggered\n"
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    code, _, err = run(capsys, "trigger", str(child.pid), "--force")
    assert code == 2 and "no process" in err
    code, _, err = run(capsys, "trigger", str(child.pid))
    assert code == 2 and "no process" in err


# -- findings of the review ------------------------------------------------------------


def test_plot_of_one_signal_draws_it_in_the_terminal(make_trace, capsys):
    code, out, err = run(
        capsys, "plot", str(make_trace()), "-s", "level", "--width", "70", "--height", "14"
    )
    assert code == 0, err
    assert "tank.level [%]" in out and "t [s]" in out
    # The curve itself is drawn (braille or block characters inside the frame).
    assert any(ch in out for ch in "▗▖▘▝▚▞▀▄▌▐")


def test_plot_of_one_signal_writes_a_picture(make_trace, tmp_path, capsys):
    out = tmp_path / "one.png"
    code, text, _ = run(capsys, "plot", str(make_trace()), "-s", "pump", "--out", str(out))
    assert code == 0 and text == f"wrote {out}\n" and out.read_bytes()[:4] == b"\x89PNG"


def test_an_unexpected_failure_is_one_error_line_not_a_traceback(make_trace, capsys, monkeypatch):
    from softplc.trace import _analysis

    def broken(tr):
        raise ValueError("something nobody expected")

    monkeypatch.setattr(_analysis, "info", broken)
    code, out, err = run(capsys, "info", str(make_trace()))
    assert code == 2 and out == ""
    assert err == (
        "softplc: error: softplc trace info failed unexpectedly: "
        "ValueError: something nobody expected\n"
    )


def test_show_refuses_a_negative_limit(make_trace, capsys):
    code, out, err = run(capsys, "show", str(make_trace()), "-s", "count", "--limit", "-5")
    assert code == 2 and out == ""
    assert "--limit must be 0 (all rows) or more (got -5)" in err


def test_events_lists_the_engine_events_in_time_order(make_trace, capsys):
    code, out, _ = run(capsys, "events", str(make_trace()))
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[1].split()[:4] == ["1.500000", "overrun", "main", "1"]
    assert lines[2].split()[:3] == ["2.000000", "fault", "-"]
    assert "division by zero" in lines[2]
    assert lines[-1] == "2 events; 0 lost before they were recorded"
    code, out, _ = run(capsys, "events", str(make_trace("b.trace")), "--json", "--kind", "fault")
    d = json.loads(out)
    assert d["events_lost"] == 0
    assert d["events"] == [
        {
            "t": 2.0,
            "t_ns": 2_000_000_000,
            "kind": "fault",
            "task": None,
            "a": 0,
            "b": 0,
            "text": "division by zero",
        }
    ]


def test_info_shows_events_lost_and_incomplete_captures(make_trace, tmp_path, capsys):
    from tests.unit.trace.framing import rewrite

    src = make_trace()
    lossy = tmp_path / "lossy.trace"

    def lose_three(rec):
        if rec["type"] == "index":
            rec["summary"]["events_lost"] = 3
        return rec

    rewrite(src, lossy, lose_three)
    code, out, _ = run(capsys, "info", str(lossy), "--json")
    assert code == 0 and json.loads(out)["events_lost"] == 3
    code, out, _ = run(capsys, "info", str(lossy))
    assert "events:    2 (fault 1, overrun 1), 3 lost" in out
    # A capture the recording stopped before its post-trigger rows were all taken.
    p = make_trace(
        "cut.trace", {"on": ("BOOL", np.arange(100) >= 90)}, trigger="rising:on", pre=5, post=50
    )
    code, out, _ = run(capsys, "info", str(p), "--json")
    d = json.loads(out)
    assert (d["captures"], d["incomplete_captures"]) == (1, 1)
    code, out, _ = run(capsys, "info", str(p))
    assert "captures:  1, 1 incomplete" in out


def test_info_shows_the_engine_state_and_the_wall_clock_of_the_first_row(make_trace, capsys):
    code, out, _ = run(capsys, "info", str(make_trace()), "--json")
    d = json.loads(out)
    assert code == 0 and d["engine_state"] == "RUN"
    assert d["clock_ref"]["clock"] == "virtual" and d["clock_ref"]["engine_ns"] == 0
    assert d["first_row_utc"] is not None and d["first_row_utc"].startswith("20")


def test_stats_histogram_counts_each_cycle_of_a_slow_task_once(tmp_path, capsys):
    """The slow task (10 ms) shows each of its cycles in ten rows of the 1 ms trace task;
    its histogram counts cycles, not rows."""
    import softplc
    from softplc import DINT, Engine

    e = Engine(clock="virtual", cycle="1ms")
    try:
        e.declare("a", "memory", DINT)
        e.declare("b", "memory", DINT)
        e.add_task("main", period="1ms")
        e.add_task("slow", period="10ms")
        e.add_program(lambda io: io.__setitem__("a", io["a"] + 1), task="main", name="fa")
        e.add_program(lambda io: io.__setitem__("b", io["b"] + 1), task="slow", name="fb")
        e.start()
        p = tmp_path / "mt.trace"
        rec = softplc.trace.start_trace(e, p)
        e.run_cycles(1000)
        rec.stop()
    finally:
        e.close()
    code, out, _ = run(capsys, "stats", str(p), "--json")
    d = json.loads(out)
    assert d["exec_time_cycles"] == {"main": 1000, "slow": 100}
    assert sum(d["exec_time_histogram_ns"]["slow"]["counts"]) == 100
    code, out, _ = run(capsys, "info", str(p), "--json")
    assert code == 0 and json.loads(out)["timing"]["slow"]["cycles_seen"] == 100
    code, out, _ = run(capsys, "stats", str(p), "--from", "0.5")
    assert code == 0 and "execution time of task slow (50 cycles):" in out


def test_trigger_target_check_accepts_only_a_triggered_softplc_run():
    from softplc.cli.trace import trigger_target_problem as problem

    assert (
        problem(["/usr/bin/softplc", "run", "p.py", "--trace", "t", "--trace-trigger", "manual"])
        is None
    )
    assert problem(["python3", "-m", "softplc.cli", "run", "p.py", "--trace-trigger=x>1"]) is None
    assert "continuous" in problem(["softplc", "run", "p.py", "--trace", "t.trace"])
    assert "records no trace" in problem(["softplc", "run", "p.py"])
    assert problem(["softplc", "trace", "info", "--trace-trigger"]) == "it is not softplc run"
    assert problem(["bash", "-c", "softplc run"]) == "it is not softplc run"


def test_show_marks_lost_rows(gap_trace, capsys):
    code, out, _ = run(capsys, "show", str(gap_trace), "-s", "x", "--from", "28ms", "--to", "41ms")
    assert code == 0
    lines = [ln.split() for ln in out.strip().splitlines()[1:]]
    assert [ln[0] for ln in lines] == ["28", "29", "(gap)", "40", "41"]
    code, out, _ = run(capsys, "show", str(gap_trace), "-s", "x", "--from", "29ms", "--json")
    rows = json.loads(out)["rows"]
    assert [(r["cycle"], r["gap_before"]) for r in rows[:3]] == [
        (29, False),
        (40, True),
        (41, False),
    ]


def test_every_command_that_reads_a_file_takes_verify_and_no_verify(make_trace, tmp_path, capsys):
    p = str(make_trace())
    for argv in (
        ["info", p],
        ["show", p, "-s", "count"],
        ["stats", p],
        ["plot", p, "-s", "count", "--json"],
        ["events", p],
        ["export", p, "-o", str(tmp_path / "o.csv")],
        ["diff", p, p],
    ):
        for flag in ("--verify", "--no-verify"):
            assert main(["trace", *argv, flag]) == 0, (argv, flag, capsys.readouterr().err)
    capsys.readouterr()


def test_text_from_a_trace_file_cannot_drive_the_terminal(tmp_path, capsys):
    """Names, units and event texts come from the file: control characters are shown as
    escapes, never sent to the terminal (and never break a table row)."""
    import softplc.trace as st

    p = tmp_path / "esc.trace"
    st.record_arrays(
        p,
        {"x\x1b[2J": {"type": "INT", "values": [1, 2], "unit": "m\r\n"}},
        events=[{"t_ns": 0, "kind": "info", "text": "bell\x07\x1b]0;title\x07"}],
        timing=False,
    )
    for argv in (
        ["info", str(p)],
        ["stats", str(p)],
        ["events", str(p)],
        ["show", str(p), "-s", "*"],
    ):
        assert main(["trace", *argv]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out, argv
    main(["trace", "info", str(p)])
    assert "x\\x1b[2J" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stats", "--bins", "0"], "--bins must be from 1 to 100000 (got 0)"),
        (["stats", "--bins", "1000000000000"], "--bins must be from 1 to 100000"),
        (["plot", "-s", "count", "--width", "-3"], "--width must be from 1 to 10000 (got -3)"),
        (["plot", "-s", "count", "--height", "99999999"], "--height must be from 1 to 10000"),
    ],
)
def test_sizes_a_user_gives_are_bounded(make_trace, capsys, argv, message):
    code, out, err = run(capsys, argv[0], str(make_trace()), *argv[1:])
    assert code == 2 and out == "" and message in err
