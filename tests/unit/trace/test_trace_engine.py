"""Traces on a running engine: virtual and real time, triggers, events, the CLI run."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import softplc
import softplc.trace as st
from softplc import BOOL, DINT, REAL, Engine
from softplc.cli.trace import start_from_args

from tests.conftest import PROGRAMS, thread_count


def mixer(io):
    io["mixer.count"] = io["mixer.count"] + 1
    io["mixer.lamp"] = io["mixer.start"]
    io["mixer.level"] = io["mixer.count"] * 0.5


def engine(engines, clock="virtual", cycle="1ms"):
    e = Engine(clock=clock, cycle=cycle)
    engines.append(e)
    e.declare("mixer.start", "input", BOOL, "%IX0.0")
    e.declare("mixer.lamp", "output", BOOL)
    e.declare("mixer.count", "memory", DINT)
    e.declare("mixer.level", "memory", REAL)
    e.add_program(mixer)
    e.start()
    return e


def test_a_virtual_engine_trace_holds_every_cycle_and_its_values(engines, tmp_path):
    e = engine(engines)
    e.run_cycles(10)
    p = tmp_path / "v.trace"
    rec = st.start_trace(e, p, program_path=PROGRAMS / "tank.py")
    e.run_cycles(50)
    stats = rec.stop()
    assert stats["rows_written"] == 50 and stats["dropped_blocks"] == 0
    tr = st.load(p)
    assert tr.cycle.tolist() == list(range(10, 60))
    assert tr["mixer.count"].tolist() == list(range(11, 61))
    np.testing.assert_array_equal(tr["mixer.level"], np.arange(11, 61) * 0.5)
    assert e.read("mixer.count") == 60
    # Virtual time: rows 1 ms apart, actual start equal to scheduled.
    assert np.all(np.diff(tr.t_ns) == 1_000_000)
    np.testing.assert_array_equal(tr["task:main.start_ns"], tr["task:main.scheduled_ns"])
    assert tr.header["meta"]["clock"] == "virtual"
    assert tr.header["program"]["names"] == "mixer"
    assert len(tr.header["program"]["sha256"]) == 64
    assert tr.signal("mixer.start").kind == "input"


def test_forces_and_state_changes_are_events_in_the_trace(engines, tmp_path):
    e = engine(engines)
    p = tmp_path / "ev.trace"
    rec = st.start_trace(e, p)
    e.run_cycles(3)
    e.force("mixer.start", True)
    e.run_cycles(3)
    e.unforce("mixer.start")
    e.stop()
    e.run_cycles(2)
    rec.stop()
    tr = st.load(p)
    kinds = [ev["kind"] for ev in tr.events]
    assert "force" in kinds and "unforce" in kinds and "state" in kinds
    force = next(ev for ev in tr.events if ev["kind"] == "force")
    assert "mixer.start" in force["text"]
    assert tr["mixer.lamp"][3:6].tolist() == [True, True, True]


def test_a_rising_edge_on_an_engine_input_captures_the_window(engines, tmp_path):
    e = engine(engines)
    p = tmp_path / "trig.trace"
    rec = st.start_trace(e, p, trigger="rising:mixer.start", pre=4, post=3)
    e.run_cycles(20)
    assert not rec.wait_for_trigger(timeout=0)
    e.write("mixer.start", True)
    e.run_cycles(20)
    assert rec.wait_for_trigger(timeout=5)
    rec.stop()
    tr = st.load(p)
    (trig,) = tr.triggers
    k = trig["cycle"]
    assert tr.cycle.tolist() == list(range(k - 4, k + 4))
    assert tr["mixer.start"].tolist() == [False] * 4 + [True] * 4


def test_a_manual_trigger_from_python_captures_around_the_next_cycle(engines, tmp_path):
    e = engine(engines)
    p = tmp_path / "man.trace"
    rec = st.start_trace(e, p, trigger="manual", pre=2, post=2)
    e.run_cycles(10)
    rec.trigger()
    e.run_cycles(10)
    rec.stop()
    tr = st.load(p)
    assert tr.cycle.tolist() == [8, 9, 10, 11, 12]
    assert tr.triggers[0]["forced"] is True


def test_start_and_stop_are_guarded(engines, tmp_path):
    e = engine(engines)
    rec = st.start_trace(e, tmp_path / "a.trace")
    with pytest.raises(st.TraceError, match="already recording"):
        st.start_trace(e, tmp_path / "b.trace")
    e.run_cycles(2)
    assert st.stop_trace(e)["rows_written"] == 2
    assert rec.stop()["rows_written"] == 2  # idempotent
    with pytest.raises(st.TraceError, match="no trace is recording"):
        st.stop_trace(e)
    with pytest.raises(softplc.ConfigError, match="matches no variable"):
        st.start_trace(e, tmp_path / "c.trace", signals="valve.*")
    assert not (tmp_path / "c.trace").exists()
    # A failed start leaves the engine free for the next trace.
    st.start_trace(e, tmp_path / "d.trace", signals="mixer.*").stop()


def test_stopping_after_the_engine_closed_still_finishes_the_file(engines, tmp_path):
    e = engine(engines)
    rec = st.start_trace(e, tmp_path / "c.trace")
    e.run_cycles(5)
    e.close()
    assert rec.stop()["rows_written"] >= 5
    assert st.load(tmp_path / "c.trace").complete


def test_the_writer_thread_ends_with_the_trace(engines, tmp_path):
    e = engine(engines)
    before = thread_count()
    rec = st.start_trace(e, tmp_path / "t.trace")
    assert thread_count() == before + 1
    e.run_cycles(5)
    rec.stop()
    assert thread_count() == before


def test_a_real_time_engine_is_traced_without_losing_blocks(engines, tmp_path):
    e = engine(engines, clock="real", cycle="1ms")
    p = tmp_path / "rt.trace"
    rec = st.start_trace(e, p)
    e.run_for("300ms")
    stats = rec.stop()
    assert stats["dropped_blocks"] == 0
    tr = st.load(p)
    assert 100 <= tr.rows <= 400
    lat = tr["task:main.start_ns"].astype(np.int64) - tr["task:main.scheduled_ns"].astype(np.int64)
    assert (lat >= 0).all()
    assert tr.header["meta"]["clock"] == "real"


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
def test_sigusr1_forces_the_trigger_of_a_run_trace(engines, tmp_path):
    assert threading.current_thread() is threading.main_thread()
    e = engine(engines)
    args = argparse.Namespace(
        trace=str(tmp_path / "sig.trace"),
        trace_signals=["mixer.count"],
        trace_decimate=1,
        trace_trigger="manual",
        trace_pre=1,
        trace_post=1,
    )
    before = signal.getsignal(signal.SIGUSR1)
    rec = start_from_args(e, args)
    assert rec is not None
    e.run_cycles(5)
    os.kill(os.getpid(), signal.SIGUSR1)
    e.run_cycles(5)
    rec.stop()
    assert signal.getsignal(signal.SIGUSR1) is before
    tr = st.load(tmp_path / "sig.trace")
    assert tr.rows == 3 and tr.triggers[0]["forced"]
    assert start_from_args(e, argparse.Namespace(trace=None)) is None


def test_softplc_run_with_trace_in_virtual_time(tmp_path):
    p = tmp_path / "run.trace"
    cli = [sys.executable, "-m", "softplc.cli"]
    r = subprocess.run(
        [
            *cli,
            "run",
            str(PROGRAMS / "tank.py"),
            "--virtual",
            "--cycles",
            "300",
            "--reference",
            "--trace",
            str(p),
            "--trace-signals",
            "tank.*",
            "--trace-decimate",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    # The run says where the trace went.
    assert f"softplc: trace written to {p} (100 rows)\n" in r.stderr
    r = subprocess.run(
        [*cli, "trace", "info", str(p), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["rows"] == 100 and d["decimate"] == 3 and d["complete"]
    assert {s["name"] for s in d["signals"] if s["kind"] != "timing"} >= {"tank.level", "tank.pump"}


def test_softplc_run_json_summary_says_where_the_trace_went(tmp_path, monkeypatch, capsys):
    from softplc.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "run",
            str(PROGRAMS / "tank.py"),
            "--virtual",
            "--cycles",
            "40",
            "--json",
            "--trace",
            "rel.trace",
            "--trace-trigger",
            "manual",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    trace = json.loads(out.out)["trace"]
    assert trace == {
        "path": str(tmp_path / "rel.trace"),
        "rows": 0,
        "dropped_blocks": 0,
        "events_lost": 0,
        "captures": 0,
        "error": None,
    }
    assert "trace written" not in out.err  # --json: the summary says it
    code = main(["run", str(PROGRAMS / "tank.py"), "--virtual", "--cycles", "5", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["trace"] is None


# -- review findings: signals, stop retry, header --------------------------------------


def _run_args(path, trigger=None):
    return argparse.Namespace(
        trace=str(path),
        trace_signals=["mixer.count"],
        trace_decimate=1,
        trace_trigger=trigger,
        trace_pre=1,
        trace_post=1,
    )


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
def test_sigusr1_during_a_continuous_run_trace_only_warns(engines, tmp_path, capsys):
    calls = []

    def fallback(*_):
        calls.append(1)

    before = signal.signal(signal.SIGUSR1, fallback)
    try:
        e = engine(engines)
        rec = start_from_args(e, _run_args(tmp_path / "c.trace"))
        assert rec is not None
        e.run_cycles(3)
        os.kill(os.getpid(), signal.SIGUSR1)
        e.run_cycles(3)
        assert calls == [], "the signal reached the handler from before the trace"
        assert "trigger signal ignored: the trace records continuously" in capsys.readouterr().err
        rec.stop()
        assert signal.getsignal(signal.SIGUSR1) is fallback
    finally:
        signal.signal(signal.SIGUSR1, before)
    assert st.load(tmp_path / "c.trace").rows == 6


def _wait_for_handler(proc, timeout=30.0):
    """Waits until ``proc`` catches SIGUSR1 (Linux: the SigCgt mask in /proc), which
    ``softplc run`` arranges once its trace has started."""
    import time

    bit = 1 << (signal.SIGUSR1 - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        with open(f"/proc/{proc.pid}/status") as f:
            caught = next(int(ln.split()[1], 16) for ln in f if ln.startswith("SigCgt:"))
        if caught & bit:
            return
        time.sleep(0.05)
    raise AssertionError("the run did not start its trace")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc")
def test_trace_trigger_reaches_a_triggered_run_and_spares_a_continuous_one(tmp_path, capsys):
    from softplc.cli import main

    cli = [sys.executable, "-m", "softplc.cli", "run", str(PROGRAMS / "tank.py"), "--reference"]
    cont, trig = tmp_path / "cont.trace", tmp_path / "trig.trace"
    common = ["--cycle", "5ms", "--duration", "3s", "--priority", "0"]
    p_cont = subprocess.Popen(
        [*cli, *common, "--trace", str(cont)], stderr=subprocess.PIPE, text=True
    )
    p_trig = subprocess.Popen(
        [
            *cli,
            *common,
            "--trace",
            str(trig),
            "--trace-trigger",
            "manual",
            "--trace-pre",
            "2",
            "--trace-post",
            "2",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_handler(p_cont)
        _wait_for_handler(p_trig)
        # `softplc trace trigger` refuses the continuous run...
        assert main(["trace", "trigger", str(p_cont.pid)]) == 2
        assert "continuous trace" in capsys.readouterr().err
        # ...which survives the signal anyway, with a warning.
        os.kill(p_cont.pid, signal.SIGUSR1)
        # The triggered run takes the trigger.
        assert main(["trace", "trigger", str(p_trig.pid)]) == 0
        _, err_cont = p_cont.communicate(timeout=60)
        _, err_trig = p_trig.communicate(timeout=60)
    finally:
        for p in (p_cont, p_trig):
            p.kill()
            p.wait()
    assert p_cont.returncode == 0, err_cont
    assert "trigger signal ignored" in err_cont
    assert p_trig.returncode == 0, err_trig
    tr = st.load(trig)
    assert len(tr.triggers) == 1 and tr.triggers[0]["forced"] and tr.rows == 5
    assert st.load(cont).rows > 100


def test_a_stop_that_times_out_keeps_the_recorder_and_can_be_retried(engines, tmp_path):
    import time

    gate = threading.Event()
    gate.set()

    def stuck(io):
        gate.wait(30)  # a cycle that hangs while the gate is closed (GIL released)
        io["n"] = io["n"] + 1

    e = Engine(clock="real", cycle="10ms")
    engines.append(e)
    e.declare("n", "memory", DINT)
    e.add_program(stuck)
    e.start()
    p = tmp_path / "stuck.trace"
    rec = st.start_trace(e, p)
    time.sleep(0.1)
    gate.clear()
    time.sleep(0.1)
    try:
        with pytest.raises(st.TraceError, match=r"call stop\(\) again to retry"):
            rec.stop()
    finally:
        gate.set()
    # Let the stuck cycle end (it needs the GIL to leave the program) before retrying.
    time.sleep(0.5)
    assert rec.error is None
    stats = st.stop_trace(e)  # still registered: the retry goes through the engine
    assert stats["rows_written"] >= 5
    assert rec.stop() == stats
    tr = st.load(p)
    assert tr.complete and tr.rows == stats["rows_written"]


def test_the_header_records_the_engine_state_and_clocks_at_the_start(engines, tmp_path):
    import time

    e = engine(engines, clock="real", cycle="2ms")
    t0 = time.time_ns()
    mono = time.monotonic_ns()
    p = tmp_path / "h.trace"
    rec = st.start_trace(e, p)
    time.sleep(0.05)
    rec.stop()
    tr = st.load(p)
    assert tr.engine_state == "RUN"
    ref = tr.clock_ref
    assert ref["clock"] == "monotonic"
    # The pair was read together: both clocks moved by the same amount since t0/mono.
    assert abs((ref["unix_ns"] - t0) - (ref["engine_ns"] - mono)) < 5_000_000
    # So row times map to wall-clock times around now.
    w = tr.unix_ns()
    assert t0 - 50_000_000 < w[0] < time.time_ns()


def test_engine_start_trace_accepts_the_mode_its_docstring_names(engines, tmp_path):
    e = engine(engines)
    rec = e.start_trace(tmp_path / "m.trace", mode="triggered", pre=1, post=1)
    e.run_cycles(3)
    rec.trigger()
    e.run_cycles(3)
    assert e.stop_trace()["captures_written"] == 1
    tr = st.load(tmp_path / "m.trace")
    assert tr.mode == "triggered" and tr.rows == 3


def test_a_signal_typo_leaves_an_existing_file_at_the_trace_path_alone(engines, tmp_path):
    e = engine(engines)
    p = tmp_path / "keep.trace"
    p.write_bytes(b"last week's trace")
    with pytest.raises(softplc.ConfigError, match=r"mixer\.cuont"):
        st.start_trace(e, p, signals="mixer.cuont")
    with pytest.raises(softplc.ConfigError, match="edges are for BOOL"):
        st.start_trace(e, p, trigger="rising:mixer.level")
    assert p.read_bytes() == b"last week's trace"
    # The engine is free, and a good start replaces the file.
    rec = st.start_trace(e, p, signals="mixer.count")
    e.run_cycles(4)
    rec.stop()
    assert st.load(p)["mixer.count"].tolist() == [1, 2, 3, 4]
