"""Recording through the Rust sampler and writer: decimation, triggers, options."""

from __future__ import annotations

import numpy as np
import pytest
import softplc
import softplc.trace as st


def record(tmp_path, variables, **kw):
    p = tmp_path / "r.trace"
    stats = st.record_arrays(p, variables, **kw)
    return st.load(p), stats


def square(n: int, on: range) -> np.ndarray:
    a = np.zeros(n, dtype=bool)
    a[on.start : on.stop] = True
    return a


def test_decimation_records_every_nth_cycle_and_says_so_in_the_header(tmp_path):
    tr, stats = record(tmp_path, {"x": ("DINT", np.arange(50))}, decimate=7)
    assert tr.cycle.tolist() == list(range(0, 50, 7))
    assert tr["x"].tolist() == list(range(0, 50, 7))
    assert tr.sample_period_ns == 7 * tr.cycle_period_ns == 7_000_000
    assert stats["rows_written"] == 8


def test_a_rising_edge_captures_pre_trigger_rows_the_trigger_row_and_post_rows(tmp_path):
    start = square(100, range(40, 60))
    tr, stats = record(
        tmp_path,
        {"start": ("BOOL", start), "x": ("INT", np.arange(100))},
        trigger="rising:start",
        pre=5,
        post=3,
    )
    assert tr.cycle.tolist() == list(range(35, 44))
    assert tr["start"].tolist() == [False] * 5 + [True] * 4
    assert tr.mode == "triggered"
    (trig,) = tr.triggers
    assert (trig["cycle"], trig["pre_rows"], trig["forced"], trig["complete"]) == (
        40,
        5,
        False,
        True,
    )
    assert stats["captures_written"] == 1
    assert tr.header["trigger"] == {"condition": "rising:start", "pre": 5, "post": 3, "captures": 1}


def test_a_falling_edge_fires_when_the_bool_drops(tmp_path):
    start = square(100, range(40, 60))
    tr, _ = record(tmp_path, {"start": ("BOOL", start)}, trigger="falling:start", pre=1, post=1)
    assert tr.cycle.tolist() == [59, 60, 61]


@pytest.mark.parametrize(
    ("trigger", "cycle"),
    [("level>50", 50), ("level<50", 151), ("level<>50", 50)],
)
def test_threshold_crossings_fire_where_the_value_crosses(tmp_path, trigger, cycle):
    # 0.5..100.5 up, then down again: crosses 50 upwards at cycle 50 (49.5 -> 50.5),
    # downwards at cycle 151 (50.5 -> 49.5).
    level = np.concatenate([np.arange(0, 101), np.arange(99, -1, -1)]) + 0.5
    tr, _ = record(tmp_path, {"level": ("LREAL", level)}, trigger=trigger, pre=2, post=2)
    assert tr.triggers[0]["cycle"] == cycle
    assert tr.cycle.tolist() == list(range(cycle - 2, cycle + 3))


def test_a_forced_trigger_with_decimation_takes_post_rows_from_the_trigger(tmp_path):
    tr, _ = record(
        tmp_path,
        {"x": ("DINT", np.arange(200))},
        trigger="manual",
        pre=3,
        post=2,
        decimate=10,
        force_trigger_at=[123],
    )
    # Rows every 10th cycle while armed, of which the last 3 are kept; the trigger row;
    # then every 10th cycle counted from the trigger.
    assert tr.cycle.tolist() == [100, 110, 120, 123, 133, 143]
    assert tr.triggers[0]["forced"] is True


def test_a_trigger_before_enough_history_keeps_what_there_is(tmp_path):
    start = square(50, range(2, 10))
    tr, _ = record(tmp_path, {"start": ("BOOL", start)}, trigger="rising:start", pre=10, post=1)
    assert tr.cycle.tolist() == [0, 1, 2, 3]
    assert tr.triggers[0]["pre_rows"] == 2


def test_several_captures_rearm_and_blocks_name_their_capture(tmp_path):
    pulses = np.zeros(100, dtype=bool)
    pulses[[20, 50, 80]] = True
    tr, stats = record(
        tmp_path, {"p": ("BOOL", pulses)}, trigger="rising:p", pre=1, post=1, captures=2
    )
    assert tr.cycle.tolist() == [19, 20, 21, 49, 50, 51]
    assert [b.capture for b in tr.blocks] == [0, 1]
    assert stats["captures_written"] == 2


def test_a_trace_that_never_triggers_has_no_rows_and_says_so(tmp_path):
    tr, stats = record(tmp_path, {"p": ("BOOL", np.zeros(20))}, trigger="rising:p", pre=3, post=3)
    assert tr.rows == 0 and tr.triggers == [] and tr.complete
    assert stats["triggers"] == 0


def test_signal_selection_by_glob_keeps_the_pattern_order(tmp_path):
    v = {n: ("REAL", np.zeros(3)) for n in ("tank.level", "tank.temp", "pump.speed", "other")}
    tr, _ = record(tmp_path, v, signals="pump.*,tank.*", timing=False)
    assert tr.names == ["pump.speed", "tank.level", "tank.temp"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"signals": "valve.*"}, "matches no variable"),
        ({"signals": "levl"}, "unknown variable"),
        ({"trigger": "rising:level"}, "edges are for BOOL"),
        ({"trigger": "level>high"}, "is not a number"),
        ({"trigger": "rising:nope"}, "unknown variable"),
        ({"decimate": 0}, "decimate"),
    ],
)
def test_bad_options_are_config_errors_and_leave_no_file(tmp_path, kw, message):
    p = tmp_path / "bad.trace"
    with pytest.raises(softplc.ConfigError, match=message):
        st.record_arrays(p, {"level": ("REAL", np.zeros(3))}, **kw)
    assert not p.exists()


def test_an_unwritable_path_is_a_trace_error(tmp_path):
    with pytest.raises(st.TraceError, match="cannot create trace file"):
        st.record_arrays(tmp_path / "no" / "dir.trace", {"x": ("INT", [1])})


def test_every_iec_type_round_trips_at_its_limits(tmp_path):
    from softplc.types import ALL_TYPES

    variables = {}
    for t in ALL_TYPES:
        if t.name == "BOOL":
            vals = [False, True]
        elif t.is_float:
            info = np.finfo(np.float32 if t.name == "REAL" else np.float64)
            vals = [info.min, info.max]
        else:
            vals = [t.min, t.max]
        variables[t.name.lower()] = (t.name, vals)
    tr, _ = record(tmp_path, variables)
    for name, (_, vals) in variables.items():
        if tr.signal(name).is_float:
            np.testing.assert_array_equal(tr[name], np.asarray(vals, dtype=tr[name].dtype))
        else:
            assert tr[name].tolist() == list(vals), name


# -- buffers, files, modes ---------------------------------------------------------------


def test_buffers_beyond_max_buffer_bytes_are_a_config_error_naming_the_option(tmp_path):
    p = tmp_path / "big.trace"
    many = {f"s{i}": ("LREAL", np.zeros(2)) for i in range(100)}  # rows of ~800 bytes
    with pytest.raises(softplc.ConfigError, match="max_buffer_bytes") as e:
        st.record_arrays(p, many, block_rows=1 << 20, buffer_blocks=1 << 16)
    assert "buffer_blocks 65536 x block_rows 1048576" in str(e.value)
    assert not p.exists()
    with pytest.raises(softplc.ConfigError, match="max_buffer_bytes"):
        st.record_arrays(p, many, max_buffer_bytes=1 << 20)
    # Raising the cap, or smaller buffers, records.
    assert st.record_arrays(p, many, max_buffer_bytes=64 << 20)["rows_written"] == 2
    with pytest.raises(softplc.ConfigError, match="buffer_blocks must be in"):
        st.record_arrays(p, many, buffer_blocks=1 << 20)
    with pytest.raises(softplc.ConfigError, match="max_buffer_bytes must be a positive"):
        st.record_arrays(p, many, max_buffer_bytes=0)


def test_a_capture_larger_than_the_cap_is_refused_naming_pre_and_post(tmp_path):
    with pytest.raises(softplc.ConfigError, match="pre or post"):
        st.record_arrays(
            tmp_path / "t.trace",
            {"x": ("LREAL", np.zeros(3))},
            trigger="manual",
            pre=20_000_000,
            post=20_000_000,
        )


@pytest.mark.parametrize(
    "kw",
    [{"signals": "levle"}, {"trigger": "rising:level"}, {"max_buffer_bytes": 10}],
)
def test_a_bad_option_never_touches_an_existing_file(tmp_path, kw):
    p = tmp_path / "keep.trace"
    p.write_bytes(b"precious data")
    with pytest.raises(softplc.ConfigError):
        st.record_arrays(p, {"level": ("REAL", np.zeros(3))}, **kw)
    assert p.read_bytes() == b"precious data"


def test_an_existing_file_is_replaced_whole_by_a_trace_that_starts(tmp_path):
    p = tmp_path / "old.trace"
    p.write_bytes(b"x" * 1_000_000)
    stats = st.record_arrays(p, {"x": ("INT", [1, 2, 3])})
    assert p.stat().st_size == stats["bytes_written"] < 1_000_000
    assert st.load(p)["x"].tolist() == [1, 2, 3]


def test_a_trace_to_a_device_closes_without_a_sync_error():
    stats = st.record_arrays("/dev/null", {"x": ("INT", np.arange(50))})
    assert stats["rows_written"] == 50
    import os

    assert os.path.exists("/dev/null")


def test_a_trace_into_a_pipe_closes_and_the_reader_gets_every_row(tmp_path):
    import os
    import threading

    fifo = tmp_path / "t.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    stats = st.record_arrays(fifo, {"x": ("INT", np.arange(300))}, block_rows=64)
    reader.join(timeout=30)
    assert stats["rows_written"] == 300
    out = tmp_path / "copy.trace"
    out.write_bytes(got[0])
    assert st.load(out)["x"].tolist() == list(range(300))


def test_mode_triggered_without_a_trigger_waits_for_a_forced_one(tmp_path):
    tr, _ = record(
        tmp_path,
        {"x": ("INT", np.arange(30))},
        mode="triggered",
        pre=1,
        post=1,
        force_trigger_at=[20],
    )
    assert tr.mode == "triggered" and tr.header["trigger"]["condition"] == "manual"
    assert tr["x"].tolist() == [19, 20, 21]
    with pytest.raises(softplc.ConfigError, match="needs mode='triggered'"):
        st.record_arrays(
            tmp_path / "c.trace", {"x": ("INT", [1])}, mode="continuous", trigger="x>0"
        )
    with pytest.raises(softplc.ConfigError, match="unknown trace mode 'burst'"):
        st.record_arrays(tmp_path / "c.trace", {"x": ("INT", [1])}, mode="burst")


def test_a_forced_trigger_on_the_cycle_of_a_real_one_does_not_start_the_next_capture(tmp_path):
    on = np.zeros(40, dtype=bool)
    on[10:15] = True
    tr, stats = record(
        tmp_path,
        {"on": ("BOOL", on)},
        trigger="rising:on",
        pre=1,
        post=1,
        captures=2,
        force_trigger_at=[10],
    )
    assert tr.cycle.tolist() == [9, 10, 11]
    assert [t["forced"] for t in tr.triggers] == [False]
    assert stats["triggers"] == 1
