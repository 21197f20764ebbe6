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
